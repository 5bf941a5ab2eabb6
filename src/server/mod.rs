//! The server: accept loop, connection limit, TLS and HTTP/2 set-up, and
//! graceful shutdown. One connection's life is `connection.rs`.
//!
//! [`run`] takes an already-bound listener and a shutdown future, so the
//! binary binds `--listen` and waits for SIGINT/SIGTERM while a test binds
//! `127.0.0.1:0` and stops the server at will.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::config::{Config, LogBackend};
use crate::demo;
use crate::error::ApiError;
use crate::log::Log;
use crate::metrics::Metrics;
use crate::wire::{ByteCount, CountingIo};

mod connection;
pub(crate) mod direct;
mod rewind;

pub(crate) use connection::Conn;

/// Connections refused by the connection limit are still answered (a 503
/// beats a reset), but only this many at once; beyond it they are dropped.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;
/// Time a refused connection gets to send its request head and read the 503.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after an accept error that is not the peer's fault (EMFILE), so a
/// full descriptor table does not turn the loop into a busy spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Largest request head hyper buffers; larger answers 431.
pub(crate) const MAX_HEAD_BYTES: usize = 64 << 10;

/// Serves on `listener` until `shutdown` resolves, then drains: stops
/// accepting, answers long polls and ends SSE streams (each with a jittered
/// reconnect delay), closes WebSockets with 1012, and returns once every
/// connection is done or `drain_timeout` passed.
///
/// # Errors
/// When [`Config::validate`] refuses the configuration (an
/// [`io::ErrorKind::InvalidInput`] error wrapping the
/// [`ConfigError`](crate::config::ConfigError)), checked before anything
/// starts, or when the configured log backend cannot be set up (a malformed
/// Redis URL).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    run_with_metrics(listener, config, Arc::new(Metrics::new()), shutdown).await
}

