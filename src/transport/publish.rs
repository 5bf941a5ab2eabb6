//! `POST /topics/{topic}/events`: validate one JSON value, append it, answer
//! `201 {"topic":…,"seq":N,"epoch":…}`. Nothing is appended on any error.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::Reply;
use crate::app::App;
use crate::error::ApiError;
use crate::http::body::read_body;
use crate::http::response;
use crate::log::{LogError, Topic};
use crate::metrics::{Limit, Outcome};

/// Handles a publish request.
pub(crate) async fn publish(
    app: &App,
    topic: &Topic,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let max = app.config().max_body;
    let body = read_body(req, max, app.config().body_read_timeout).await?;
    let data = validate(&body)?;
    let appended = match app.log().append(topic, &data).await {
        Ok(a) => a,
        Err(e) => {
            if matches!(e, LogError::TooManyTopics(_)) {
                app.metrics().limit_hit(Limit::MaxTopics);
            }
            return Err(e.into());
        }
    };
    app.metrics().published.inc();
    let ack = format!(
        r#"{{"topic":"{topic}","seq":{},"epoch":"{}"}}"#,
        appended.seq, appended.epoch
    );
    Ok(Reply::new(
        response::json(StatusCode::CREATED, ack),
        Outcome::Published,
    ))
}

/// Checks that `body` is exactly one JSON value and returns it on one line:
/// surrounding whitespace trimmed and line breaks removed. Line breaks can
/// only be insignificant whitespace in valid JSON (strings cannot hold raw
/// control characters), so removing them keeps the value identical while
/// letting SSE carry it in a single `data:` line.
///
/// # Errors
/// [`ApiError::InvalidJson`] with serde_json's description.
pub fn validate(body: &[u8]) -> Result<Bytes, ApiError> {
    // serde_json skips over the contents of strings it is not asked to
    // keep without checking their encoding, so check UTF-8 first: every
    // transport (a WebSocket text frame above all) relies on it.
    let text =
        std::str::from_utf8(body).map_err(|e| ApiError::InvalidJson(format!("not UTF-8: {e}")))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let trimmed = text.as_bytes().trim_ascii();
    if trimmed.contains(&b'\n') || trimmed.contains(&b'\r') {
        Ok(trimmed
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'\n' | b'\r'))
            .collect::<Vec<u8>>()
            .into())
    } else {
        Ok(Bytes::copy_from_slice(trimmed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_value_and_flattens_it() {
        assert_eq!(&validate(b" {\"a\":\n 1}\r\n").unwrap()[..], b"{\"a\": 1}");
        assert_eq!(&validate(b"42").unwrap()[..], b"42");
        assert_eq!(&validate(b"\"x\\ny\"").unwrap()[..], b"\"x\\ny\"");
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [&b""[..], b"{", b"1 2", b"{\"a\":1}}", b"nul", b"\"\xff\""] {
            assert!(validate(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
