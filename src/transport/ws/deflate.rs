//! permessage-deflate (RFC 7692) around tokio-tungstenite, which has no
//! extension support and fails any frame with RSV1 set.
//!
//! The extension is built in three pieces, none of which forks tungstenite:
//!
//! - **negotiation** ([`negotiate`]): the first acceptable offer in
//!   `Sec-WebSocket-Extensions` is answered with
//!   `permessage-deflate; server_no_context_takeover` (plus what the offer
//!   obliges us to echo). Without context takeover every message the server
//!   sends is compressed on its own, so one compressed form of an event fits
//!   every subscriber: it is made once ([`compress`], cached on the event by
//!   the caller) and sent as a pre-built frame with RSV1 set
//!   ([`frame`]) through tungstenite's `Message::Frame`, which writes a
//!   frame as given.
//! - **reading** ([`Inflating`]): an `AsyncRead` between the upgraded socket
//!   and tungstenite that parses the client's frames. Frames of compressed
//!   messages (RSV1 on the first) are gathered, inflated and handed on as
//!   one plain frame (masked with a zero key, which changes nothing); every
//!   other frame passes through unchanged for tungstenite to judge. What
//!   only this layer can see is failed by handing tungstenite a frame it
//!   fails the same way (reserved bits: 1002; over-size: 1009), so close
//!   codes stay in one place (`ws::close_for`).
//! - **bytes**: both sit above the counting socket, so the wire counters
//!   see the compressed bytes, exactly.
//!
//! The inflater (about 40 KiB) exists only while a client sends compressed
//! messages: it is made on the first and dropped after each message when
//! the client agreed to `client_no_context_takeover`.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use hyper::header::{HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const NAME: &str = "permessage-deflate";
/// What a sync flush ends with; stripped when sending, put back to inflate
/// (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The parameters agreed with one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The LZ77 window the server may use (`server_max_window_bits`, 8–15).
    /// Our compressor always uses 15; a message longer than a smaller
    /// window is sent uncompressed (RSV1 clear), which the extension allows.
    pub server_window_bits: u8,
    /// The client compresses each message on its own
    /// (`client_no_context_takeover`): no inflater is kept between messages.
    pub client_no_context_takeover: bool,
}

impl Params {
    /// Whether a message of `len` bytes may be sent compressed: its
    /// back-references then fit the agreed window whatever the compressor.
    pub fn may_compress(&self, len: usize) -> bool {
        self.server_window_bits >= 15 || len <= 1 << self.server_window_bits
    }
}

/// Picks the first acceptable `permessage-deflate` offer in `headers`
/// and the `Sec-WebSocket-Extensions` value that accepts it; `None` when
/// there is none (the socket then runs without the extension).
pub fn negotiate(headers: &HeaderMap) -> Option<(Params, HeaderValue)> {
    let offers = headers
        .get_all("sec-websocket-extensions")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_outside_quotes::<','>);
    for offer in offers {
        let mut parts = split_outside_quotes::<';'>(offer).map(str::trim);
        if !parts.next().is_some_and(|n| n.eq_ignore_ascii_case(NAME)) {
            continue;
        }
        if let Some(accepted) = accept(parts) {
            return Some(accepted);
        }
    }
    None
}

/// Accepts one offer's parameters, or `None` when they are not valid (an
/// unknown or repeated parameter, a bad value: RFC 7692 §7.1 says decline).
fn accept<'a>(params: impl Iterator<Item = &'a str>) -> Option<(Params, HeaderValue)> {
    let mut seen = Vec::new();
    let mut out = Params {
        server_window_bits: 15,
        client_no_context_takeover: false,
    };
    let mut echo_server_bits = false;
    for p in params {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        let bits = |v: Option<&str>| {
            v.and_then(|v| v.parse::<u8>().ok())
                .filter(|b| (8..=15).contains(b))
        };
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) => {}
            ("client_no_context_takeover", None) => out.client_no_context_takeover = true,
            ("server_max_window_bits", v) => {
                out.server_window_bits = bits(v)?;
                echo_server_bits = true;
            }
            // Our inflater takes any window: no need to answer it.
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", v) => {
                bits(v)?;
            }
            _ => return None,
        }
        seen.push(name);
    }
    let mut answer = format!("{NAME}; server_no_context_takeover");
    if out.client_no_context_takeover {
        answer.push_str("; client_no_context_takeover");
    }
    if echo_server_bits {
        answer.push_str(&format!(
            "; server_max_window_bits={}",
            out.server_window_bits
        ));
    }
    Some((out, HeaderValue::from_str(&answer).ok()?))
}

