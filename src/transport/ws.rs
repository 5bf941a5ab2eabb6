//! WebSocket: hyper's upgrade, then tokio-tungstenite on the same counting
//! socket, so frame headers, masks, pings and close frames are all metered
//! as `ws`.
//!
//! The server sends one text frame per event (the event JSON, as every
//! transport delivers it) and control messages `{"type":"ready"|"gap"|
//! "reset",…}`. It pings on an interval and closes peers that stop
//! answering; fails the connection as RFC 6455 requires (1002 protocol
//! errors, 1007 invalid UTF-8, 1009 over-size messages); and closes 1001
//! when the server drains.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Reply, account, gap_fields, reset_fields, start_of};
use crate::app::App;
use crate::auth::Grant;
use crate::demo;
use crate::error::ApiError;
use crate::log::{Batch, Cursor, Log, Subscription};
use crate::metrics::{Outcome, Transport};
use crate::params::Query;
use crate::response::empty;
use crate::wire::ConnMeter;

pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// How long to wait before retrying the log after it failed.
const LOG_RETRY: Duration = Duration::from_secs(1);
/// How long a close handshake may take before the socket is just dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// tungstenite allocates (and zero-fills, on the first read) its read
/// buffer eagerly per connection, so its size is a floor under every idle
/// subscriber's memory. Subscribers send only pongs and close frames; larger
/// frames still get room for their full length when their header arrives.
/// 4 KiB here measured 6.9 KiB server RSS per idle WebSocket; 256 B
/// measures 3.0 KiB (`feedgate bench --idle 15000 --transport ws`).
const READ_BUFFER: usize = 256;
/// Writes are batched up to this size between flushes.
const WRITE_BUFFER: usize = 16 << 10;

/// `GET /topics/{topic}/ws`: validates the handshake, answers `101`, and
/// runs the session on the upgraded socket in a task tracked for drain.
pub(crate) async fn subscribe(
    app: &App,
    topic: &str,
    query: &Query,
    req: &mut Request<Incoming>,
    meter: &Arc<ConnMeter>,
    grant: Grant,
) -> Result<Reply, ApiError> {
    let accept = accept_key(req.headers())?;
    let cursor = query.cursor()?;
    let stalled = demo::stalled(app, Transport::Ws)?;
    let sub = app.log().subscribe(topic).await?;
    let cursor = Log::resolve(&cursor, &sub);
    let on_upgrade = hyper::upgrade::on(req);
    let session = Session {
        app: app.clone(),
        topic: topic.to_owned(),
        sub,
        cursor,
        stalled,
        expires: grant.remaining().map(|d| Instant::now() + d),
    };
    Ok(switch_protocols(
        app,
        on_upgrade,
        meter,
        accept,
        |upgraded| session.run(upgraded),
    ))
}

/// Answers `101 Switching Protocols` and runs `session` on the upgraded
/// socket in a task the server tracks for drain. The connection's bytes
/// are `ws` from here on.
pub(crate) fn switch_protocols<F, Fut>(
    app: &App,
    on_upgrade: hyper::upgrade::OnUpgrade,
    meter: &Arc<ConnMeter>,
    accept: HeaderValue,
    session: F,
) -> Reply
where
    F: FnOnce(Upgraded) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    app.tracker().spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => session(upgraded).await,
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    meter.upgraded();
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Reply::new(res, Outcome::Stream)
}

/// Checks an upgrade request as RFC 6455 §4.2.1 asks and returns the
/// `Sec-WebSocket-Accept` value.
///
/// # Errors
/// [`ApiError::UnsupportedWsVersion`] (426) for a version other than 13;
/// [`ApiError::BadHandshake`] (400) for anything else missing or malformed.
pub fn accept_key(h: &HeaderMap) -> Result<HeaderValue, ApiError> {
    let has_token = |name: header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::UPGRADE, "websocket") {
        return Err(ApiError::BadHandshake(
            "expected `Upgrade: websocket`".into(),
        ));
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return Err(ApiError::BadHandshake(
            "expected `Connection: Upgrade`".into(),
        ));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(ApiError::UnsupportedWsVersion);
    }
    let key = h
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|v| v.as_bytes())
        .filter(|k| k.len() == 24 && k.ends_with(b"=="))
        .ok_or_else(|| {
            ApiError::BadHandshake("Sec-WebSocket-Key must be 16 base64-encoded bytes".into())
        })?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key);
    HeaderValue::from_str(&accept).map_err(|_| ApiError::BadHandshake("bad key".into()))
}

