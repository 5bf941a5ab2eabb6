//! `POST /topics/{topic}/events`: validate one JSON value, append it, answer
//! `201 {"topic":…,"seq":N,"epoch":…}`. Nothing is appended on any error.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Request, StatusCode};

use super::Reply;
use crate::app::App;
use crate::error::ApiError;
use crate::log::{LogError, Topic};
use crate::metrics::Limit;
use crate::metrics::Outcome;
use crate::response;

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

/// How much of an over-size body is read and discarded before answering
/// 413. Answering without reading it would make the connection close under
/// the client's (or a proxy's) feet mid-upload, and a proxy then reports a
/// 502 instead of our 413; beyond this cap that is the lesser evil.
const DRAIN_CAP: u64 = 8 << 20;
/// How long draining an over-size body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the whole body within `within`, refusing anything over `max`
/// bytes. A body that stalls (a slow or stuck upload) is cut off with 408,
/// since the header-read timeout does not cover bodies.
pub(crate) async fn read_body(
    req: Request<Incoming>,
    max: usize,
    within: Duration,
) -> Result<Bytes, ApiError> {
    tokio::time::timeout(within, read_body_untimed(req, max))
        .await
        .map_err(|_| ApiError::BodyTimeout(within.as_millis() as u64))?
}

async fn read_body_untimed(req: Request<Incoming>, max: usize) -> Result<Bytes, ApiError> {
    let declared = declared_length(req.headers());
    // hyper answers `Expect: 100-continue` with `100 Continue` when the body
    // is first polled, so a body refused on its declared length alone must
    // be refused before any poll: the client then never uploads it.
    let expects_continue = expects_continue(req.headers());
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > max as u64) {
        if !expects_continue && declared.is_some_and(|n| n <= DRAIN_CAP) {
            drain(&mut body, DRAIN_CAP).await;
        }
        return Err(ApiError::BodyTooLarge(max));
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::InvalidJson(format!("could not read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            let total = buf.len().saturating_add(data.len());
            if total > max {
                // At most DRAIN_CAP in all: with `--max-body` above it,
                // nothing more is read.
                drain(&mut body, DRAIN_CAP.saturating_sub(total as u64)).await;
                return Err(ApiError::BodyTooLarge(max));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Reads and discards up to `cap` more bytes of `body`, within
/// [`DRAIN_TIMEOUT`].
async fn drain(body: &mut Incoming, cap: u64) {
    let mut left = cap;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while left > 0 {
            let Some(Ok(frame)) = body.frame().await else {
                return;
            };
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            left = left.saturating_sub(n);
        }
    })
    .await;
}

/// Whether the client waits for `100 Continue` before sending the body.
fn expects_continue(h: &HeaderMap) -> bool {
    h.get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

fn declared_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
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
