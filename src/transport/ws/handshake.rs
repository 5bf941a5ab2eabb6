//! The WebSocket handshake and socket: RFC 6455 §4.2.1 checks, the
//! permessage-deflate offer, hyper's upgrade, and tokio-tungstenite on the
//! upgraded (still counting) socket — shared by the subscriber session, the
//! echo endpoint and the probe — plus the close codes every one of them
//! sends.

use std::time::Duration;

use futures_util::StreamExt;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use super::deflate::{self, Inflating, Params};
use crate::app::App;
use crate::error::ApiError;
use crate::http::response::empty;
use crate::metrics::Outcome;
use crate::server::Conn;
use crate::transport::Reply;

pub(crate) type Socket = WebSocketStream<Inflating<TokioIo<Upgraded>>>;

/// How long a close handshake may take before the socket is just dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// tungstenite allocates (and zero-fills, on the first read) its read
/// buffer eagerly per connection, so its size is a floor under every idle
/// subscriber's memory. Subscribers send only pongs and close frames; larger
/// frames still get room for their full length when their header arrives.
/// 4 KiB here measured 6.9 KiB server RSS per idle WebSocket; 256 B
/// measures 3.0 KiB (`feedgate bench --idle 15000 --transport ws`).
const READ_BUFFER: usize = 256;
/// Writes are batched up to this size between flushes.
const WRITE_BUFFER: usize = 16 << 10;

/// The permessage-deflate offer this server takes from a handshake, if
/// `--ws-deflate` is on, and the header that accepts it.
pub(crate) fn extension(app: &App, h: &HeaderMap) -> Option<(Params, HeaderValue)> {
    app.config()
        .ws_deflate
        .then(|| deflate::negotiate(h))
        .flatten()
}

/// Puts the accepted extension, if any, in a `101` reply.
pub(crate) fn agree(reply: &mut Reply, deflate: Option<(Params, HeaderValue)>) {
    if let Some((_, v)) = deflate {
        let h = reply.response.headers_mut();
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
    }
}

/// A server socket on `upgraded`, reading compressed client messages when
/// the handshake agreed to permessage-deflate.
pub(crate) async fn server_socket(
    upgraded: Upgraded,
    deflate: Option<Params>,
    max_message: usize,
) -> Socket {
    let conf = socket_config(max_message);
    let io = Inflating::new(TokioIo::new(upgraded), Role::Server, deflate, max_message);
    WebSocketStream::from_raw_socket(io, Role::Server, Some(conf)).await
}

/// How a client asked for a WebSocket, checked.
pub(crate) enum Opening {
    /// An HTTP/1.1 upgrade (RFC 6455 §4.2.1), answered `101` with this
    /// `Sec-WebSocket-Accept`.
    Upgrade(HeaderValue),
    /// An HTTP/2 extended CONNECT (RFC 8441: `:protocol websocket`),
    /// answered `200`; the stream carries the frames.
    Connect,
}

/// Checks a WebSocket request, in either form.
///
/// # Errors
/// As [`accept_key`]; an extended CONNECT needs `Sec-WebSocket-Version: 13`
/// (RFC 8441 §5) and no key.
pub(crate) fn opening<B>(req: &Request<B>) -> Result<Opening, ApiError> {
    if !crate::admit::is_websocket_connect(req) {
        return accept_key(req.headers()).map(Opening::Upgrade);
    }
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(ApiError::UnsupportedWsVersion);
    }
    Ok(Opening::Connect)
}

/// Answers the opening (`101 Switching Protocols`, or `200` to an extended
/// CONNECT) and runs `session` on the upgraded socket or stream in a task
/// the server tracks for drain. On HTTP/1.1 the connection's bytes are
/// `ws` from here on; on HTTP/2 the stream's are.
pub(crate) fn switch_protocols<F, Fut>(
    app: &App,
    on_upgrade: hyper::upgrade::OnUpgrade,
    conn: &Conn,
    opening: Opening,
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
    conn.upgraded();
    let mut res = Response::new(empty());
    match opening {
        Opening::Upgrade(accept) => {
            *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = res.headers_mut();
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        Opening::Connect => *res.status_mut() = StatusCode::OK,
    }
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
        // No cap below the largest frame: `feed` flushes the buffer whole
        // before it queues a frame once it holds more than `WRITE_BUFFER`,
        // so it never holds more than that plus one frame, and a frame is
        // at most one event the log accepted (its size is the publisher's
        // `--max-body`, on this node or, with Redis, another). A cap here
        // made any event larger than the rest of the buffer undeliverable.
        .max_write_buffer_size(usize::MAX)
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
pub(crate) async fn close<S>(ws: &mut WebSocketStream<S>, frame: Option<CloseFrame>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(frame) = frame else { return };
    let handshake = async {
        ws.close(Some(frame)).await?;
        while ws.next().await.transpose()?.is_some() {}
        Ok::<_, WsError>(())
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, handshake).await;
}

/// The close frame every WebSocket gets when the server drains: 1012
/// (service restart) rather than 1001 (going away), since a drained node
/// is restarted or replaced behind the same address; the client should
/// reconnect after a random delay (docs/protocol.md, "Restarts").
pub(crate) fn restarting() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Restart,
        reason: "server restarting".into(),
    }
}