/// Splits on `SEP` except inside double quotes.
fn split_outside_quotes<const SEP: char>(s: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    s.split(move |c| {
        if c == '"' {
            quoted = !quoted;
        }
        c == SEP && !quoted
    })
}

thread_local! {
    /// One compressor per worker thread, reset between messages: a
    /// compressor's tables are hundreds of KiB, far too much per socket.
    /// Level 9: an event is compressed once for all its subscribers, and on
    /// small JSON zlib-rs needs 9 to match what zlib makes at 6 (a ticker
    /// event: 93.6 B at 9, 94.7 B at 6, zlib 93.6 B).
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(9), false));
}

/// `data` compressed as one permessage-deflate message on its own: raw
/// DEFLATE, sync-flushed, the trailing `00 00 ff ff` removed.
pub fn compress(data: &[u8]) -> Bytes {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            let before = c.total_in();
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            // Cannot fail on a fresh raw stream with room to write.
            let _ = c.compress_vec(input, &mut out, FlushCompress::Sync);
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && out.ends_with(&TAIL) && out.len() < out.capacity() {
                break;
            }
        }
        out.truncate(out.len() - TAIL.len());
        // An empty message compresses to one empty stored block whose
        // trailer is the whole flush; RFC 7692 §7.2.3.6 sends it as `00`.
        if out.is_empty() {
            out.push(0);
        }
        Bytes::from(out)
    })
}

/// A text (or binary) message frame with RSV1 set around `compressed`, as
/// [`compress`] made it.
pub fn frame(compressed: Bytes, text: bool) -> Message {
    let op = if text { Data::Text } else { Data::Binary };
    let mut f = Frame::message(compressed, OpCode::Data(op), true);
    f.header_mut().rsv1 = true;
    Message::Frame(f)
}

/// A message to send on a socket with the extension `params`: compressed,
/// or in stored (uncompressed) DEFLATE blocks when the agreed window is
/// smaller than the message; without the extension, as it is. `text` data
/// must be UTF-8 (it always is: it comes from a `String` or a text message).
///
/// Every message is sent with RSV1 set once the extension is agreed,
/// though an uncompressed one would be allowed: the Autobahn runner
/// (kosoku 0.1.0) mishandles plain text messages on a compressed socket.
pub fn message(params: Option<Params>, text: bool, data: Bytes) -> Message {
    match params {
        Some(p) if p.may_compress(data.len()) => frame(compress(&data), text),
        Some(_) => frame(stored(&data), text),
        None if text => match Utf8Bytes::try_from(data) {
            Ok(t) => Message::Text(t),
            Err(_) => Message::Binary(Bytes::new()),
        },
        None => Message::Binary(data),
    }
}

/// `data` as stored DEFLATE blocks, which refer to no window at all, in
/// the form [`compress`] gives (the trailing `00 00 ff ff` left out).
pub fn stored(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 5 * (data.len() / 0xffff + 1) + 1);
    for chunk in data.chunks(0xffff) {
        let len = chunk.len() as u16;
        // BFINAL 0, BTYPE 00 (stored), padded to the byte.
        out.put_u8(0);
        out.put_u16_le(len);
        out.put_u16_le(!len);
        out.put_slice(chunk);
    }
    // The header of the empty stored block whose LEN/NLEN the receiver
    // appends (RFC 7692 §7.2.2).
    out.put_u8(0);
    out.freeze()
}

/// The read side of a WebSocket with the extension: see the module docs.
/// Without the extension it only forwards (one branch per call).
pub struct Inflating<S> {
    inner: S,
    state: Option<Box<ReadState>>,
}

