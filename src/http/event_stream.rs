//! The response headers of a Server-Sent Events stream, the same on a real
//! subscription and on the probe `feedgate doctor` sends through proxies
//! (what a proxy does with them is what the probe tests).

use hyper::header::{self, HeaderMap, HeaderValue};

/// Marks `h` as an event stream: `text/event-stream`, never cached, and
/// never buffered by nginx whatever its configuration says
/// (`X-Accel-Buffering: no`).
pub(crate) fn headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
}
