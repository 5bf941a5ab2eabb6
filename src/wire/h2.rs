//! HTTP/2: which transport each byte of a connection served, read from the
//! frames themselves.
//!
//! hyper does not tell a handler which stream its request came on, and one
//! connection may carry a long poll, an SSE stream and a WebSocket at once.
//! So [`FrameIo`] reads the frame headers going both ways (9 bytes each:
//! length, type, flags, stream) and gives each frame, header included, to
//! its stream's transport. A stream's transport comes from its request's
//! `:path`, decoded from the header block with an HPACK decoder that
//! follows the client's, block by block, exactly as hyper's does.
//!
//! - Frames of stream 0 (SETTINGS, PING, connection WINDOW_UPDATE, GOAWAY)
//!   and the client's preface go to the connection's latest stream's
//!   transport; before the first stream, they wait for it (so does the TLS
//!   handshake, in the ledger below).
//! - A header block is the transport's it opens; a frame for a stream this
//!   meter does not know (refused, already answered) goes to the latest.
//! - The connection is counted in `feedgate_connections` under its latest
//!   stream's transport.
//!
//! Everything read is untrusted: lengths are checked, a header block is
//! gathered up to [`MAX_BLOCK`] bytes (larger ones, and blocks that do not
//! decode, make their stream `other`; hyper refuses them anyway), and the
//! stream table holds only streams the server has not finished answering.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::account::{Account, Dir};
use crate::admit::Route;
use crate::metrics::Transport;

/// The client's connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Largest header block gathered to learn a stream's transport.
pub const MAX_BLOCK: usize = 64 << 10;
/// The dynamic table size the server advertises (HTTP/2's default).
const HEADER_TABLE_SIZE: usize = 4096;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// Attributes one HTTP/2 connection's bytes to transports.
pub(crate) struct H2Meter {
    account: Account,
    state: Mutex<State>,
}

struct State {
    read: Framer,
    write: Framer,
    /// The transports of the streams not yet answered in full.
    streams: HashMap<u32, Transport>,
    /// The latest stream's transport.
    latest: Option<Transport>,
    /// Connection-level bytes before the first stream, by direction.
    pending: [u64; 2],
    /// The header block being gathered (client side), and the bytes of
    /// the frames that carry it.
    block: Option<Block>,
    hpack: fluke_hpack::Decoder<'static>,
    /// The HPACK decoder lost track (a block too large or undecodable):
    /// every later stream is `other`.
    lost: bool,
    /// Since when no stream has been open (`None`: one is).
    idle_since: Option<Instant>,
}

/// A header block in the making.
struct Block {
    stream: u32,
    fragment: Vec<u8>,
    /// Wire bytes of its frames so far, headers included.
    wire: u64,
    /// Too large to decode: its stream is `other`.
    overflow: bool,
    /// The HEADERS frame said so: the stream's request has no body.
    end_stream: bool,
}

/// Where one direction's parse is.
struct Framer {
    /// Preface bytes still to come (client side only).
    preface: usize,
    head: [u8; 9],
    head_len: usize,
    frame: Option<Frame>,
}

/// The frame being read.
#[derive(Clone, Copy)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    /// Payload bytes still to come.
    left: usize,
    /// Payload bytes seen so far.
    seen: usize,
    /// A HEADERS frame's padding and priority fields: payload bytes to
    /// skip at the start (once known) and at the end.
    skip_front: usize,
    pad: usize,
}

impl Framer {
    fn new(preface: usize) -> Self {
        Framer {
            preface,
            head: [0; 9],
            head_len: 0,
            frame: None,
        }
    }
}