struct ReadState {
    role: Role,
    /// The largest message to inflate; more fails the socket with 1009.
    max_message: usize,
    /// Bytes read from the socket, not yet parsed.
    raw: BytesMut,
    /// Bytes ready for tungstenite.
    out: BytesMut,
    /// Payload bytes of a frame passed through that are still to come.
    passing: u64,
    /// The compressed message being gathered: its opcode and payload.
    gathering: Option<(u8, BytesMut)>,
    /// Boxed: an idle socket keeps only the pointer's room.
    inflater: Option<Box<Decompress>>,
    /// The peer compresses each message on its own: the inflater is
    /// dropped after each.
    fresh_each_message: bool,
    /// A client socket passes the handshake's response through first: how
    /// much of its closing `\r\n\r\n` has been seen (`None`: past it).
    head: Option<usize>,
    /// A failure was handed on: nothing more is read.
    failed: bool,
}

impl<S> Inflating<S> {
    /// Wraps `inner`; `params` is what the handshake agreed (`None`: no
    /// extension, a plain pass-through).
    pub fn new(inner: S, role: Role, params: Option<Params>, max_message: usize) -> Self {
        let state = params.map(|params| {
            Box::new(ReadState {
                role,
                max_message,
                raw: BytesMut::new(),
                out: BytesMut::new(),
                passing: 0,
                gathering: None,
                inflater: None,
                fresh_each_message: params.client_no_context_takeover,
                head: None,
                failed: false,
            })
        });
        Inflating { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Inflating<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(st) = this.state.as_deref_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        loop {
            if !st.out.is_empty() {
                let n = st.out.len().min(buf.remaining());
                buf.put_slice(&st.out[..n]);
                st.out.advance(n);
                st.release();
                return Poll::Ready(Ok(()));
            }
            if st.failed {
                return Poll::Pending;
            }
            st.raw.reserve(4096);
            let spare = st.raw.spare_capacity_mut();
            let mut rb = ReadBuf::uninit(spare);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                // EOF: whatever is buffered is a torn frame; tungstenite
                // sees the end as it would have.
                st.release();
                return Poll::Ready(Ok(()));
            }
            // SAFETY: `n` bytes of the spare capacity were just filled.
            unsafe { st.raw.set_len(st.raw.len() + n) };
            st.parse();
        }
    }
}

impl ReadState {
    /// Frees the buffers once they are drained: an idle socket keeps none.
    fn release(&mut self) {
        if self.out.is_empty() && self.raw.is_empty() && self.gathering.is_none() {
            self.out = BytesMut::new();
            self.raw = BytesMut::new();
        }
    }