/// The socket settings every server-side WebSocket uses.
pub(crate) fn socket_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        // Back-pressure, not an unbounded buffer: beyond this, writes wait.
        .max_write_buffer_size(WRITE_BUFFER + max_message.max(1 << 20))
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// The close code RFC 6455 asks for after a read error; `None` when the
/// socket is gone and there is no one to tell.
pub(crate) fn close_for(e: &WsError) -> Option<CloseFrame> {
    let (code, reason) = match e {
        WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in a text message"),
        WsError::Capacity(_) => (CloseCode::Size, "message too big"),
        _ => return None,
    };
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}

/// Sends `frame` (if any), then waits briefly for the peer's close so the
/// handshake completes cleanly; the socket is dropped either way.
pub(crate) async fn close(ws: &mut Socket, frame: Option<CloseFrame>) {
    let Some(frame) = frame else { return };
    let handshake = async {
        ws.close(Some(frame)).await?;
        while ws.next().await.transpose()?.is_some() {}
        Ok::<_, WsError>(())
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, handshake).await;
}

/// The settings a session reads while it runs.
#[derive(Clone, Copy)]
struct Settings {
    max_batch: usize,
    ws_ping_interval: Duration,
    ws_pong_timeout: Duration,
}

impl Settings {
    fn of(c: &crate::config::Config) -> Self {
        Settings {
            max_batch: c.max_batch,
            ws_ping_interval: c.ws_ping_interval,
            ws_pong_timeout: c.ws_pong_timeout,
        }
    }
}

/// One subscriber's WebSocket.
struct Session {
    app: App,
    topic: String,
    sub: Subscription,
    cursor: Cursor,
    /// An injected demo fault: accept, then deliver nothing.
    stalled: bool,
    /// When the subscriber's token expires, the socket is closed.
    expires: Option<Instant>,
}

/// The keep-alive timer: after `ping_interval` of silence send a ping; if
/// nothing arrives within `pong_timeout` after it, the peer is dead.
enum Liveness {
    Quiet,
    AwaitingPong,
}