impl H2Meter {
    /// A meter for an HTTP/2 connection (the client's preface still to
    /// come), counting into `account`.
    pub(crate) fn new(account: Account) -> Self {
        let mut hpack = fluke_hpack::Decoder::new();
        hpack.set_max_allowed_table_size(HEADER_TABLE_SIZE);
        H2Meter {
            account,
            state: Mutex::new(State {
                read: Framer::new(PREFACE.len()),
                write: Framer::new(0),
                streams: HashMap::new(),
                latest: None,
                pending: [0; 2],
                block: None,
                hpack,
                lost: false,
                idle_since: Some(Instant::now()),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State, &Account) -> R) -> R {
        f(
            &mut self.state.lock().unwrap_or_else(PoisonError::into_inner),
            &self.account,
        )
    }

    /// Bytes read from the peer.
    pub(crate) fn read(&self, bytes: &[u8]) {
        self.with(|s, account| s.feed(Dir::In, bytes, account));
    }

    /// Bytes written to the peer.
    pub(crate) fn wrote(&self, bytes: &[u8]) {
        self.with(|s, account| s.feed(Dir::Out, bytes, account));
    }

    /// How long the connection has had no open stream.
    pub(crate) fn idle_for(&self) -> Duration {
        self.with(|s, _| s.idle_since.map_or(Duration::ZERO, |t| t.elapsed()))
    }

    /// The reader waits for more: everything read is attributed.
    pub(crate) fn read_idle(&self) {
        self.account.read_idle();
    }
}

impl Drop for H2Meter {
    fn drop(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let block = s.block.take().map_or(0, |b| b.wire);
        let [pin, pout] = std::mem::take(&mut s.pending);
        let t = s.latest.unwrap_or(Transport::Other);
        self.account.add(Dir::In, t, pin.saturating_add(block));
        self.account.add(Dir::Out, t, pout);
    }
}

impl State {
    /// Attributes `bytes` going `dir`, frame by frame.
    fn feed(&mut self, dir: Dir, mut bytes: &[u8], account: &Account) {
        while !bytes.is_empty() {
            let framer = match dir {
                Dir::In => &mut self.read,
                Dir::Out => &mut self.write,
            };
            if framer.preface > 0 {
                let n = framer.preface.min(bytes.len());
                framer.preface -= n;
                bytes = &bytes[n..];
                self.connection_level(dir, n as u64, account);
                continue;
            }
            let Some(frame) = framer.frame else {
                let n = (9 - framer.head_len).min(bytes.len());
                framer.head[framer.head_len..framer.head_len + n].copy_from_slice(&bytes[..n]);
                framer.head_len += n;
                bytes = &bytes[n..];
                if framer.head_len < 9 {
                    // The header's bytes so far: counted with the frame.
                    continue;
                }
                framer.head_len = 0;
                let h = framer.head;
                let frame = Frame {
                    left: usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]),
                    kind: h[3],
                    flags: h[4],
                    stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                    seen: 0,
                    skip_front: 0,
                    pad: 0,
                };
                framer.frame = Some(frame);
                self.frame_started(dir, frame, account);
                if frame.left == 0 {
                    self.frame_ended(dir, frame, account);
                }
                continue;
            };
            let n = frame.left.min(bytes.len());
            let payload = &bytes[..n];
            bytes = &bytes[n..];
            self.payload(dir, frame, payload, account);
            let framer = match dir {
                Dir::In => &mut self.read,
                Dir::Out => &mut self.write,
            };
            if let Some(f) = framer.frame.as_mut() {
                f.left -= n;
                f.seen += n;
                if f.left == 0 {
                    let f = *f;
                    framer.frame = None;
                    self.frame_ended(dir, f, account);
                }
            }
        }
    }

    /// A frame's 9-byte header has been read.
    fn frame_started(&mut self, dir: Dir, f: Frame, account: &Account) {
        let header_block = dir == Dir::In && matches!(f.kind, HEADERS | CONTINUATION);
        if header_block {
            let block = self.block.get_or_insert_with(|| Block {
                stream: f.stream,
                fragment: Vec::new(),
                wire: 0,
                overflow: false,
                end_stream: false,
            });
            block.wire = block.wire.saturating_add(9);
            if f.kind == HEADERS {
                block.end_stream = f.flags & END_STREAM != 0;
                let read = &mut self.read;
                if let Some(frame) = read.frame.as_mut() {
                    frame.skip_front = usize::from(f.flags & PRIORITY != 0) * 5;
                    // The pad length byte comes first; its value is read
                    // with the payload.
                    frame.skip_front += usize::from(f.flags & PADDED != 0);
                }
            }
            return;
        }
        self.stream_bytes(dir, f.stream, 9, account);
    }

    /// Payload bytes of frame `f`.
    fn payload(&mut self, dir: Dir, f: Frame, payload: &[u8], account: &Account) {
        let header_block = dir == Dir::In && matches!(f.kind, HEADERS | CONTINUATION);
        if !header_block {
            self.stream_bytes(dir, f.stream, payload.len() as u64, account);
            return;
        }
        let Some(block) = self.block.as_mut() else {
            return;
        };
        block.wire = block.wire.saturating_add(payload.len() as u64);
        if block.overflow {
            return;
        }
        // This chunk's place in the frame's payload, and what of it is
        // the header block fragment (not padding, not priority).
        let (start, end) = (f.seen, f.seen + payload.len());
        let mut pad = f.pad;
        if f.kind == HEADERS && f.flags & PADDED != 0 && start == 0 {
            pad = usize::from(payload[0]);
            if let Some(frame) = self.read.frame.as_mut() {
                frame.pad = pad;
            }
        }
        let total = end + f.left - payload.len();
        let (skip_front, fragment_end) = match f.kind {
            HEADERS => (f.skip_front, total.saturating_sub(pad)),
            _ => (0, total),
        };
        let from = skip_front.max(start).min(end) - start;
        let to = fragment_end.max(start).min(end).max(start + from) - start;
        let take = &payload[from..to];
        if block.fragment.len().saturating_add(take.len()) > MAX_BLOCK {
            block.overflow = true;
            block.fragment = Vec::new();
        } else {
            block.fragment.extend_from_slice(take);
        }
    }

