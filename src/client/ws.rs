//! The WebSocket connection: opening one (optionally offering
//! permessage-deflate), and a subscriber's reading of it — text frames
//! holding events or control messages (single topic: `/topics/{t}/ws`,
//! several: `/ws?topics=LIST`, where topics also come and go by message).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use super::error::protocol;
use super::h2::H2;
use super::http::HttpConn;
use super::inflate::{self, InflatingRead};
use super::lean::Shape;
use super::link::{self, BoxIo, Link};
use super::topics::Topics;
use super::{ClientError, Endpoint};
use crate::protocol::lean::{self, LeanMessage};
use crate::protocol::{Control, Request};
use crate::wire::ByteCount;

/// A client WebSocket; it inflates permessage-deflate messages when it
/// offered the extension (and only forwards otherwise).
pub type WsStream = WebSocketStream<WsIo>;

/// The socket under a [`WsStream`]: a counted connection (TLS or not), or
/// a stream of an HTTP/2 connection, reading through the inflater.
pub type WsIo = InflatingRead<BoxIo>;

/// Read buffer of a client WebSocket. tungstenite zero-fills this much on
/// every read call, so bigger is slower as well as fatter.
const READ_BUFFER: usize = 4 << 10;

/// The largest message a client inflates.
const MAX_INFLATED: usize = 64 << 20;

/// How long a polite close may take before the socket is just dropped.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// How long to wait for an HTTP/2 server's SETTINGS before deciding it
/// does not take WebSockets over HTTP/2.
const SETTINGS_WITHIN: Duration = Duration::from_secs(5);

/// How a WebSocket reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsRoute {
    /// The connection it runs on.
    pub link: Link,
    /// On an endpoint asking for HTTP/2 whose server agreed to HTTP/2:
    /// whether the server allowed WebSockets over it (RFC 8441) — when it
    /// did not, the WebSocket went over a connection of its own, HTTP/1.1,
    /// as a browser's would. `None` when HTTP/2 was not spoken at all.
    pub over_h2: Option<bool>,
}

/// Opens a WebSocket at `path` on a new counted connection. A refused
/// upgrade comes back as [`ClientError::Status`] with the server's body.
///
/// # Errors
/// When connecting or the handshake fails.
pub async fn open_websocket(
    ep: &Endpoint,
    bytes: &Arc<ByteCount>,
    path: &str,
) -> Result<WsStream, ClientError> {
    open_websocket_with(ep, bytes, path, false).await
}

/// [`open_websocket`], offering permessage-deflate when `deflate` is set.
///
/// # Errors
/// When connecting or the handshake fails.
pub async fn open_websocket_with(
    ep: &Endpoint,
    bytes: &Arc<ByteCount>,
    path: &str,
    deflate: bool,
) -> Result<WsStream, ClientError> {
    Ok(open_websocket_route(ep, bytes, path, deflate).await?.0)
}

/// [`open_websocket_with`], saying how the WebSocket got there: on an
/// endpoint that asks for HTTP/2, as an extended CONNECT stream (RFC 8441)
/// when the server's SETTINGS allow it — on the endpoint's shared
/// connection, if it has one — and otherwise over HTTP/1.1 on a connection
/// of its own (ALPN `http/1.1` only), as browsers do.
///
/// # Errors
/// When connecting or the handshake fails.
pub async fn open_websocket_route(
    ep: &Endpoint,
    bytes: &Arc<ByteCount>,
    path: &str,
    deflate: bool,
) -> Result<(WsStream, WsRoute), ClientError> {
    if ep.http2() {
        let conn = match ep.pool() {
            Some(pool) => pool.conn(ep).await?,
            None => {
                let (io, link) = link::dial(ep, bytes.clone(), true).await?;
                if !link.http2 {
                    // ALPN chose HTTP/1.1: upgrade this very connection.
                    let ws = over_h1(ep, io, link, path, deflate).await?;
                    let route = WsRoute {
                        link,
                        over_h2: None,
                    };
                    return Ok((ws, route));
                }
                HttpConn::on(ep, io, link).await?
            }
        };
        if let Some(h2) = conn.h2() {
            let allowed = h2.extended_connect(SETTINGS_WITHIN).await;
            if allowed {
                let ws = over_h2(&conn, h2, path, deflate).await?;
                let route = WsRoute {
                    link: conn.link(),
                    over_h2: Some(true),
                };
                return Ok((ws, route));
            }
        }
        let over_h2 = conn.h2().map(|_| false);
        let bytes = ep.shared_bytes().unwrap_or_else(|| bytes.clone());
        let (io, link) = link::dial(ep, bytes, false).await?;
        let ws = over_h1(ep, io, link, path, deflate).await?;
        return Ok((ws, WsRoute { link, over_h2 }));
    }
    let (io, link) = link::dial(ep, bytes.clone(), false).await?;
    let ws = over_h1(ep, io, link, path, deflate).await?;
    Ok((
        ws,
        WsRoute {
            link,
            over_h2: None,
        },
    ))
}

