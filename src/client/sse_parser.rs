//! An incremental `text/event-stream` parser (the WHATWG algorithm, minus
//! what feedgate never sends): bytes in, complete events out.
//!
//! Lines end with CRLF, LF or a lone CR, as the format says; feedgate sends
//! LF, but a proxy on the way may rewrite line ends.

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `event:` (empty means the default, `message`).
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` in force when it was dispatched, if any was ever set.
    pub id: Option<String>,
    /// `retry:` if the event block carried one.
    pub retry: Option<u64>,
}

/// Accumulates bytes and yields events at blank lines.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: Option<String>,
    last_id: Option<String>,
    retry: Option<u64>,
    /// Longest line accepted; longer input is an error, not a growing buffer.
    max_line: usize,
    /// The last chunk ended with a CR: an LF starting the next one belongs
    /// to that line end (CRLF split across chunks), not a new empty line.
    skip_lf: bool,
}

/// The stream broke the format or a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line longer than the parser's limit.
    #[error("SSE line longer than {0} bytes")]
    LineTooLong(usize),
    /// A line that is not UTF-8.
    #[error("SSE stream is not UTF-8")]
    NotUtf8,
}

impl SseParser {
    /// A parser that refuses lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        SseParser {
            max_line,
            ..Default::default()
        }
    }

    /// Feeds bytes; pushes every event they complete onto `out`.
    ///
    /// # Errors
    /// [`SseError`] when a line is too long or not UTF-8; the parser should
    /// then be dropped with its connection.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.skip_lf && !bytes.is_empty() {
            self.skip_lf = false;
            bytes = bytes.strip_prefix(b"\n").unwrap_or(bytes);
        }
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = self.buf[start..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let end = start + pos;
            let line = std::str::from_utf8(&self.buf[start..end]).map_err(|_| SseError::NotUtf8)?;
            let line = line.to_owned();
            self.line(&line, out);
            start = end + 1;
            if self.buf[end] == b'\r' {
                match self.buf.get(start) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.buf.drain(..start);
        if self.buf.len() > self.max_line {
            return Err(SseError::LineTooLong(self.max_line));
        }
        Ok(())
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data,
                    id: self.last_id.clone(),
                    retry: self.retry.take(),
                });
            } else {
                self.event.clear();
            }
            return;
        }
        if line.starts_with(':') {
            return; // a comment: heartbeats
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" => self.retry = value.parse().ok(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_input() {
        let mut p = SseParser::new(1024);
        let mut out = Vec::new();
        let stream = b"retry: 2000\nevent: ready\nid: e:0\ndata: {}\n\n:\n\nid: e:1\ndata: {\"a\"\r\ndata: :1}\n\n";
        for chunk in stream.chunks(3) {
            p.feed(chunk, &mut out).unwrap();
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].event, "ready");
        assert_eq!(out[0].retry, Some(2000));
        assert_eq!(out[1].id.as_deref(), Some("e:1"));
        assert_eq!(out[1].data, "{\"a\"\n:1}");
    }

    #[test]
    fn every_line_end_counts_once_however_split() {
        // CR, LF and CRLF line ends, and a CRLF split across two chunks:
        // one event each, never a `\r` in the data, never an extra blank
        // line dispatching early (found by fuzz/sse_parser).
        let stream = b"data: a\rdata: b\r\rid: 1\r\ndata: c\r\n\r\ndata: d\n\n";
        for at in 0..=stream.len() {
            let mut p = SseParser::new(1024);
            let mut out = Vec::new();
            p.feed(&stream[..at], &mut out).unwrap();
            p.feed(&stream[at..], &mut out).unwrap();
            let data: Vec<_> = out.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["a\nb", "c", "d"], "split at {at}");
            assert_eq!(out[1].id.as_deref(), Some("1"));
        }
    }

    #[test]
    fn bounds_the_buffer() {
        let mut p = SseParser::new(8);
        let mut out = Vec::new();
        assert_eq!(
            p.feed(b"data: 0123456789", &mut out),
            Err(SseError::LineTooLong(8))
        );
    }
}