    /// Moves what `raw` holds to `out`, frame by frame, as far as it can.
    fn parse(&mut self) {
        if let Some(mut seen) = self.head {
            // The HTTP response head: through as it is, up to its end.
            let mut n = 0;
            while n < self.raw.len() && seen < 4 {
                seen = if self.raw[n] == b"\r\n\r\n"[seen] {
                    seen + 1
                } else if self.raw[n] == b'\r' {
                    1
                } else {
                    0
                };
                n += 1;
            }
            self.out.extend_from_slice(&self.raw.split_to(n));
            self.head = (seen < 4).then_some(seen);
        }
        while !self.failed && !self.raw.is_empty() {
            if self.passing > 0 {
                let n = (self.passing.min(self.raw.len() as u64)) as usize;
                self.out.extend_from_slice(&self.raw.split_to(n));
                self.passing -= n as u64;
                continue;
            }
            let h = match Header::parse(&self.raw) {
                Ok(Some(h)) => h,
                Ok(None) => return,
                Err(Invalid) => return self.fail(Failure::Protocol),
            };
            let control = h.opcode & 0x8 != 0;
            let starts_compressed = h.rsv1 && matches!(h.opcode, 1 | 2) && !h.rsv23;
            let continues = h.opcode == 0 && self.gathering.is_some();
            if control || !(starts_compressed || continues) {
                if self.gathering.is_some() && !control {
                    // A new data frame inside a compressed message.
                    return self.fail(Failure::Protocol);
                }
                // Not ours: tungstenite judges it as it is.
                let head = self.raw.split_to(h.len);
                self.out.extend_from_slice(&head);
                self.passing = h.payload;
                continue;
            }
            if (continues && (h.rsv1 || h.rsv23)) || (starts_compressed && self.gathering.is_some())
            {
                return self.fail(Failure::Protocol);
            }
            let gathered = self.gathering.as_ref().map_or(0, |(_, b)| b.len() as u64);
            // Compressed bytes cannot be more than a few times smaller than
            // what they inflate to only in theory; cap them at the limit too.
            // Lengths come from the peer: every sum is checked.
            let within = gathered
                .checked_add(h.payload)
                .is_some_and(|n| n <= self.max_message as u64);
            if !within {
                return self.fail(Failure::TooBig);
            }
            // Cannot fail: the payload is at most `max_message` (a usize).
            let Some(total) = usize::try_from(h.payload)
                .ok()
                .and_then(|p| p.checked_add(h.len))
            else {
                return self.fail(Failure::TooBig);
            };
            if self.raw.len() < total {
                self.raw.reserve(total - self.raw.len());
                return;
            }
            let mut frame = self.raw.split_to(total);
            frame.advance(h.len);
            if let Some(key) = h.mask {
                for (i, b) in frame.iter_mut().enumerate() {
                    *b ^= key[i & 3];
                }
            }
            let (_, data) = self
                .gathering
                .get_or_insert_with(|| (h.opcode, BytesMut::new()));
            data.extend_from_slice(&frame);
            if h.fin {
                let (opcode, data) = self.gathering.take().unwrap_or_default();
                match self.inflate(&data) {
                    Ok(plain) => self.emit(opcode, &plain),
                    Err(f) => return self.fail(f),
                }
            }
        }
    }

    /// Inflates one message's payload (RFC 7692 §7.2.2).
    fn inflate(&mut self, data: &[u8]) -> Result<Vec<u8>, Failure> {
        let max = self.max_message;
        let d = self
            .inflater
            .get_or_insert_with(|| Box::new(Decompress::new(false)));
        let mut out = Vec::with_capacity((data.len() * 4).min(max) + 64);
        let mut ended = false;
        for (input, is_tail) in [(data, false), (&TAIL[..], true)] {
            if ended {
                // A final block ended the stream: nothing may follow it
                // but the tail we add ourselves.
                if is_tail {
                    break;
                }
                return Err(Failure::Protocol);
            }
            let mut input = input;
            loop {
                if out.len() == out.capacity() {
                    out.reserve(out.len().max(1024));
                }
                let (in0, out0) = (d.total_in(), out.len());
                let status = d
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .map_err(|_| Failure::Protocol)?;
                input = &input[(d.total_in() - in0) as usize..];
                if out.len() > max {
                    return Err(Failure::TooBig);
                }
                if status == Status::StreamEnd {
                    ended = true;
                    if !input.is_empty() {
                        return Err(Failure::Protocol);
                    }
                    break;
                }
                let stalled = d.total_in() == in0 && out.len() == out0;
                if input.is_empty() && out.len() < out.capacity() {
                    break;
                }
                if stalled && out.len() < out.capacity() {
                    return Err(Failure::Protocol);
                }
            }
        }
        if ended || self.fresh_each_message {
            self.inflater = None;
        }
        Ok(out)
    }

    /// Hands tungstenite one final frame holding `payload`.
    fn emit(&mut self, opcode: u8, payload: &[u8]) {
        let header = FrameHeader {
            opcode: OpCode::from(opcode),
            ..FrameHeader::default()
        };
        self.write_header(header, payload.len() as u64);
        self.out.extend_from_slice(payload);
    }

    /// Writes `header` (final, no reserved bit unless it says so) for a
    /// payload of `len`, as the peer would have: masked with a zero key
    /// from a client.
    fn write_header(&mut self, mut header: FrameHeader, len: u64) {
        if self.role == Role::Server {
            header.mask = Some([0; 4]);
        }
        // Cannot fail: the buffer grows as it is written.
        let _ = header.format(len, &mut (&mut self.out).writer());
    }

