//! The WebSocket connection: opening one (optionally offering
//! permessage-deflate), and a subscriber's reading of it — text frames
//! holding events or control messages (single topic: `/topics/{t}/ws`,
//! several: `/ws?topics=LIST`, where topics also come and go by message).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::header::HeaderValue;
use tokio::io::Join;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use super::error::protocol;
use super::inflate::{self, InflatingRead};
use super::lean::Shape;
use super::topics::Topics;
use super::{ClientError, Endpoint};
use crate::protocol::lean::{self, LeanMessage};
use crate::protocol::{Control, Request};
use crate::wire::{ByteCount, CountingIo};

/// A client WebSocket; it inflates permessage-deflate messages when it
/// offered the extension (and only forwards otherwise).
pub type WsStream = WebSocketStream<WsIo>;

/// The socket under a [`WsStream`]: its halves, each counted, the read
/// half inflating.
pub type WsIo = Join<
    InflatingRead<CountingIo<OwnedReadHalf, Arc<ByteCount>>>,
    CountingIo<OwnedWriteHalf, Arc<ByteCount>>,
>;

/// Read buffer of a client WebSocket. tungstenite zero-fills this much on
/// every read call, so bigger is slower as well as fatter.
const READ_BUFFER: usize = 4 << 10;

/// The largest message a client inflates.
const MAX_INFLATED: usize = 64 << 20;

/// How long a polite close may take before the socket is just dropped.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

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
    let (read, write) = ep.connect_tcp().await?.into_split();
    let url = format!("ws://{}{}", ep.host_header(), path);
    let mut req = url.into_client_request()?;
    if deflate {
        req.headers_mut().insert(
            "sec-websocket-extensions",
            HeaderValue::from_static(inflate::OFFER),
        );
    }
    // tungstenite allocates and zero-fills its whole read buffer per
    // socket (128 KiB by default): with thousands of subscribers in one
    // process (the bench) that is gigabytes. Frames larger than this
    // still get room for their full length once their header is read.
    let conf = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let read = InflatingRead::new(CountingIo::new(read, bytes.clone()), deflate, MAX_INFLATED);
    let io = tokio::io::join(read, CountingIo::new(write, bytes.clone()));
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, io, Some(conf))
        .await
        .map_err(handshake_error)?;
    Ok(ws)
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
