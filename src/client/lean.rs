//! What a subscriber may ask of the wire besides its transport: the lean
//! encoding (`encoding=lean`) and permessage-deflate on WebSocket, and how
//! their messages read (docs/protocol.md, "Lean encoding").
//!
//! A lean event carries only its data: its seq is counted from the last
//! `ready`, `gap` or `reset` (each says `next`), or on SSE read from the
//! `id:` line, or on polls counted back from the answer's `next`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderValue;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{CLIENT_WS_READ_BUFFER, ClientError, CountedStream, Endpoint, ReceivedEvent};
use crate::transport::ws::deflate::{CLIENT_OFFER, Inflating};
use crate::wire::ByteCount;

/// A client WebSocket that inflates permessage-deflate messages when the
/// handshake agreed to it (and only forwards otherwise).
pub type WsStream = WebSocketStream<Inflating<CountedStream>>;

/// The largest message a client inflates.
const MAX_INFLATED: usize = 64 << 20;

/// Wire options of a subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wire {
    /// Ask for `encoding=lean`: events are their data.
    pub lean: bool,
    /// Ask for compression as browsers do: offer permessage-deflate on a
    /// WebSocket, send `Accept-Encoding: gzip` on polls.
    pub deflate: bool,
}

impl Wire {
    /// The query parameter this asks for, if any.
    pub fn query(&self) -> Option<&'static str> {
        self.lean.then_some("encoding=lean")
    }

    /// The `Accept-Encoding` header a poll sends, if any.
    pub fn accept_encoding(&self) -> Option<(&'static str, String)> {
        self.deflate.then(|| ("accept-encoding", "gzip".to_owned()))
    }
}

/// Whether a response says its body is gzipped.
pub(super) fn gzipped(h: &hyper::HeaderMap) -> bool {
    h.get(hyper::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
}

/// A gzipped body, decoded.
///
/// # Errors
/// [`ClientError::Protocol`] when it is not gzip.
pub(super) fn gunzip(body: &[u8]) -> Result<Bytes, ClientError> {
    let mut out = Vec::with_capacity(body.len() * 4);
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out)
        .map_err(|e| ClientError::Protocol(format!("bad gzip body: {e}")))?;
    Ok(Bytes::from(out))
}

/// Opens a WebSocket at `path` on a new counted connection, offering
/// permessage-deflate when `deflate` is set.
///
/// # Errors
/// When connecting or the handshake fails.
pub async fn open_websocket_with(
    ep: &Endpoint,
    bytes: &Arc<ByteCount>,
    path: &str,
    deflate: bool,
) -> Result<WsStream, ClientError> {
    let stream = ep.connect(bytes.clone()).await?;
    let url = format!("ws://{}{}", ep.host_header(), path);
    let mut req = url.into_client_request().map_err(ClientError::Ws)?;
    let io = if deflate {
        req.headers_mut().insert(
            "sec-websocket-extensions",
            HeaderValue::from_static(CLIENT_OFFER),
        );
        Inflating::client(stream, MAX_INFLATED)
    } else {
        Inflating::new(stream, Role::Client, None, 0)
    };
    let conf = WebSocketConfig::default().read_buffer_size(CLIENT_WS_READ_BUFFER);
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, io, Some(conf))
        .await
        .map_err(super::handshake_error)?;
    Ok(ws)
}

/// A lean event: `data` at `seq` (its publish time is not sent).
pub fn event(seq: u64, data: Bytes) -> ReceivedEvent {
    ReceivedEvent {
        seq,
        time_us: 0,
        json: data,
    }
}
