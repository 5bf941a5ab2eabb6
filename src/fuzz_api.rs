//! Entry points for the cargo-fuzz targets in `fuzz/` into parsers that are
//! otherwise private: the permessage-deflate frame reader, the compact SSE
//! id, HTTP/2 frame attribution (with its HPACK decoding), and the request
//! heads feedgate reads itself on HTTP/1.1 (`server/direct.rs`). Not part of the API (hidden from the docs); see docs/fuzzing.md.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::log::{Cursor, Epoch};
use crate::transport::sse::id as sse_id;
use crate::transport::ws::deflate::{Inflating, Params};

/// What a server socket's deflate reader hands tungstenite when the client
/// sends `input`, read in pieces cut at `cuts` (offsets into `input`).
///
/// Runs without a runtime: the source is in memory and always ready.
pub fn inflate_client_bytes(input: &[u8], cuts: &[usize], max_message: usize) -> Vec<u8> {
    let params = Params {
        server_window_bits: 15,
        client_no_context_takeover: false,
    };
    let source = Pieces::new(input, cuts);
    let mut reader = Inflating::new(source, Role::Server, Some(params), max_message);
    let mut out = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = [0u8; 4096];
    loop {
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut reader).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => return out,
            Poll::Ready(Ok(())) => out.extend_from_slice(rb.filled()),
            // Pending only after a failure was handed on: nothing more.
            Poll::Ready(Err(_)) | Poll::Pending => return out,
        }
    }
}

/// The compact SSE id of `positions` on a LIST tagged `tag`, if they fit
/// one (see `transport/sse_id.rs`).
pub fn encode_sse_id(common: Epoch, tag: u32, positions: &[(Epoch, u64)]) -> Option<String> {
    sse_id::encode(common, tag, positions.iter().copied())
}

/// The cursors of a compact SSE id for a LIST of `k` topics tagged `tag`.
///
/// # Errors
/// The `invalid_cursor` error a server answers such an id with.
pub fn decode_sse_id(text: &str, tag: u32, k: usize) -> Result<Vec<Cursor>, crate::ApiError> {
    sse_id::decode(text, tag, k)
}

/// The tag of a LIST of topic names.
pub fn sse_list_tag(topics: &[&str]) -> u32 {
    sse_id::list_tag(topics.iter().copied())
}

/// An in-memory source that returns `input` in the pieces `cuts` makes,
/// then end of stream.
struct Pieces<'a> {
    rest: &'a [u8],
    at: usize,
    cuts: Vec<usize>,
}

impl<'a> Pieces<'a> {
    fn new(input: &'a [u8], cuts: &[usize]) -> Self {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
        cuts.sort_unstable();
        Pieces {
            rest: input,
            at: 0,
            cuts,
        }
    }
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let at = self.at;
        let next_cut = self.cuts.iter().find(|&&c| c > at).copied();
        let piece = next_cut.map_or(self.rest.len(), |c| c - at);
        let n = piece.min(buf.remaining()).min(self.rest.len());
        let (now, later) = self.rest.split_at(n);
        buf.put_slice(now);
        self.rest = later;
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame with a 7-bit length.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    /// Issue 20, case 2, at the frame reader: a compressed first fragment,
    /// then a continuation announcing 2^64 − 1 bytes, is failed as a
    /// protocol error (the frame tungstenite fails with 1002: all reserved
    /// bits set), not a panic — however the bytes arrive.
    #[test]
    fn a_huge_continuation_length_fails_the_socket() {
        let mut input = frame(0x41, &[0x2a, 0x49]);
        input.extend_from_slice(&[0x80, 0xff]);
        input.extend_from_slice(&u64::MAX.to_be_bytes());
        input.extend_from_slice(&[1, 2, 3, 4]);
        let whole = inflate_client_bytes(&input, &[], 1 << 16);
        assert_eq!(whole, [0xf1, 0x80, 0, 0, 0, 0]);
        for cut in 0..input.len() {
            assert_eq!(
                inflate_client_bytes(&input, &[cut], 1 << 16),
                whole,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn plain_frames_pass_through_whole_or_in_pieces() {
        let mut input = frame(0x81, b"hello");
        input.extend(frame(0x89, b"ping"));
        let whole = inflate_client_bytes(&input, &[], 1 << 16);
        assert_eq!(whole, input);
        assert_eq!(inflate_client_bytes(&input, &[1, 3, 7, 12], 1 << 16), input);
    }
}

/// Feeds `read` (what a client sent: preface, frames) and `write` (what
/// the server wrote) through an HTTP/2 connection's frame attribution,
/// `read` cut at `cuts`; the wire bytes it counted in and out, summed over
/// transports (all counted once the connection is gone).
pub fn attribute_h2(read: &[u8], write: &[u8], cuts: &[usize]) -> (u64, u64) {
    use crate::metrics::{Link, Metrics, Transport};
    use crate::wire::account::Account;
    use crate::wire::h2::H2Meter;
    let link = Link {
        h2: true,
        tls: false,
    };
    let metrics = std::sync::Arc::new(Metrics::new());
    let meter = H2Meter::new(Account::new(metrics.clone(), link, None));
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(read.len())).collect();
    cuts.sort_unstable();
    for c in cuts.into_iter().chain([read.len()]) {
        if c > at {
            meter.read(&read[at..c]);
            meter.read_idle();
            at = c;
        }
    }
    meter.wrote(write);
    drop(meter);
    Transport::ALL.iter().fold((0, 0), |(i, o), t| {
        let lm = metrics.transport(*t).on(link);
        (i + lm.wire_in.get(), o + lm.wire_out.get())
    })
}

#[cfg(test)]
mod h2_tests {
    use super::*;

    /// Every byte is attributed once, whatever the input.
    #[test]
    fn every_byte_is_attributed_once() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..200 {
            let mut bytes = Vec::new();
            for _ in 0..(round * 37 % 4000) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            let mut read = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
            read.extend_from_slice(&bytes);
            let cuts = [round % 50, round * 7 % 300, 1000];
            let counted = attribute_h2(&read, &bytes, &cuts);
            assert_eq!(counted, (read.len() as u64, bytes.len() as u64));
        }
    }
}

/// A request head as feedgate's own HTTP/1.1 reader passes it on: its path
/// and query, and its headers (name, value).
pub type DirectHead = (String, Vec<(String, Vec<u8>)>);

/// What feedgate's own HTTP/1.1 head reader makes of `head`: `None` while
/// it needs more bytes or leaves the request to hyper; otherwise the
/// request it would answer itself.
pub fn direct_head(head: &[u8]) -> Option<DirectHead> {
    use crate::server::direct::{Parsed, subscription};
    match subscription(head) {
        Parsed::Direct(req) => {
            let target = req.uri().path_and_query().map(|p| p.as_str().to_owned())?;
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect();
            Some((target, headers))
        }
        Parsed::Partial | Parsed::Other => None,
    }
}
