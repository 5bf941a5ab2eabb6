//! Subscriptions served off hyper: on an HTTP/1.1 connection feedgate
//! reads the request heads itself for as long as they are polls, long
//! polls or SSE streams, and writes their answers straight to the
//! connection.
//!
//! hyper keeps two buffers per HTTP/1.1 connection for as long as the
//! connection lives: the one it reads request heads into and the one it
//! writes response heads and chunks through, 8 KiB each. A long poll holds
//! them for its whole wait, an SSE stream for hours, and an idle stream's
//! memory was mostly them (docs/benchmarks.md, "Idle connections"). A
//! subscription reads nothing after its head, and writes an answer the
//! transport made whole (a poll's JSON) or chunks the feed made (a
//! stream's events), so neither buffer does anything for it: here each
//! head is read into a buffer that is let go once parsed, the request is
//! admitted by the router as every request is ([`router::handle_direct`]),
//! and the answer is written by [`Answer`] — the status line and headers,
//! then the body (with its length, or each frame as one chunk) — with
//! nothing kept between writes but the bytes in flight. Bytes a client
//! sends while its poll is held (a pipelined request) are kept, bounded,
//! for the next head.
//!
//! Everything else goes to hyper, for the rest of the connection, with the
//! bytes read so far given back first ([`Rewind`]): a head that is not a
//! subscription (a publish, a WebSocket upgrade, the metrics, …), one that
//! does not parse or is too large (hyper answers 400 or 431 as before),
//! `HEAD` and HTTP/1.0 requests.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hyper::body::Body as _;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::MAX_HEAD_BYTES;
use super::connection::Conn;
use crate::admit::Route;
use crate::app::App;
use crate::http::chunk::{Prechunked, chunk};
use crate::http::head::{self, Framing, wants_close};
use crate::http::response::{MeteredBody, Written};
use crate::metrics::Transport;
use crate::router;

/// Headers a request head may have (hyper's own limit).
const MAX_HEADERS: usize = 100;
/// What the head buffer starts at: most heads are a few hundred bytes.
const FIRST_READ: usize = 1024;

/// What the next request head of a connection turned out to be.
pub(super) enum Next {
    /// A subscription, to be answered here.
    Direct(Request<()>),
    /// Anything else: hyper reads these bytes first, and serves the rest of
    /// the connection.
    Hyper(Bytes),
    /// The peer went away, or sent no whole head in time.
    Gone,
}

/// Reads the connection's next request head, starting with `carry` (bytes
/// read while the last answer was made), within `limit`.
pub(super) async fn next_head<T: AsyncRead + Unpin>(
    io: &mut T,
    carry: Bytes,
    limit: Duration,
) -> Next {
    let read = async {
        let mut buf = BytesMut::with_capacity(FIRST_READ.max(carry.len()));
        buf.put_slice(&carry);
        drop(carry);
        loop {
            if !buf.is_empty() {
                match subscription(&buf) {
                    Parsed::Partial if buf.len() < MAX_HEAD_BYTES => {}
                    Parsed::Direct(req) => return Next::Direct(*req),
                    // Not one, malformed or too large: hyper says what it
                    // says.
                    Parsed::Partial | Parsed::Other => return Next::Hyper(buf.freeze()),
                }
            }
            if buf.len() == buf.capacity() {
                buf.reserve(buf.len());
            }
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Next::Gone,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or(Next::Gone)
}

pub(crate) enum Parsed {
    Partial,
    Direct(Box<Request<()>>),
    Other,
}

/// Whether `buf` holds a whole request head that subscribes the way this
/// file serves: `GET` on HTTP/1.1 to a poll, long poll or SSE route, no
/// body, no upgrade, and nothing after the head (a client that pipelines
/// is served by hyper).
pub(crate) fn subscription(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let n = match head.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let (Some("GET"), Some(1), Some(target)) = (head.method, head.version, head.path) else {
        return Parsed::Other;
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let route = Route::parse(path);
    let subscribes = matches!(route, Route::Topic(..) | Route::Topics(_))
        && matches!(
            route.transport(),
            Transport::Sse | Transport::LongPoll | Transport::Poll
        );
    if n != buf.len() || !subscribes {
        return Parsed::Other;
    }
    let Ok(uri) = Uri::try_from(target) else {
        return Parsed::Other;
    };
    let mut req = Request::new(());
    *req.uri_mut() = uri;
    for h in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::Other;
        };
        // A body, or a connection that asks for something else: hyper's.
        if name == header::CONTENT_LENGTH && value != "0"
            || [header::TRANSFER_ENCODING, header::UPGRADE, header::EXPECT].contains(&name)
        {
            return Parsed::Other;
        }
        req.headers_mut().append(name, value);
    }
    Parsed::Direct(Box::new(req))
}

/// Answers `req` on `io`: the router admits it and its transport answers;
/// the answer is written here. `Ok(Some(carry))` when it was whole and the
/// connection goes on (`carry`: what the peer sent meanwhile, the start of
/// its next request); `Ok(None)` when the connection ends with it (a
/// stream, or `Connection: close` either way).
pub(super) fn answer<'a, T>(
    app: &App,
    io: &'a mut T,
    conn: &Conn,
    peer: IpAddr,
    req: Request<()>,
) -> Answer<'a, T> {
    let close = wants_close(req.headers());
    let res = router::handle_direct(app.clone(), conn.clone(), peer, req);
    Answer {
        io,
        state: State::Admitting(Box::pin(res)),
        out: Bytes::new(),
        carry: BytesMut::new(),
        close,
    }
}

