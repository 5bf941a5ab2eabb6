//! One connection, from the accepted socket to its last byte: TLS if the
//! server terminates it (ALPN picks the protocol), HTTP/1.1 or HTTP/2
//! (in the clear, the client's first bytes say which: the HTTP/2 preface,
//! or a request line), the byte-counting layers for that combination
//! (`wire/`), and hyper serving the router — with the write watchdog and
//! the drain.
//!
//! Above this file nothing knows which of the four it is: the router gets a
//! [`Conn`] that says the link for the metrics' labels and, on HTTP/1.1,
//! which meter to tell about each request.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use bytes::Bytes;

use super::MAX_HEAD_BYTES;
use super::direct::{self, Next};
use super::rewind::Rewind;
use crate::app::App;
use crate::metrics::{Limit, Link};
use crate::router;
use crate::sync::stop_signal::StopWatch;
use crate::transport::fanout::Fd;
use crate::wire::account::Account;
use crate::wire::h2::{FrameIo, H2Meter, PREFACE};
use crate::wire::tls_ledger::TlsLedger;
use crate::wire::watch::SocketWatch;
use crate::wire::{CountingIo, H1Meter};

/// What a request's handlers may know of its connection.
#[derive(Clone)]
pub(crate) struct Conn {
    /// HTTP/1.1 or HTTP/2, clear or TLS: the metrics' labels.
    pub link: Link,
    /// On HTTP/1.1, the meter the router tells which transport each
    /// request is (on HTTP/2 the frames say).
    pub h1: Option<Arc<H1Meter>>,
    /// The socket's descriptor when bytes written to it are the bytes on
    /// the wire (cleartext HTTP/1.1): a WebSocket session may then lend it
    /// to the fast path (`transport/fanout.rs`), which counts what it
    /// writes itself. `None` under TLS and on HTTP/2, whose records and
    /// frames are made per connection.
    pub direct: Option<Fd>,
}

impl Conn {
    /// The router classified the current request (HTTP/1.1).
    pub fn route(&self, t: crate::metrics::Transport) {
        if let Some(m) = &self.h1 {
            m.route(t);
        }
    }

    /// The connection was upgraded to WebSocket (HTTP/1.1; on HTTP/2 a
    /// WebSocket is one stream, attributed by its frames).
    pub fn upgraded(&self) {
        if let Some(m) = &self.h1 {
            m.upgraded();
        }
    }
}

/// HTTP/2 streams reset by the client before the server answered them,
/// tolerated at once (CVE-2023-44487, "rapid reset": beyond it the
/// connection is closed with ENHANCE_YOUR_CALM).
const MAX_PENDING_RESETS: usize = 20;
/// Streams the server itself reset for the client's errors, tolerated.
const MAX_ERROR_RESETS: usize = 64;
/// How often an HTTP/2 connection without open streams is looked at: one
/// idle longer than `--header-read-timeout` is closed (GOAWAY), as an idle
/// HTTP/1.1 keep-alive connection is.
const H2_IDLE_CHECK: Duration = Duration::from_secs(1);

/// Serves one accepted connection until it ends, the peer stops reading,
/// or the server drains.
pub(super) async fn serve(app: App, stream: TcpStream, peer: IpAddr, permit: OwnedSemaphorePermit) {
    let watch = Arc::new(SocketWatch::new(Some(permit)));
    let metrics = app.metrics().clone();
    let Some(tls) = app.tls().cloned() else {
        let h2 = app.config().http2 && starts_with_preface(&stream, &app).await;
        let link = Link { h2, tls: false };
        if h2 {
            let meter = Arc::new(H2Meter::new(Account::new(metrics, link, None)));
            let io = FrameIo::new(CountingIo::new(stream, watch.clone()), meter.clone());
            return Box::pin(serve_h2(app, io, meter, peer, link, watch)).await;
        }
        let meter = Arc::new(H1Meter::new(Account::new(metrics, link, None)));
        let direct = raw_fd(&stream);
        let io = CountingIo::new(stream, (meter.clone(), watch.clone()));
        return serve_h1(app, io, meter, peer, (link, direct), watch).await;
    };
    // Boxed: TLS state is large, and a connection in the clear (an idle
    // SSE stream's, say) would otherwise carry room for it.
    Box::pin(serve_tls(app, stream, peer, watch, tls)).await;
}