    /// Frame `f` has been read whole.
    fn frame_ended(&mut self, dir: Dir, f: Frame, account: &Account) {
        let header_block = dir == Dir::In && matches!(f.kind, HEADERS | CONTINUATION);
        if header_block {
            if f.flags & END_HEADERS != 0
                && let Some(block) = self.block.take()
            {
                self.block_done(block, account);
            }
            return;
        }
        // The server finished a stream (its answer's last frame), or
        // either side reset it: it needs no table entry any more.
        let finished = match (dir, f.kind) {
            (_, RST_STREAM) => true,
            (Dir::Out, DATA | HEADERS) => f.flags & END_STREAM != 0,
            _ => false,
        };
        if finished && f.stream != 0 {
            self.streams.remove(&f.stream);
            if self.streams.is_empty() {
                self.idle_since = Some(Instant::now());
            }
        }
    }

    /// A whole header block from the client: the stream's transport.
    fn block_done(&mut self, block: Block, account: &Account) {
        let known = self.streams.get(&block.stream).copied();
        let t = if block.overflow || self.lost {
            self.lost = true;
            Transport::Other
        } else {
            let mut path: Option<Vec<u8>> = None;
            let decoded = self.hpack.decode_with_cb(&block.fragment, |name, value| {
                if name.as_ref() == b":path" {
                    path = Some(value.into_owned());
                }
            });
            match (decoded, path) {
                (Ok(()), Some(p)) => {
                    let p = String::from_utf8_lossy(&p);
                    let path = p.split('?').next().unwrap_or("");
                    Route::parse(path).transport()
                }
                (Ok(()), None) => known.unwrap_or(Transport::Other),
                (Err(_), _) => {
                    // The dynamic table can no longer be followed.
                    self.lost = true;
                    Transport::Other
                }
            }
        };
        // Trailers belong to their stream; a new stream opens with this.
        let t = known.unwrap_or(t);
        if known.is_none() {
            self.streams.insert(block.stream, t);
            self.idle_since = None;
            self.latest = Some(t);
            account.count_under(t);
            // What waited for the first stream is its.
            let [pin, pout] = std::mem::take(&mut self.pending);
            account.add(Dir::In, t, pin);
            account.add(Dir::Out, t, pout);
        }
        account.add(Dir::In, t, block.wire);
        let _ = block.end_stream;
    }

    /// `n` bytes of a frame on `stream` going `dir`.
    fn stream_bytes(&mut self, dir: Dir, stream: u32, n: u64, account: &Account) {
        if stream == 0 {
            return self.connection_level(dir, n, account);
        }
        match self.streams.get(&stream).copied().or(self.latest) {
            Some(t) => account.add(dir, t, n),
            None => self.connection_level(dir, n, account),
        }
    }

