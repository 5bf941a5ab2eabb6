//! The client's side of permessage-deflate (RFC 7692), which
//! tokio-tungstenite does not have: an `AsyncRead` between the counted
//! socket and tungstenite that inflates what the server compressed.
//!
//! The client offers [`OFFER`] — `server_no_context_takeover`, so every
//! message the server compresses stands alone and is inflated by a fresh
//! decoder — and compresses nothing itself (the extension allows a sender
//! to send plain frames), so this changes only what is read: writes pass
//! straight through. On HTTP/1.1 the reader passes the handshake's
//! response head through (on HTTP/2 the stream starts with frames), then
//! parses the server's frames with tungstenite's own [`FrameHeader`]: a
//! message whose first frame has RSV1 set is gathered,
//! inflated and handed on as one plain frame; every other frame passes
//! through unchanged for tungstenite to judge. A compressed message that is
//! masked, interleaved with another data frame, does not inflate or grows
//! past the limit fails the read (an `InvalidData` error: the connection is
//! then dropped, and a [`super::Resume`] subscriber reconnects).
//!
//! The server has its own reader for what clients send
//! (`transport/ws/deflate.rs`): the two roles share the RFC, not code, so
//! the client needs nothing of the server's.

use std::io::{self, Cursor, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// What the client offers in `Sec-WebSocket-Extensions`.
pub const OFFER: &str = "permessage-deflate; server_no_context_takeover";

/// What a sync flush ends with: the sender strips it, the receiver puts it
/// back to inflate (RFC 7692 §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The end of an HTTP response head.
const HEAD_END: &[u8] = b"\r\n\r\n";

/// A client WebSocket's socket that may receive compressed messages
/// (writes pass through: the client compresses nothing).
pub struct InflatingRead<S> {
    inner: S,
    /// `None`: no extension was offered, a plain pass-through.
    state: Option<Box<State>>,
}

struct State {
    /// The largest message inflated; more fails the read.
    max_message: usize,
    /// Bytes read from the socket, not yet parsed.
    raw: BytesMut,
    /// Bytes ready for tungstenite.
    out: BytesMut,
    /// How many bytes of [`HEAD_END`] the response head has shown so far;
    /// `None` once past it.
    head: Option<usize>,
    /// Payload bytes of a passed-through frame still to come.
    passing: u64,
    /// The compressed message being gathered: its opcode and payload.
    gathering: Option<(OpCode, BytesMut)>,
}

impl<S> InflatingRead<S> {
    /// Wraps `inner`, inflating messages of up to `max_message` bytes
    /// when `offered` (the handshake is about to offer [`OFFER`]), else
    /// only forwarding.
    pub fn new(inner: S, offered: bool, max_message: usize) -> Self {
        Self::with_head(inner, offered, max_message, true)
    }

    /// [`InflatingRead::new`] for a stream that starts with frames, not a
    /// response head (a WebSocket over an HTTP/2 stream).
    pub fn framed(inner: S, offered: bool, max_message: usize) -> Self {
        Self::with_head(inner, offered, max_message, false)
    }

    fn with_head(inner: S, offered: bool, max_message: usize, head: bool) -> Self {
        let state = offered.then(|| {
            Box::new(State {
                max_message,
                raw: BytesMut::new(),
                out: BytesMut::new(),
                head: head.then_some(0),
                passing: 0,
                gathering: None,
            })
        });
        InflatingRead { inner, state }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> AsyncRead for InflatingRead<S>
where
    S: AsyncRead + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let InflatingRead { inner, state } = self.get_mut();
        match state.as_deref_mut() {
            None => Pin::new(inner).poll_read(cx, buf),
            Some(st) => st.poll_hand_on(inner, cx, buf),
        }
    }
}

impl<S> AsyncWrite for InflatingRead<S>
where
    S: AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("permessage-deflate: {why}"),
    )
}

