//! A request body read whole, within a size limit and a time limit: what a
//! publish, a demo control and a telemetry report read. An over-size body
//! is refused on its declared length before `100 Continue`, or as soon as
//! it crosses the limit, and then drained a bounded amount so a proxy in
//! front sees our 413 rather than a reset.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};

use crate::error::ApiError;

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
