//! `POST /telemetry/switch`: clients tell the server when they fall back
//! from one transport to another (or climb back), and why.
//!
//! A body is one small JSON object,
//! `{"from":"ws","to":"sse","reason":"cut","code":1006,"after_s":60.2}`,
//! counted in `feedgate_client_transport_switches_total{from,to,reason}`.
//! Label values are bounded: a transport or reason this server does not
//! know is counted as `other`, so a client can never create series at will.
//! `after_s` of a `cut` (how long the stream lived) feeds
//! `feedgate_client_stream_cut_after_seconds{transport}`, which shows an
//! idle timeout on the path as a spike at its value. `code` (a WebSocket
//! close code) is only logged.
//!
//! The endpoint is best effort for clients and cheap for the server: no
//! token, a body of at most [`MAX_BODY`] bytes, and — at admission — a
//! per-client rate limit (`X-Forwarded-For` believed from a
//! `--trusted-proxy`, as for publishes) and the same origin check as a
//! publish (a page on a foreign origin
//! cannot inflate the counts through its visitors). Any content type is
//! accepted, so that `navigator.sendBeacon` with a string works.

use std::net::IpAddr;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::app::App;
use crate::error::ApiError;
use crate::http::body::read_body;
use crate::http::response;
use crate::metrics::{Outcome, SWITCH_REASONS as REASONS, SWITCH_TRANSPORTS as TRANSPORTS};
use crate::transport::Reply;

/// Largest body accepted, bytes.
pub const MAX_BODY: usize = 1024;

/// One report as sent: a JSON object whose every field is optional and
/// may hold any JSON value. A value of another type than documented is
/// counted as `other` (labels) or left out (`code`, `after_s`), never
/// refused: the report still says a switch happened.
type Report = serde_json::Map<String, serde_json::Value>;

/// The text of field `name`, if it is a string.
fn text<'a>(r: &'a Report, name: &str) -> Option<&'a str> {
    r.get(name).and_then(serde_json::Value::as_str)
}

/// `value` if it is one of `known`, else `other`.
fn bounded(value: Option<&str>, known: &[&'static str]) -> &'static str {
    value
        .and_then(|v| known.iter().find(|k| **k == v))
        .copied()
        .unwrap_or("other")
}

/// `POST /telemetry/switch` from `client` (admitted: origin and rate
/// checked): `204` once counted.
pub(crate) async fn switch(
    app: &App,
    client: IpAddr,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let body = read_body(req, MAX_BODY, app.config().body_read_timeout).await?;
    let r: Report = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidJson(format!("a report is one JSON object: {e}")))?;
    let from = bounded(text(&r, "from"), &TRANSPORTS);
    let to = bounded(text(&r, "to"), &TRANSPORTS);
    let reason = bounded(text(&r, "reason"), &REASONS);
    let after = r
        .get("after_s")
        .and_then(serde_json::Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0);
    let code = r
        .get("code")
        .and_then(serde_json::Value::as_u64)
        .and_then(|c| u16::try_from(c).ok());
    app.metrics().client_switch(from, to, reason, after);
    tracing::debug!(%client, from, to, reason, code, after_s = after, "client switched transport");
    let mut res = Response::new(response::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    Ok(Reply::new(res, Outcome::Ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_label_values_are_other() {
        assert_eq!(bounded(Some("ws"), &TRANSPORTS), "ws");
        assert_eq!(bounded(Some("carrier-pigeon"), &TRANSPORTS), "other");
        assert_eq!(bounded(None, &REASONS), "other");
        assert_eq!(bounded(Some("cut"), &REASONS), "cut");
        assert_eq!(bounded(Some("CUT"), &REASONS), "other");
    }
}
