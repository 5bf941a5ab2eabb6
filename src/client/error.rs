//! What can go wrong on the client side, as callers match on it.

use std::time::Duration;

use hyper::StatusCode;

/// What went wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or the socket failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP-level failure.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// WebSocket-level failure.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server answered with an error status.
    #[error("server answered {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The (JSON error) body.
        body: String,
    },
    /// The server sent something this client cannot read.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The stream ended (the server closed it).
    #[error("the server closed the stream")]
    Closed,
    /// The server is draining for a restart (WebSocket close 1012, an SSE
    /// `restart` event, a long poll answered with `Retry-After-Ms`): come
    /// back after `retry`, its delay for this client, or a random delay
    /// when it gave none ([`super::Resume`] does this by itself).
    #[error("the server is restarting")]
    Restarting {
        /// The server's delay, drawn at random per client.
        retry: Option<Duration>,
    },
    /// The server's certificate was refused, or TLS failed otherwise than
    /// by a broken socket.
    #[error("tls: {0}")]
    Tls(String),
    /// A malformed URL or argument.
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// An error status with its body as the server sent it.
    pub(super) fn status(status: StatusCode, body: &[u8]) -> ClientError {
        ClientError::Status {
            status,
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }
}

/// Something the server sent that does not read as the protocol says.
pub(super) fn protocol(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}
