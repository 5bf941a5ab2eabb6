//! SSE streams served off hyper: the first request of an HTTP/1.1
//! connection has its head read here, and when it opens an SSE stream its
//! response is written here too, straight to the connection.
//!
//! hyper keeps two buffers per HTTP/1.1 connection for as long as the
//! connection lives: the one it reads request heads into and the one it
//! writes response heads and chunks through, 8 KiB each. A long poll
//! holds them for seconds; an SSE stream holds them for hours, and of an
//! idle stream's 13.7 KiB they were most (docs/benchmarks.md, "Idle
//! connections"). An SSE stream reads nothing after its head and writes
//! whole chunks the feed made, so neither buffer does anything for it:
//! here the head is read into a buffer that is let go once parsed, the
//! request is admitted by the router as every request is
//! ([`router::handle_sse`]), and the answer is written by [`Answer`] —
//! the status line and headers, then each body frame as one chunk — with
//! nothing kept between writes but the chunk in flight.
//!
//! Everything else goes to hyper, with the bytes read so far given back
//! first ([`Rewind`]): a head that is not an SSE subscription, one that
//! does not parse or is too large (hyper answers 400 or 431 as before),
//! an SSE request that follows others on a keep-alive connection (hyper
//! serves it as before), and the connection after a refused SSE request
//! (a 4xx answer has a length: the connection lives on).

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
use crate::http::response::MeteredBody;
use crate::metrics::Transport;
use crate::router;

/// Headers a request head may have (hyper's own limit).
const MAX_HEADERS: usize = 100;
/// What the head buffer starts at: most heads are a few hundred bytes.
const FIRST_READ: usize = 1024;

/// What the first request head of a connection turned out to be.
pub(super) enum First {
    /// An SSE subscription, to be served here.
    Sse(Request<()>),
    /// Anything else: hyper reads these bytes first.
    Hyper(Bytes),
    /// The peer went away, or sent no whole head in time.
    Gone,
}

/// Reads the connection's first request head, within `limit`.
pub(super) async fn first_head<T: AsyncRead + Unpin>(io: &mut T, limit: Duration) -> First {
    let read = async {
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        loop {
            if buf.len() == buf.capacity() {
                buf.reserve(buf.len());
            }
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return First::Gone,
                Ok(_) => {}
            }
            match sse_request(&buf) {
                Parsed::Partial if buf.len() < MAX_HEAD_BYTES => {}
                Parsed::Sse(req) => return First::Sse(*req),
                // Not one, malformed or too large: hyper says what it says.
                Parsed::Partial | Parsed::Other => return First::Hyper(buf.freeze()),
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or(First::Gone)
}

enum Parsed {
    Partial,
    Sse(Box<Request<()>>),
    Other,
}

/// Whether `buf` holds a whole request head that subscribes to SSE the
/// way this file serves: `GET` on HTTP/1.1, no body, no upgrade, and
/// nothing after the head (a client that pipelines is served by hyper).
fn sse_request(buf: &[u8]) -> Parsed {
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
    if n != buf.len() || route.transport() != Transport::Sse || matches!(route, Route::Probe(_)) {
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
    Parsed::Sse(Box::new(req))
}

/// Answers `req` on `io`: the router admits it and its transport answers;
/// the answer is written here. `Ok(true)` when it was whole and the
/// connection may go on (a refusal); `Ok(false)` when the connection ends
/// with it (a stream, or `Connection: close`).
pub(super) fn answer<'a, T>(
    app: &App,
    io: &'a mut T,
    conn: &Conn,
    peer: IpAddr,
    req: Request<()>,
) -> Answer<'a, T> {
    let res = router::handle_sse(app.clone(), conn.clone(), peer, req);
    Answer {
        io,
        state: State::Admitting(Box::pin(res)),
        out: Bytes::new(),
    }
}

/// The answer to an SSE request, written by hand.
pub(super) struct Answer<'a, T> {
    io: &'a mut T,
    state: State,
    /// Bytes the socket has yet to take.
    out: Bytes,
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
    /// Reads and drops what the peer sends while a stream is written (a
    /// stream's connection takes no other request): `Ready` when the peer
    /// is gone.
    fn poll_peer_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0u8; 64];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *self.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
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
    type Output = io::Result<bool>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            if let State::Body { chunked: true, .. } = this.state
                && this.poll_peer_gone(cx).is_ready()
            {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if this.poll_out(cx)?.is_pending() {
                return Poll::Pending;
            }
            match &mut this.state {
                State::Admitting(res) => {
                    let res = std::task::ready!(res.as_mut().poll(cx));
                    let (head, state) = head_of(res);
                    this.out = head;
                    this.state = state;
                }
                State::Body {
                    body,
                    chunked,
                    framed,
                    keep_alive,
                } => match std::task::ready!(Pin::new(&mut *body).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        if data.is_empty() {
                            // An empty chunk would end the body.
                            continue;
                        }
                        this.out = if *chunked && !*framed {
                            chunk(&data)
                        } else {
                            data
                        };
                    }
                    None => {
                        if *chunked {
                            this.out = Bytes::from_static(b"0\r\n\r\n");
                        }
                        this.state = State::Last {
                            keep_alive: *keep_alive,
                        };
                    }
                },
                State::Last { keep_alive } => return Poll::Ready(Ok(*keep_alive)),
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> super::connection::Drain for Answer<'_, T> {
    /// An SSE stream ends itself when the server drains (its feed says so:
    /// `retry:` and a `restart` event, then the last chunk); a refusal is
    /// whole already.
    fn drain(self: Pin<&mut Self>) {}
}