/// Read and write buffers of a client WebSocket.
fn config() -> WebSocketConfig {
    // tungstenite allocates and zero-fills its whole read buffer per
    // socket (128 KiB by default): with thousands of subscribers in one
    // process (the bench) that is gigabytes. Frames larger than this
    // still get room for their full length once their header is read.
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// The HTTP/1.1 upgrade on `io`.
async fn over_h1(
    ep: &Endpoint,
    io: BoxIo,
    link: Link,
    path: &str,
    deflate: bool,
) -> Result<WsStream, ClientError> {
    let scheme = if link.tls { "wss" } else { "ws" };
    let url = format!("{scheme}://{}{}", ep.host_header(), path);
    let mut req = url.into_client_request()?;
    if deflate {
        req.headers_mut().insert(
            "sec-websocket-extensions",
            HeaderValue::from_static(inflate::OFFER),
        );
    }
    let io = InflatingRead::new(io, deflate, MAX_INFLATED);
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, io, Some(config()))
        .await
        .map_err(handshake_error)?;
    Ok(ws)
}

/// An extended CONNECT stream (RFC 8441) on `conn`.
async fn over_h2(
    conn: &HttpConn,
    h2: &H2,
    path: &str,
    deflate: bool,
) -> Result<WsStream, ClientError> {
    let mut req = conn
        .request_to(Method::CONNECT, path)
        .header("sec-websocket-version", "13");
    if deflate {
        req = req.header("sec-websocket-extensions", inflate::OFFER);
    }
    let mut req = req
        .body(Full::new(Bytes::new()))
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut send = h2.send.clone();
    send.ready().await?;
    let res = send.send_request(req).await?;
    if res.status() != StatusCode::OK {
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        return Err(ClientError::status(status, &body));
    }
    let upgraded = hyper::upgrade::on(res).await?;
    // The stream lives on its connection: keep a sender with it, so the
    // connection is not shut down under the WebSocket.
    let io: BoxIo = Box::new(link::Holding::new(TokioIo::new(upgraded), send));
    let io = InflatingRead::framed(io, deflate, MAX_INFLATED);
    Ok(WebSocketStream::from_raw_socket(io, Role::Client, Some(config())).await)
}

/// A failed WebSocket handshake as the client reports it: a refused
/// upgrade carries the server's status and (JSON error) body.
fn handshake_error(e: tungstenite::Error) -> ClientError {
    match e {
        tungstenite::Error::Http(res) => {
            ClientError::status(res.status(), res.body().as_deref().unwrap_or_default())
        }
        e => ClientError::Ws(e),
    }
}

/// What a close frame means to a subscriber: 1012 (service restart) is a
/// draining server, anything else the end of the stream.
fn closed_by(frame: Option<CloseFrame>) -> ClientError {
    match frame {
        Some(f) if f.code == CloseCode::Restart => ClientError::Restarting { retry: None },
        _ => ClientError::Closed,
    }
}

/// The next text message.
///
/// # Errors
/// [`ClientError::Restarting`] on close 1012, [`ClientError::Closed`] on
/// any other close or the end of the stream; a broken connection.
pub(super) async fn read_text(ws: &mut WsStream) -> Result<Bytes, ClientError> {
    loop {
        let Some(msg) = ws.next().await else {
            return Err(ClientError::Closed);
        };
        match msg? {
            Message::Text(t) => return Ok(Bytes::from(t)),
            Message::Close(frame) => return Err(closed_by(frame)),
            _ => {}
        }
    }
}

/// Turns one message into steps: a frame is an event unless it starts
/// with `{"type":` (lean: unless it starts with `#`, a control message).
///
/// # Errors
/// A message that does not read, or an `error` message.
pub(super) fn decode(text: Bytes, topics: &mut Topics, shape: Shape) -> Result<(), ClientError> {
    let json = match (shape.lean, lean::lean_message(&text)) {
        (true, LeanMessage::Event(_)) => return topics.lean_event(shape, text, None),
        (true, LeanMessage::Control(json)) => text.slice_ref(json),
        (false, _) => text,
    };
    if json.starts_with(br#"{"type":"#) {
        let c: Control = serde_json::from_slice(&json).map_err(protocol)?;
        return topics.control(shape, c);
    }
    topics.event(shape, json)
}

/// Sends a request on a multiplexed WebSocket.
///
/// # Errors
/// When the socket fails.
pub(super) async fn send(ws: &mut WsStream, request: &Request) -> Result<(), ClientError> {
    Ok(ws.send(Message::text(request.to_json())).await?)
}

/// Closes politely: a close frame, then the server's reply, within
/// [`CLOSE_WITHIN`].
pub(super) async fn close(ws: &mut WsStream) {
    let _ = tokio::time::timeout(CLOSE_WITHIN, async {
        ws.close(None).await?;
        while ws.next().await.transpose()?.is_some() {}
        Ok::<_, tungstenite::Error>(())
    })
    .await;
}