/// The answer to a subscription, written by hand.
pub(super) struct Answer<'a, T> {
    io: &'a mut T,
    state: State,
    /// Bytes the socket has yet to take.
    out: Bytes,
    /// What the peer sent after its head, before the answer was whole.
    carry: BytesMut,
    /// The request said `Connection: close`.
    close: bool,
}

enum State {
    /// The router is at work on the request.
    Admitting(Pin<Box<dyn Future<Output = Response<MeteredBody>> + Send>>),
    /// The body's frames go out, chunked or (with a length) as they are.
    Body {
        body: MeteredBody,
        chunked: bool,
        /// The frames are chunks already ([`Prechunked`]).
        framed: bool,
        keep_alive: bool,
    },
    /// The last bytes are going out.
    Last { keep_alive: bool },
}

impl<T: AsyncRead + AsyncWrite + Unpin> Answer<'_, T> {
    /// Reads what the peer sends while the answer is made: `Ready` when
    /// the peer is gone. A stream's connection takes no other request, so
    /// what comes during a stream is dropped; before, it is kept for the
    /// next head (up to the largest head: then the peer is not read until
    /// the answer is out).
    fn poll_peer_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let streaming = matches!(self.state, State::Body { chunked: true, .. });
        let mut scratch = [0u8; 512];
        loop {
            if !streaming && self.carry.len() >= MAX_HEAD_BYTES {
                return Poll::Pending;
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *self.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    if !streaming {
                        self.carry.put_slice(buf.filled());
                    }
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Writes `out` until the socket has it all (`Ready(Ok)`) or would
    /// block.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            match Pin::new(&mut *self.io).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.out.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut *self.io).poll_flush(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for Answer<'_, T> {
    type Output = io::Result<Option<Bytes>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            // The peer is read while the answer is made and while a stream
            // goes out; not once a whole answer's last bytes are written.
            let reading = !matches!(this.state, State::Last { .. });
            if reading && this.poll_peer_gone(cx).is_ready() {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if this.poll_out(cx)?.is_pending() {
                return Poll::Pending;
            }
            match &mut this.state {
                State::Admitting(res) => {
                    let res = std::task::ready!(res.as_mut().poll(cx));
                    let (head, state) = head_of(res);
                    this.state = state;
                    // A body ready at once (a poll's answer, a stream's
                    // opening) goes out with the head, in one write. Only
                    // here is the body polled with bytes unsent: a stream
                    // parks on the fast path no sooner than its second
                    // chunk, so it cannot have parked on its first.
                    this.out = match poll_body(&mut this.state, cx) {
                        Poll::Ready(Some(first)) => {
                            let mut both = BytesMut::with_capacity(head.len() + first.len());
                            both.put_slice(&head);
                            both.put_slice(&first);
                            both.freeze()
                        }
                        _ => head,
                    };
                }
                State::Body { .. } => {
                    if let Some(next) = std::task::ready!(poll_body(&mut this.state, cx)) {
                        this.out = next;
                    }
                }
                State::Last { keep_alive } => {
                    let carry = std::mem::take(&mut this.carry).freeze();
                    return Poll::Ready(Ok((*keep_alive && !this.close).then_some(carry)));
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> super::connection::Drain for Answer<'_, T> {
    /// A subscription answers by itself when the server drains (a held
    /// long poll now, an SSE stream with `retry:` and a `restart` event),
    /// and the connection closes after it: nothing to do here.
    fn drain(self: Pin<&mut Self>) {}
}

/// The body's next bytes, framed (a chunk, the last chunk, or as they
/// are): `Ready(None)` when there are none left to write; the state moves
/// to `Last` once the body is done.
fn poll_body(state: &mut State, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
    let State::Body {
        body,
        chunked,
        framed,
        keep_alive,
    } = state
    else {
        return Poll::Ready(None);
    };
    loop {
        match std::task::ready!(Pin::new(&mut *body).poll_frame(cx)) {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    // An empty chunk would end the body.
                    continue;
                }
                return Poll::Ready(Some(if *chunked && !*framed {
                    chunk(&data)
                } else {
                    data
                }));
            }
            None => {
                let last = chunked.then_some(Bytes::from_static(b"0\r\n\r\n"));
                *state = State::Last {
                    keep_alive: *keep_alive,
                };
                return Poll::Ready(last);
            }
        }
    }
}

/// The status line and headers of `res` (with `Date`, and the framing:
/// its length, else chunked; none for 204 and 304, which have no body),
/// and what writes its body. A response the fast path wrote already
/// ([`Written`]) has no head here: its body is the rest, as it is.
fn head_of(res: Response<MeteredBody>) -> (Bytes, State) {
    let (parts, body) = res.into_parts();
    if parts.extensions.get::<Written>().is_some() {
        let state = State::Body {
            body,
            chunked: false,
            framed: false,
            keep_alive: true,
        };
        return (Bytes::new(), state);
    }
    let framed = parts.extensions.get::<Prechunked>().is_some();
    let framing = Framing::of(parts.status, body.size_hint().exact());
    let head = head::head(&parts, framing);
    let state = State::Body {
        body,
        chunked: framing == Framing::Chunked,
        framed,
        keep_alive: framing != Framing::Chunked && !wants_close(&parts.headers),
    };
    (head, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(head: &str) -> Option<Request<()>> {
        match subscription(head.as_bytes()) {
            Parsed::Direct(r) => Some(*r),
            _ => None,
        }
    }

    /// Only a plain subscription (poll, long poll, SSE) is served off
    /// hyper; anything that needs hyper (a body, an upgrade, HTTP/1.0,
    /// `HEAD`, pipelining, another route, the doctor's probe) is left to
    /// it.
    #[test]
    fn only_a_plain_subscription_head_is_taken() {
        let req = parsed("GET /topics/t/sse?after=3 HTTP/1.1\r\nHost: a\r\nX: 1\r\nX: 2\r\n\r\n")
            .expect("an SSE head");
        assert_eq!(req.uri().path(), "/topics/t/sse");
        assert_eq!(req.uri().query(), Some("after=3"));
        assert_eq!(req.headers().get_all("x").iter().count(), 2);
        for taken in [
            "GET /sse?topics=a,b HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /sse HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "GET /topics/t/longpoll?after=1 HTTP/1.1\r\n\r\n",
            "GET /longpoll?topics=a HTTP/1.1\r\n\r\n",
            "GET /topics/t/poll HTTP/1.1\r\nIf-None-Match: \"x\"\r\n\r\n",
        ] {
            assert!(parsed(taken).is_some(), "{taken:?} was not taken");
        }
        for other in [
            "GET /topics/t/sse HTTP/1.0\r\n\r\n",
            "POST /topics/t/sse HTTP/1.1\r\n\r\n",
            "HEAD /topics/t/poll HTTP/1.1\r\n\r\n",
            "POST /topics/t/events HTTP/1.1\r\n\r\n",
            "GET /topics/t/ws HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1\r\n\r\n",
            "GET /probe/sse HTTP/1.1\r\n\r\n",
            "GET /probe/longpoll HTTP/1.1\r\n\r\n",
            "GET /topics/t/sse HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
            "GET /topics/t/sse HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /topics/t/sse HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /topics/t/sse HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            "GET /topics/t/sse HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            assert!(parsed(other).is_none(), "{other:?} was taken");
        }
        assert!(matches!(
            subscription(b"GET /topics/t/sse HTTP/1.1\r\nHost"),
            Parsed::Partial
        ));
    }
}