/// The status line and headers of `res` (with `Date`, and the framing:
/// its length, else chunked), and what writes its body.
fn head_of(res: Response<MeteredBody>) -> (Bytes, State) {
    let (parts, body) = res.into_parts();
    let framed = parts.extensions.get::<Prechunked>().is_some();
    let mut head = BytesMut::with_capacity(256);
    head.put_slice(b"HTTP/1.1 ");
    head.put_slice(parts.status.as_str().as_bytes());
    head.put_u8(b' ');
    head.put_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    head.put_slice(b"\r\n");
    for (name, value) in &parts.headers {
        head.put_slice(name.as_str().as_bytes());
        head.put_slice(b": ");
        head.put_slice(value.as_bytes());
        head.put_slice(b"\r\n");
    }
    head.put_slice(b"date: ");
    head.put_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    head.put_slice(b"\r\n");
    let length = body.size_hint().exact();
    match length {
        Some(n) => {
            head.put_slice(b"content-length: ");
            head.put_slice(n.to_string().as_bytes());
            head.put_slice(b"\r\n");
        }
        None => head.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    head.put_slice(b"\r\n");
    let close = parts
        .headers
        .get(header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let state = State::Body {
        body,
        chunked: length.is_none(),
        framed,
        keep_alive: length.is_some() && !close,
    };
    (head.freeze(), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(head: &str) -> Option<Request<()>> {
        match sse_request(head.as_bytes()) {
            Parsed::Sse(r) => Some(*r),
            _ => None,
        }
    }

    /// Only a plain SSE subscription is served off hyper; anything that
    /// needs hyper (a body, an upgrade, HTTP/1.0, pipelining, another
    /// route, the doctor's probe) is left to it.
    #[test]
    fn only_a_plain_sse_head_is_taken() {
        let req = parsed("GET /topics/t/sse?after=3 HTTP/1.1\r\nHost: a\r\nX: 1\r\nX: 2\r\n\r\n")
            .expect("an SSE head");
        assert_eq!(req.uri().path(), "/topics/t/sse");
        assert_eq!(req.uri().query(), Some("after=3"));
        assert_eq!(req.headers().get_all("x").iter().count(), 2);
        assert!(parsed("GET /sse?topics=a,b HTTP/1.1\r\nHost: a\r\n\r\n").is_some());
        assert!(parsed("GET /sse HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
        for other in [
            "GET /topics/t/sse HTTP/1.0\r\n\r\n",
            "POST /topics/t/sse HTTP/1.1\r\n\r\n",
            "GET /topics/t/longpoll HTTP/1.1\r\n\r\n",
            "GET /probe/sse HTTP/1.1\r\n\r\n",
            "GET /topics/t/sse HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
            "GET /topics/t/sse HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /topics/t/sse HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /topics/t/sse HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            "GET /topics/t/sse HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            assert!(parsed(other).is_none(), "{other:?} was taken");
        }
        assert!(matches!(
            sse_request(b"GET /topics/t/sse HTTP/1.1\r\nHost"),
            Parsed::Partial
        ));
    }

    #[test]
    fn a_chunk_is_its_hex_length_the_data_and_a_crlf() {
        assert_eq!(
            &chunk(&[b'x'; 26])[..],
            b"1a\r\nxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
        );
    }
}