impl Session {
    async fn run(mut self, upgraded: Upgraded) {
        // Only the settings this loop reads: a whole `Config` clone would sit
        // in every idle session's state (hundreds of bytes each).
        let cfg = Settings::of(self.app.config());
        let conf = socket_config(self.app.config().ws_max_message);
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(conf))
                .await;
        let mut liveness = Liveness::Quiet;
        let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep(cfg.ws_ping_interval));
        let mut opened = false;
        if self.stalled {
            // Read (and answer pings) but never send: a buffering proxy.
            let close_frame = tokio::select! {
                _ = self.app.shutdown().cancelled() => Some(going_away()),
                _ = async { while let Some(Ok(_)) = ws.next().await {} } => None,
            };
            close(&mut ws, close_frame).await;
            return;
        }
        let close_frame = loop {
            match self
                .app
                .log()
                .read(&self.topic, &self.cursor, cfg.max_batch)
                .await
            {
                Ok(batch) => {
                    let news =
                        !batch.events.is_empty() || batch.gap.is_some() || batch.reset.is_some();
                    if news || !opened {
                        if let Err(failure) = self.send(&mut ws, &batch, !opened).await {
                            break failure.close_frame(&self.app);
                        }
                        opened = true;
                        if !batch.events.is_empty() {
                            continue;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "ws read failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(LOG_RETRY) => continue,
                        _ = self.app.shutdown().cancelled() => break Some(going_away()),
                    }
                }
            }
            tokio::select! {
                biased;
                _ = self.app.shutdown().cancelled() => break Some(going_away()),
                _ = super::sleep_until(self.expires) => break Some(CloseFrame {
                    code: CloseCode::Policy,
                    reason: "token expired".into(),
                }),
                _ = demo::broken(&self.app, Transport::Ws) => break Some(CloseFrame {
                    code: CloseCode::Again,
                    reason: "demo fault injected".into(),
                }),
                msg = ws.next() => {
                    liveness = Liveness::Quiet;
                    timer.as_mut().reset(Instant::now() + cfg.ws_ping_interval);
                    match msg {
                        None => break None,
                        Some(Err(e)) => break close_for(&e),
                        Some(Ok(Message::Close(_))) => {
                            // tungstenite queued the close reply; send it.
                            let _ = tokio::time::timeout(CLOSE_GRACE, ws.flush()).await;
                            break None;
                        }
                        Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                            let reply = r#"{"type":"error","code":"unsupported","message":"this socket only delivers events; publish with POST /topics/{topic}/events"}"#;
                            if let Err(failure) = self.write(&mut ws, vec![Message::text(reply)]).await {
                                break failure.close_frame(&self.app);
                            }
                        }
                        Some(Ok(_)) => {}
                    }
                }
                _ = self.sub.wait_beyond(&self.cursor) => {}
                _ = timer.as_mut() => match liveness {
                    Liveness::Quiet => {
                        liveness = Liveness::AwaitingPong;
                        timer.as_mut().reset(Instant::now() + cfg.ws_pong_timeout);
                        if let Err(failure) = self.write(&mut ws, vec![Message::Ping(Bytes::new())]).await {
                            break failure.close_frame(&self.app);
                        }
                    }
                    Liveness::AwaitingPong => {
                        self.app.metrics().limit_hit(crate::metrics::Limit::PongTimeout);
                        break Some(CloseFrame {
                            code: CloseCode::Policy,
                            reason: "no pong within the deadline".into(),
                        });
                    }
                },
            }
        };
        close(&mut ws, close_frame).await;
    }

    /// Writes a batch (with the opening `ready` message the first time) and
    /// accounts for it.
    async fn send(
        &mut self,
        ws: &mut Socket,
        batch: &Batch,
        opening: bool,
    ) -> Result<(), WriteFailure> {
        let start = start_of(batch);
        let mut msgs = Vec::with_capacity(batch.events.len() + 2);
        if opening {
            msgs.push(Message::text(format!(
                r#"{{"type":"ready","epoch":"{}","next":{start}}}"#,
                batch.epoch
            )));
        }
        if let Some(reason) = batch.reset {
            msgs.push(Message::text(format!(
                r#"{{"type":"reset",{}}}"#,
                reset_fields(reason, batch.epoch)
            )));
        }
        if let Some(gap) = &batch.gap {
            msgs.push(Message::text(format!(
                r#"{{"type":"gap",{}}}"#,
                gap_fields(gap)
            )));
        }
        for e in &batch.events {
            msgs.push(Message::Text(e.json.utf8()));
        }
        self.write(ws, msgs).await?;
        self.cursor = batch.next_cursor();
        account(self.app.metrics().transport(Transport::Ws), batch);
        Ok(())
    }

    /// Feeds messages and flushes once, within the write timeout.
    async fn write(&self, ws: &mut Socket, msgs: Vec<Message>) -> Result<(), WriteFailure> {
        let write = async {
            for m in msgs {
                ws.feed(m).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(self.app.config().write_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(WriteFailure::Gone),
            Err(_) => Err(WriteFailure::TimedOut),
        }
    }
}

/// Why a write did not complete.
enum WriteFailure {
    /// The socket failed: nobody to tell.
    Gone,
    /// The peer read nothing for `--write-timeout`.
    TimedOut,
}

impl WriteFailure {
    /// The close to attempt: after a timeout a 1008 is queued behind what
    /// is pending (a peer that is merely slow will still see why), and the
    /// close handshake's grace period bounds the attempt.
    fn close_frame(self, app: &App) -> Option<CloseFrame> {
        match self {
            WriteFailure::Gone => None,
            WriteFailure::TimedOut => {
                app.metrics().limit_hit(crate::metrics::Limit::WriteTimeout);
                Some(CloseFrame {
                    code: CloseCode::Policy,
                    reason: "write timeout: the client is not reading".into(),
                })
            }
        }
    }
}

/// The close frame every WebSocket gets when the server drains.
pub(crate) fn going_away() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Away,
        reason: "server shutting down".into(),
    }
}

#[cfg(test)]
mod size_tests {
    fn size_of_return<A, B, F: std::future::Future>(_: fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle WebSocket holds one of these futures; keep it small (it
    /// was 2.5 KiB while it cloned the whole `Config` and inlined the Redis
    /// backend's read future).
    #[test]
    fn the_session_future_stays_small() {
        let size = size_of_return(super::Session::run);
        assert!(size <= 2048, "Session::run future is {size} bytes");
    }
}