    /// `n` bytes of the connection itself going `dir`.
    fn connection_level(&mut self, dir: Dir, n: u64, account: &Account) {
        match self.latest {
            Some(t) => account.add(dir, t, n),
            None => {
                let p = &mut self.pending[dir as usize];
                *p = p.saturating_add(n);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// An HTTP/2 connection's IO, its frames attributed as they pass.
    pub(crate) struct FrameIo<T> {
        #[pin]
        inner: T,
        meter: std::sync::Arc<H2Meter>,
    }
}

impl<T> FrameIo<T> {
    /// Wraps `inner`, attributing with `meter`.
    pub(crate) fn new(inner: T, meter: std::sync::Arc<H2Meter>) -> Self {
        FrameIo { inner, meter }
    }
}

impl<T: AsyncRead> AsyncRead for FrameIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        match res {
            Poll::Ready(Ok(())) => this.meter.read(&buf.filled()[before..]),
            Poll::Pending => this.meter.read_idle(),
            Poll::Ready(Err(_)) => {}
        }
        res
    }
}

impl<T: AsyncWrite> AsyncWrite for FrameIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.meter.wrote(&buf[..n.min(buf.len())]);
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(mut n)) = res {
            for b in bufs {
                let take = n.min(b.len());
                this.meter.wrote(&b[..take]);
                n -= take;
                if n == 0 {
                    break;
                }
            }
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metrics::{Link, Metrics};

    const LINK: Link = Link {
        h2: true,
        tls: false,
    };

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A header block for `path`, literal without indexing, so that any
    /// HPACK decoder reads it without a table.
    fn request(path: &str) -> Vec<u8> {
        let mut b = vec![0x82]; // :method GET (static index 2)
        b.push(0x04); // :path, literal without indexing, name index 4
        b.push(path.len() as u8);
        b.extend_from_slice(path.as_bytes());
        b
    }

    fn wire(m: &Metrics, t: Transport) -> (u64, u64) {
        let lm = m.transport(t).on(LINK);
        (lm.wire_in.get(), lm.wire_out.get())
    }

    #[test]
    fn frames_go_to_their_streams_transports() {
        let m = Arc::new(Metrics::new());
        let meter = H2Meter::new(Account::new(m.clone(), LINK, None));
        let mut client = PREFACE.to_vec();
        client.extend(frame(0x4, 0, 0, &[])); // SETTINGS
        let settings_ack = frame(0x4, 0x1, 0, &[]);
        meter.wrote(&frame(0x4, 0, 0, &[0, 3, 0, 0, 1, 0])); // server SETTINGS
        let sse = frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &request("/topics/a/sse"),
        );
        let poll = frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            3,
            &request("/poll?topics=a"),
        );
        client.extend(&sse);
        // Split anywhere: the parse does not care.
        for chunk in client.chunks(7) {
            meter.read(chunk);
        }
        meter.read(&poll[..5]);
        meter.read(&poll[5..]);
        meter.read(&settings_ack);
        let sse_answer = frame(DATA, 0, 1, b"data: x\n\n");
        let poll_answer = frame(DATA, END_STREAM, 3, b"{}");
        meter.wrote(&[sse_answer.clone(), poll_answer.clone()].concat());
        let (sse_in, sse_out) = wire(&m, Transport::Sse);
        // The preface, the client's SETTINGS and the server's waited for
        // the first stream: SSE's.
        assert_eq!(sse_in, (24 + 9 + sse.len()) as u64);
        assert_eq!(sse_out, (15 + sse_answer.len()) as u64);
        // The ack came after the poll's stream: the latest's.
        assert_eq!(
            wire(&m, Transport::Poll),
            ((poll.len() + 9) as u64, poll_answer.len() as u64)
        );
        assert_eq!(m.transport(Transport::Poll).on(LINK).connections.get(), 1);
        drop(meter);
        assert_eq!(m.transport(Transport::Poll).on(LINK).connections.get(), 0);
    }

    #[test]
    fn padded_and_continued_blocks_decode() {
        let m = Arc::new(Metrics::new());
        let meter = H2Meter::new(Account::new(m.clone(), LINK, None));
        meter.read(PREFACE);
        let block = request("/topics/t/ws");
        // HEADERS padded, with priority, carrying the first 3 bytes of the
        // block; a CONTINUATION with the rest.
        let mut first = vec![4u8]; // pad length
        first.extend_from_slice(&[0, 0, 0, 0, 16]); // priority
        first.extend_from_slice(&block[..3]);
        first.extend_from_slice(&[0; 4]);
        let headers = frame(HEADERS, PADDED | PRIORITY, 5, &first);
        let cont = frame(CONTINUATION, END_HEADERS, 5, &block[3..]);
        meter.read(&headers);
        meter.read(&cont);
        assert_eq!(
            wire(&m, Transport::Ws).0,
            (24 + headers.len() + cont.len()) as u64
        );
    }

    #[test]
    fn garbage_and_huge_blocks_are_other_not_a_panic() {
        let m = Arc::new(Metrics::new());
        let meter = H2Meter::new(Account::new(m.clone(), LINK, None));
        meter.read(PREFACE);
        meter.read(&frame(HEADERS, END_HEADERS, 1, &[0xff; 40]));
        let big = vec![0u8; MAX_BLOCK + 10];
        meter.read(&frame(HEADERS, 0, 3, &big[..16384]));
        for _ in 0..5 {
            meter.read(&frame(CONTINUATION, 0, 3, &big[..16384]));
        }
        meter.read(&[0xff; 9]);
        meter.read(&[0xff; 100]);
        drop(meter);
        let total: u64 = Transport::ALL.iter().map(|t| wire(&m, *t).0).sum();
        assert_eq!(total, (24 + 49 + 9 + 16384 + 5 * (9 + 16384) + 109) as u64);
    }
}