/// Serves a connection over TLS: the handshake (ALPN picks the protocol),
/// then HTTP/2 or HTTP/1.1 on the decrypted stream.
async fn serve_tls(
    app: App,
    stream: TcpStream,
    peer: IpAddr,
    watch: Arc<SocketWatch>,
    tls: Arc<crate::tls::Tls>,
) {
    let metrics = app.metrics().clone();
    let ledger = Arc::new(TlsLedger::new(
        metrics.clone(),
        Link {
            h2: false,
            tls: true,
        },
    ));
    let socket = CountingIo::new(stream, (ledger.clone(), watch.clone()));
    let limit = app.config().header_read_timeout;
    let stream = match tokio::time::timeout(limit, tls.acceptor().accept(socket)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let link = Link { h2, tls: true };
    ledger.set_link(link);
    if h2 {
        let meter = Arc::new(H2Meter::new(Account::new(metrics, link, Some(ledger))));
        let io = FrameIo::new(stream, meter.clone());
        return serve_h2(app, io, meter, peer, link, watch).await;
    }
    let meter = Arc::new(H1Meter::new(Account::new(metrics, link, Some(ledger))));
    let io = CountingIo::new(stream, meter.clone());
    serve_h1(app, io, meter, peer, (link, None), watch).await
}

/// The descriptor of `stream`, where there are descriptors.
#[cfg(unix)]
fn raw_fd(stream: &TcpStream) -> Option<Fd> {
    use std::os::fd::AsRawFd;
    Some(stream.as_raw_fd())
}

#[cfg(not(unix))]
fn raw_fd(_: &TcpStream) -> Option<Fd> {
    None
}

/// Whether a cleartext client starts with the HTTP/2 preface (prior
/// knowledge): its first bytes are looked at without being taken, so the
/// protocol's own layers count them. An HTTP/1.1 request line starts with
/// a method, never with `PRI `. A client silent past the header-read
/// timeout is taken for HTTP/1.1, whose own timeout then closes it.
async fn starts_with_preface(stream: &TcpStream, app: &App) -> bool {
    let want = &PREFACE[..4];
    let mut buf = [0u8; 4];
    let look = async {
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n >= want.len() => return buf == want,
                Ok(n) if buf[..n] != want[..n] => return false,
                // A prefix of the preface so far: wait for more.
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout(app.config().header_read_timeout, look)
        .await
        .unwrap_or(false)
}

/// Serves HTTP/1.1 on `io`: one request at a time, each told to `meter` by
/// the router; a WebSocket upgrade keeps the socket (and the permit, in
/// `watch`) until its session ends.
async fn serve_h1<T>(
    app: App,
    mut io: T,
    meter: Arc<H1Meter>,
    peer: IpAddr,
    (link, direct): (Link, Option<Fd>),
    watch: Arc<SocketWatch>,
) where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let conn = Conn {
        link,
        h1: Some(meter),
        direct,
    };
    // Request heads are read here while they subscribe (polls, long polls,
    // SSE: served off hyper, `direct.rs`); from the first that does not,
    // hyper serves the connection, from the bytes read so far.
    let limit = app.config().header_read_timeout;
    let mut stop = app.stop_watch();
    let mut carry = Bytes::new();
    let prefix = loop {
        let next = tokio::select! {
            next = direct::next_head(&mut io, carry, limit) => next,
            _ = stop.stopped() => return,
        };
        let req = match next {
            Next::Gone => return,
            Next::Hyper(bytes) => break bytes,
            Next::Direct(req) => req,
        };
        let answer = direct::answer(&app, &mut io, &conn, peer, req);
        tokio::pin!(answer);
        match watch_and_drain(&app, (&watch, &mut stop), answer, std::future::pending()).await {
            Some(Ok(Some(more))) if !app.stopping() => carry = more,
            _ => return,
        }
    };
    let io = Rewind::new(prefix, io);
    Box::pin(serve_h1_hyper(app, io, conn, peer, (watch, stop))).await;
}

/// Serves HTTP/1.1 on `io` with hyper, from its next request on.
async fn serve_h1_hyper<T>(
    app: App,
    io: T,
    conn: Conn,
    peer: IpAddr,
    (watch, mut stop): (Arc<SocketWatch>, StopWatch),
) where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let svc_app = app.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        // Now, before hyper reads on: see `router::detach`.
        let req = router::detach(req);
        router::handle(svc_app.clone(), conn.clone(), peer, req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(app.config().header_read_timeout)
        // `max_buf_size` alone is approximate: a head that arrives whole in
        // one read may parse even past it. `max_header_size` checks the
        // parsed head (start line included) against the limit exactly.
        .max_buf_size(MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES)
        // An SSE chunk is its size line, the event block and a CRLF: one
        // copy into hyper's buffer and a plain `send` cost less than a
        // three-piece `writev` per event (bench/profile.sh: `vfs_writev`
        // and `fdget_pos` were ~10 % of an SSE run's server CPU).
        .writev(false)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let ended = watch_and_drain(&app, (&watch, &mut stop), conn, std::future::pending()).await;
    if let Some(Err(e)) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Serves HTTP/2 on `io`: each stream a request, every frame attributed by
/// `meter`; floods of resets, headers, pings and settings are bounded
/// (docs/security.md); a WebSocket is an extended CONNECT stream (RFC
/// 8441).
async fn serve_h2<T>(
    app: App,
    io: T,
    meter: Arc<H2Meter>,
    peer: IpAddr,
    link: Link,
    watch: Arc<SocketWatch>,
) where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let conn = Conn {
        link,
        h1: None,
        direct: None,
    };
    let svc_app = app.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        router::handle(svc_app.clone(), conn.clone(), peer, req)
    });
    let cfg = app.config();
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(cfg.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(Some(MAX_ERROR_RESETS))
        // A header block (HEADERS and its CONTINUATIONs) is bounded as an
        // HTTP/1.1 head is: a CONTINUATION flood ends at this size.
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        // Pings from the server find dead peers; a peer that does not
        // answer within the timeout is closed.
        .keep_alive_interval(Some(cfg.ws_ping_interval))
        .keep_alive_timeout(cfg.ws_pong_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    // Idle past the header-read timeout: said with a GOAWAY, as a drain.
    let idle = idle_too_long(meter, cfg.header_read_timeout);
    let mut stop = app.stop_watch();
    let ended = watch_and_drain(&app, (&watch, &mut stop), conn, idle).await;
    if let Some(Err(e)) = ended {
        tracing::debug!(error = %e, "HTTP/2 connection ended with an error");
    }
}

/// Resolves once an HTTP/2 connection has had no open stream for `limit`.
async fn idle_too_long(meter: Arc<H2Meter>, limit: Duration) {
    loop {
        tokio::time::sleep(H2_IDLE_CHECK.min(limit)).await;
        if meter.idle_for() >= limit {
            return;
        }
    }
}

/// A connection hyper serves, and how to ask it to finish: HTTP/1.1
/// completes the response in flight and closes; HTTP/2 sends GOAWAY and
/// lets open streams finish.
pub(super) trait Drain: Future {
    fn drain(self: std::pin::Pin<&mut Self>);
}

impl<I, S> Drain for http1::UpgradeableConnection<I, S>
where
    Self: Future,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn drain(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, E> Drain for http2::Connection<I, S, E>
where
    Self: Future,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn drain(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs `conn` until it ends, the peer stops reading for `--write-timeout`
/// (then the connection is dropped: `None`), or the server drains or
/// `finish` resolves (then the connection is asked to finish its work in
/// flight, and given `--drain-timeout` to).
async fn watch_and_drain<C: Drain>(
    app: &App,
    (watch, stop): (&SocketWatch, &mut StopWatch),
    mut conn: std::pin::Pin<&mut C>,
    finish: impl Future<Output = ()>,
) -> Option<C::Output> {
    // Polled with the connection on every wake-up (every SSE event): a
    // watch asks with one atomic load. (Gating the watchdog and the signal
    // as the WebSocket session does saved nothing measurable here, and its
    // state pushed every connection's task into a larger allocation: +0.3
    // KiB per idle long poll.) The stop signal's watch is the connection's,
    // not one per request: taking a place among its waiters and giving it
    // back was 2 % of a long-poll profile.
    tokio::select! {
        res = conn.as_mut() => return Some(res),
        _ = watch.stuck_for(app.config().write_timeout) => {
            // The peer reads nothing (an SSE or long-poll client that
            // stopped reading): drop the connection rather than hold it.
            app.metrics().limit_hit(Limit::WriteTimeout);
            return None;
        }
        _ = stop.stopped() => {}
        _ = finish => {}
    }
    // Finish the in-flight responses (long polls answer now, SSE ends,
    // HTTP/2 says GOAWAY), then close instead of keeping the connection —
    // still watched, and within the drain deadline.
    conn.as_mut().drain();
    tokio::select! {
        res = conn.as_mut() => Some(res),
        _ = watch.stuck_for(app.config().write_timeout) => {
            app.metrics().limit_hit(Limit::WriteTimeout);
            None
        }
        _ = tokio::time::sleep(app.config().drain_timeout) => None,
    }
}

#[cfg(test)]
mod size_tests {
    fn size_of_return<A, B, C, D, F: std::future::Future>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every connection's task is this future, for as long as the
    /// connection lives: an idle SSE stream in the clear holds it for
    /// hours. TLS and HTTP/2 are boxed so their state does not set its
    /// size (it was 6384 bytes with them inline; idle SSE 8.8 KiB).
    #[test]
    fn a_connection_task_stays_small() {
        let size = size_of_return(super::serve);
        assert!(size <= 1536, "connection::serve future is {size} bytes");
    }
}
