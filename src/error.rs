//! The API error type: every failure a client can cause, mapped in one place
//! to an HTTP status and a JSON error code.

use hyper::StatusCode;

use crate::log::LogError;

/// An error answered to a client as
/// `{"error":{"code":"…","message":"…"}}` with the matching status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The topic name is not `[A-Za-z0-9_.:-]{1,128}`.
    #[error("invalid topic name: it must be 1 to 128 characters of A-Z a-z 0-9 _ . : -")]
    InvalidTopic,
    /// `after`, `epoch`, `Last-Event-ID` or `If-None-Match` is malformed.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// A `topics=` list names more topics than
    /// `--max-topics-per-connection`.
    #[error("too many topics for one subscription: the limit is {0}")]
    TooManyTopics(usize),
    /// Another query parameter is malformed.
    #[error("invalid query parameter: {0}")]
    InvalidQuery(String),
    /// The publish body is not one JSON value.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The publish body is larger than `--max-body`.
    #[error("request body exceeds the limit of {0} bytes")]
    BodyTooLarge(usize),
    /// The request body did not arrive within `--body-read-timeout`.
    #[error("the request body did not arrive within {0} ms")]
    BodyTimeout(u64),
    /// The WebSocket handshake is malformed.
    #[error("bad WebSocket handshake: {0}")]
    BadHandshake(String),
    /// The client asked for a WebSocket version other than 13.
    #[error("unsupported Sec-WebSocket-Version: only 13 is supported")]
    UnsupportedWsVersion,
    /// No credentials where they are required.
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials that do not grant this request.
    #[error("{0}")]
    Forbidden(String),
    /// No such path.
    #[error("no such resource: {0}")]
    NotFound(String),
    /// The path exists but not with this method.
    #[error("method not allowed; use {allow}")]
    MethodNotAllowed {
        /// The value of the `Allow` header.
        allow: &'static str,
    },
    /// A per-client rate limit was crossed.
    #[error("rate limit exceeded; retry after {retry_after_s} s")]
    RateLimited {
        /// Seconds until a retry may succeed (`Retry-After`).
        retry_after_s: u64,
    },
    /// A server-wide capacity limit (connections, topics) was reached.
    #[error("{0}")]
    Overloaded(String),
    /// The change log cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The server is draining.
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidTopic
            | ApiError::InvalidCursor(_)
            | ApiError::InvalidQuery(_)
            | ApiError::TooManyTopics(_)
            | ApiError::InvalidJson(_)
            | ApiError::BadHandshake(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedWsVersion => StatusCode::UPGRADE_REQUIRED,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded(_) | ApiError::Unavailable(_) | ApiError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The stable, machine-readable `code` of the JSON error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidTopic => "invalid_topic",
            ApiError::InvalidCursor(_) => "invalid_cursor",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::TooManyTopics(_) => "too_many_topics",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::BadHandshake(_) => "bad_handshake",
            ApiError::UnsupportedWsVersion => "unsupported_websocket_version",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::ShuttingDown => "shutting_down",
        }
    }

    /// The JSON body: `{"error":{"code":…,"message":…}}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "error": { "code": self.code(), "message": self.to_string() }
        }))
        .unwrap_or_default()
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::TooManyTopics(_) => ApiError::Overloaded(e.to_string()),
            LogError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}