impl State {
    /// Fills `buf` with what tungstenite is to read, reading the socket
    /// until there is some (or it ends).
    fn poll_hand_on<S: AsyncRead + Unpin>(
        &mut self,
        socket: &mut S,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.out.is_empty() {
            let mut chunk = [0u8; 4096];
            let mut got = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut *socket).poll_read(cx, &mut got))?;
            if got.filled().is_empty() {
                // End of stream: a torn frame stays torn, as tungstenite
                // would have seen it.
                return Poll::Ready(Ok(()));
            }
            self.raw.extend_from_slice(got.filled());
            self.parse()?;
        }
        let n = self.out.len().min(buf.remaining());
        buf.put_slice(&self.out.split_to(n));
        self.release();
        Poll::Ready(Ok(()))
    }

    /// Frees the buffers once drained: an idle socket keeps none.
    fn release(&mut self) {
        if self.out.is_empty() && self.raw.is_empty() && self.gathering.is_none() {
            self.out = BytesMut::new();
            self.raw = BytesMut::new();
        }
    }

    /// Moves what `raw` holds to `out`, as far as whole pieces allow.
    fn parse(&mut self) -> io::Result<()> {
        if let Some(seen) = self.head {
            self.pass_head(seen);
        }
        while self.head.is_none() && !self.raw.is_empty() {
            if self.passing > 0 {
                let n =
                    usize::try_from(self.passing).map_or(self.raw.len(), |p| p.min(self.raw.len()));
                self.out.extend_from_slice(&self.raw.split_to(n));
                self.passing -= n as u64;
                continue;
            }
            let mut at = Cursor::new(&self.raw[..]);
            let Some((header, len)) =
                FrameHeader::parse(&mut at).map_err(|e| invalid(&e.to_string()))?
            else {
                return Ok(());
            };
            let header_len = at.position() as usize;
            if !self.compressed(&header)? {
                self.out.extend_from_slice(&self.raw.split_to(header_len));
                self.passing = len;
                continue;
            }
            if header.mask.is_some() {
                return Err(invalid("a server frame is masked"));
            }
            let gathered = self.gathering.as_ref().map_or(0, |(_, b)| b.len() as u64);
            let total = gathered.checked_add(len);
            if total.is_none_or(|t| t > self.max_message as u64) {
                return Err(invalid("a compressed message over the limit"));
            }
            let Some(frame_len) = usize::try_from(len)
                .ok()
                .and_then(|l| l.checked_add(header_len))
            else {
                return Err(invalid("a compressed message over the limit"));
            };
            if self.raw.len() < frame_len {
                return Ok(());
            }
            let mut frame = self.raw.split_to(frame_len);
            frame.advance(header_len);
            let (opcode, data) = self
                .gathering
                .get_or_insert_with(|| (header.opcode, BytesMut::new()));
            data.extend_from_slice(&frame);
            if header.is_final {
                let (opcode, data) = (*opcode, std::mem::take(data));
                self.gathering = None;
                self.emit(opcode, &data)?;
            }
        }
        Ok(())
    }

    /// Passes the response head through, up to and including its end.
    fn pass_head(&mut self, mut seen: usize) {
        let mut n = 0;
        while n < self.raw.len() && seen < HEAD_END.len() {
            seen = match self.raw[n] {
                b if b == HEAD_END[seen] => seen + 1,
                b'\r' => 1,
                _ => 0,
            };
            n += 1;
        }
        self.out.extend_from_slice(&self.raw.split_to(n));
        self.head = (seen < HEAD_END.len()).then_some(seen);
    }

    /// Whether a frame is (part of) a compressed message; frames that
    /// break the extension's rules fail the read.
    fn compressed(&self, h: &FrameHeader) -> io::Result<bool> {
        let data = matches!(h.opcode, OpCode::Data(_));
        let continues = h.opcode == OpCode::Data(Data::Continue);
        match (&self.gathering, data) {
            // Control frames may come between a message's fragments.
            (_, false) => Ok(false),
            (Some(_), true) if continues && !(h.rsv1 || h.rsv2 || h.rsv3) => Ok(true),
            (Some(_), true) => Err(invalid("a data frame inside a compressed message")),
            (None, true) => Ok(h.rsv1 && !continues && !(h.rsv2 || h.rsv3)),
        }
    }

    /// Hands tungstenite one final frame holding the inflated message.
    fn emit(&mut self, opcode: OpCode, compressed: &[u8]) -> io::Result<()> {
        let plain = inflate(compressed, self.max_message)?;
        let header = FrameHeader {
            is_final: true,
            opcode,
            ..FrameHeader::default()
        };
        header
            .format(plain.len() as u64, &mut (&mut self.out).writer())
            .map_err(|e| invalid(&e.to_string()))?;
        self.out.extend_from_slice(&plain);
        Ok(())
    }
}