/// [`run`] with a caller-provided [`Metrics`] (the bench reads it directly).
///
/// # Errors
/// As [`run`].
pub async fn run_with_metrics(
    listener: TcpListener,
    config: Config,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let log = open_log(&config).await?;
    let tracker = TaskTracker::new();
    let app = App::new(log, metrics, config, tracker.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if let Some(d) = app.demo() {
        let (log, metrics) = (app.log().clone(), app.metrics().clone());
        tracker.spawn(demo::publisher(d.clone(), log, metrics, app.stop_watch()));
    }
    if let Some(age) = app.config().retention.max_age {
        tracker.spawn(expire_periodically(app.clone(), age));
    }
    if let Some(tls) = app.tls() {
        let what = match app.config().tls {
            Some(crate::tls::TlsSource::SelfSigned) => "self-signed for localhost and 127.0.0.1",
            _ => "from --tls-cert",
        };
        tracing::info!(
            http2 = app.config().http2,
            "TLS certificate ({what}); SHA-256 fingerprint {}",
            tls.fingerprint()
        );
        tracker.spawn(reload_on_hangup(app.clone()));
    }
    let limit = Arc::new(Semaphore::new(app.config().max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let (stream, peer) = stream;
        let _ = stream.set_nodelay(true);
        match limit.clone().try_acquire_owned() {
            Ok(permit) => {
                tracker.spawn(connection::serve(app.clone(), stream, peer.ip(), permit));
            }
            Err(_) => {
                app.metrics()
                    .limit_hit(crate::metrics::Limit::MaxConnections);
                // Answered only in the clear: a 503 under TLS would cost a
                // handshake, which is what an overloaded server lacks.
                if app.tls().is_none()
                    && let Ok(slot) = refusals.clone().try_acquire_owned()
                {
                    tokio::spawn(refuse(app.clone(), stream, slot));
                }
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining connections");
    app.stop();
    tracker.close();
    if tokio::time::timeout(app.config().drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = tracker.len(),
            "drain timeout passed; dropping what is left"
        );
    }
    Ok(())
}

/// Re-reads the TLS certificate and key on SIGHUP until the server stops:
/// new handshakes use the new pair; a bad pair is refused (logged) and the
/// old one kept.
async fn reload_on_hangup(app: App) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Some(tls) = app.tls().cloned() else {
            return;
        };
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the certificate will not be reloaded");
            return;
        };
        let mut stop = app.stop_watch();
        loop {
            tokio::select! {
                _ = stop.stopped() => return,
                got = hangups.recv() => if got.is_none() { return },
            }
            match tls.reload() {
                Ok(()) => tracing::info!(
                    fingerprint = %tls.fingerprint(),
                    "SIGHUP: TLS certificate reloaded"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "SIGHUP: the new TLS certificate was refused; the old one stays in use"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = app;
}

/// Applies the retention age every tenth of it (at most once per 100 ms),
/// so idle topics are trimmed too.
async fn expire_periodically(app: App, age: Duration) {
    let mut tick = tokio::time::interval((age / 10).max(Duration::from_millis(100)));
    let mut stop = app.stop_watch();
    loop {
        tokio::select! {
            _ = stop.stopped() => return,
            _ = tick.tick() => app.log().expire(),
        }
    }
}

async fn open_log(config: &Config) -> io::Result<Log> {
    match &config.log {
        LogBackend::Memory => Ok(Log::memory(config.retention, config.max_topics)),
        LogBackend::Redis(url) => {
            Log::redis_with(url, config.retention, config.max_topics, config.redis)
        }
        LogBackend::File { dir, fsync } => {
            let recover = config.log_recover;
            Log::file(dir, *fsync, config.retention, config.max_topics, recover).await
        }
    }
}

/// Connection-reset kinds are the peer's business; anything else (EMFILE,
/// ENFILE, ENOBUFS) is logged and retried after a pause.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(e.kind(), ConnectionReset | ConnectionAborted | Interrupted) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// Answers a connection over the limit with a 503 and closes it. The
/// request head is read first so that closing does not reset the socket
/// before the client sees the answer.
async fn refuse(app: App, stream: TcpStream, _slot: OwnedSemaphorePermit) {
    let count = Arc::new(ByteCount::default());
    let mut io = CountingIo::new(stream, count.clone());
    let e = ApiError::Overloaded(format!(
        "too many connections: the limit is {}",
        app.config().max_connections
    ));
    let body = e.body();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < MAX_HEAD_BYTES {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        io.write_all(head.as_bytes()).await?;
        io.write_all(&body).await?;
        io.shutdown().await
    })
    .await;
    // Never routed: `other`, in the clear on HTTP/1.1.
    let other = app.metrics().transport(crate::metrics::Transport::Other);
    let lm = other.on(crate::metrics::Link::H1);
    lm.wire_in.inc_by(count.read());
    lm.wire_out.inc_by(count.written());
}

/// A server started in the background, for tests, the bench and embedding.
pub struct RunningServer {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    task: JoinHandle<io::Result<()>>,
}

/// A listener on `addr` whose kernel accept queue holds `backlog`
/// connections (`TcpListener::bind` asks for 1024; a reconnect storm of
/// thousands overflows that, and every overflowed client waits out a 1 s
/// SYN retransmission).
///
/// # Errors
/// When the socket cannot be created or bound.
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restarted server rebinds at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

impl RunningServer {
    /// Binds `listen` (use `127.0.0.1:0` for a free port) and serves there.
    ///
    /// # Errors
    /// When binding fails.
    pub async fn start(listen: SocketAddr, config: Config) -> io::Result<RunningServer> {
        let listener = bind(listen, config.accept_backlog)?;
        let addr = listener.local_addr()?;
        let metrics = Arc::new(Metrics::new());
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let m = metrics.clone();
        let task = tokio::spawn(async move {
            run_with_metrics(listener, config, m, signal.cancelled_owned()).await
        });
        Ok(RunningServer {
            addr,
            metrics,
            stop,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Drains and stops it, returning what `run` returned.
    ///
    /// # Errors
    /// As [`run`], or if the server task panicked.
    pub async fn shutdown(self) -> io::Result<()> {
        self.stop.cancel();
        self.task.await.map_err(io::Error::other)?
    }
}