    /// Hands tungstenite a frame it fails the way `f` should fail the
    /// socket, and stops reading.
    fn fail(&mut self, f: Failure) {
        self.raw.clear();
        self.gathering = None;
        match f {
            // A text frame with all reserved bits set: 1002.
            Failure::Protocol => {
                let header = FrameHeader {
                    rsv1: true,
                    rsv2: true,
                    rsv3: true,
                    ..text_header()
                };
                self.write_header(header, 0);
            }
            // A frame announced bigger than the limit: 1009.
            Failure::TooBig => {
                let too_big = (self.max_message as u64).saturating_add(1);
                self.write_header(text_header(), too_big);
            }
        }
        self.failed = true;
    }
}

/// Why this layer fails a socket.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Protocol,
    TooBig,
}

/// A parsed frame header.
struct Header {
    fin: bool,
    rsv1: bool,
    rsv23: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    /// Header length in bytes.
    len: usize,
    payload: u64,
}

/// A frame header RFC 6455 forbids outright (the socket fails with 1002).
#[derive(Debug, PartialEq, Eq)]
struct Invalid;

/// A final text frame's header.
fn text_header() -> FrameHeader {
    FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    }
}

impl Header {
    /// The header at the start of `b` (tungstenite's parser): `Ok(None)`
    /// until all of it is there.
    ///
    /// # Errors
    /// [`Invalid`] for a reserved opcode, or a 64-bit length with its most
    /// significant bit set (RFC 6455 §5.2: it MUST be 0).
    fn parse(b: &[u8]) -> Result<Option<Header>, Invalid> {
        let mut cursor = std::io::Cursor::new(b);
        let (h, payload) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok(None),
            Err(_) => return Err(Invalid),
        };
        if payload >> 63 != 0 {
            return Err(Invalid);
        }
        Ok(Some(Header {
            fin: h.is_final,
            rsv1: h.rsv1,
            rsv23: h.rsv2 || h.rsv3,
            opcode: u8::from(h.opcode),
            mask: h.mask,
            // At most 14 bytes.
            len: cursor.position() as usize,
            payload,
        }))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Inflating<S> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(v: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(
            "sec-websocket-extensions",
            HeaderValue::from_str(v).unwrap(),
        );
        negotiate(&h).map(|(_, v)| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn negotiates_what_browsers_offer() {
        assert_eq!(
            offer("permessage-deflate; client_max_window_bits").as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        assert_eq!(
            offer("permessage-deflate; server_max_window_bits=10; client_no_context_takeover")
                .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
            )
        );
        // A bad offer is declined; the next one is taken.
        assert_eq!(
            offer("permessage-deflate; server_max_window_bits=7, permessage-deflate").as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        assert_eq!(offer("permessage-deflate; foo"), None);
        assert_eq!(
            offer("permessage-deflate; client_no_context_takeover; client_no_context_takeover"),
            None
        );
        assert_eq!(offer("x-webkit-deflate-frame"), None);
    }

    #[test]
    fn compresses_as_a_sync_flushed_message() {
        for data in [
            &b""[..],
            b"a",
            br#"{"bid":1.5,"ask":1.6,"bid":1.5,"ask":1.6}"#,
        ] {
            let c = compress(data);
            let mut d = Decompress::new(false);
            let mut input = c.to_vec();
            input.extend_from_slice(&TAIL);
            let mut out = Vec::with_capacity(1024);
            d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(out, data);
            let mut d = Decompress::new(false);
            let mut input = stored(data).to_vec();
            input.extend_from_slice(&TAIL);
            let mut out = Vec::with_capacity(1024);
            d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(out, data);
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// What a socket with the extension keeps while idle, besides its
    /// buffers (freed when drained) and inflater (dropped between
    /// messages when the client agreed).
    #[test]
    fn the_read_state_stays_small() {
        let size = std::mem::size_of::<super::ReadState>();
        assert!(size <= 192, "ReadState is {size} bytes");
    }
}