/// One message's payload inflated on its own (no context kept), at most
/// `max` bytes.
fn inflate(compressed: &[u8], max: usize) -> io::Result<Vec<u8>> {
    let room = Capped {
        plain: Vec::with_capacity(compressed.len().saturating_mul(4).min(max)),
        max,
    };
    let mut d = flate2::write::DeflateDecoder::new(room);
    d.write_all(compressed)?;
    d.write_all(&TAIL)?;
    // A sync-flushed message has no final block: flushing, not finishing,
    // hands on all of it.
    d.flush()?;
    Ok(std::mem::take(&mut d.get_mut().plain))
}

/// Where a message inflates to: refuses to grow past `max`.
struct Capped {
    plain: Vec<u8>,
    max: usize,
}

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let within = self
            .plain
            .len()
            .checked_add(b.len())
            .is_some_and(|n| n <= self.max);
        if !within {
            return Err(invalid("a message inflates past the limit"));
        }
        self.plain.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};
    use tokio::io::AsyncReadExt;

    /// A message compressed as the server does: raw DEFLATE, sync-flushed,
    /// the tail stripped.
    fn deflated(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - TAIL.len());
        out
    }

    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    async fn read_all(input: Vec<u8>, cut: usize, max: usize) -> io::Result<Vec<u8>> {
        let (a, b) = input.split_at(cut.min(input.len()));
        let source = tokio::io::AsyncReadExt::chain(a, b);
        let mut reader = InflatingRead::new(source, true, max);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn inflates_compressed_messages_and_passes_the_rest() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n";
        let text = br#"{"topic":"t","seq":1,"time":2,"data":"aaaaaaaaaaaaaaaaaaaaaaaa"}"#;
        let packed = deflated(text);
        let (one, two) = packed.split_at(packed.len() / 2);
        let mut input = head.to_vec();
        input.extend(frame(0xc1, &packed)); // FIN + RSV1 + text
        input.extend(frame(0x81, b"plain")); // a plain text frame
        input.extend(frame(0x41, one)); // RSV1 + text, not final…
        input.extend(frame(0x89, b"p")); // …a ping between…
        input.extend(frame(0x80, two)); // …and the final continuation
        let mut want = head.to_vec();
        want.extend(frame(0x81, text));
        want.extend(frame(0x81, b"plain"));
        want.extend(frame(0x89, b"p"));
        want.extend(frame(0x81, text));
        for cut in 0..input.len() {
            assert_eq!(
                read_all(input.clone(), cut, 1 << 20).await.unwrap(),
                want,
                "cut {cut}"
            );
        }
    }

    #[tokio::test]
    async fn refuses_what_the_extension_forbids() {
        let head = b"HTTP/1.1 101 ok\r\n\r\n".to_vec();
        let big = vec![b'a'; 4096];
        let cases = [
            // Inflates past the limit.
            frame(0xc1, &deflated(&big)),
            // Not DEFLATE at all.
            frame(0xc1, &[0xff, 0xff, 0xff]),
            // A new text frame inside a compressed message.
            [frame(0x41, &deflated(b"a")), frame(0x81, b"b")].concat(),
            // A 64-bit length with its top bit set.
            [vec![0xc1, 127], vec![0xff; 8]].concat(),
        ];
        for case in cases {
            let input = [head.clone(), case].concat();
            assert!(read_all(input, 0, 1024).await.is_err());
        }
    }
}
