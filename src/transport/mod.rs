//! The transports, and what they share: a subscriber is a [`feed::Feed`] of
//! cursors into the log, and each transport only encodes what its feed
//! yields. A transport never knows which connection (TCP or TLS, HTTP/1.1
//! or HTTP/2) it runs on, and never checks who may use it: the request
//! reached it through `admit`.
//!
//! - [`feed`]: the subscriber — cursors, log waits and retries, fairness
//!   between topics, and why it ends;
//! - [`encoding`]: `encoding=json|lean`, the lean event forms;
//! - [`poll`]: short poll and long poll (`application/json` bodies);
//! - [`sse`]: Server-Sent Events (`text/event-stream`);
//! - [`ws`]: WebSocket (RFC 6455) via hyper's upgrade and tokio-tungstenite;
//! - [`fanout`]: the fast path — one writer per topic for the caught-up
//!   single-topic WebSockets, SSE streams and held long polls whose
//!   sockets can be written directly;
//! - [`signal`]: the control messages (opening, gap, reset, …) as serde types;
//! - [`publish`]: `POST /topics/{t}/events`, the write side;
//! - [`probe`]: `/probe/{transport}`, timed test traffic for `feedgate doctor`.

pub(crate) mod encoding;
pub(crate) mod fanout;
pub(crate) mod feed;
pub(crate) mod poll;
pub(crate) mod probe;
pub(crate) mod publish;
pub(crate) mod signal;
pub(crate) mod sse;
pub(crate) mod ws;

use hyper::Response;

pub(crate) use crate::admit::Wanted;
use crate::http::response::Body;
use crate::log::Batch;
use crate::metrics::Outcome;

/// What a handler answers: the response, and how to count the request.
pub(crate) struct Reply {
    pub response: Response<Body>,
    pub outcome: Outcome,
}

impl Reply {
    pub fn new(response: Response<Body>, outcome: Outcome) -> Self {
        Reply { response, outcome }
    }
}

/// The resume point just before a batch's events: where a reader that got
/// the batch's signals but none of its events would continue from.
pub(crate) fn start_of(batch: &Batch) -> u64 {
    batch.events.first().map_or(batch.next, |e| e.seq - 1)
}

/// The reconnect delay a draining server tells one client (SSE `retry:`,
/// long-poll `Retry-After`): uniform in `[--sse-retry, --sse-retry +
/// --reconnect-spread]`, drawn per client, so that the clients of a
/// restarted node come back spread out instead of all at once.
pub(crate) fn drain_retry(config: &crate::config::Config) -> std::time::Duration {
    config.sse_retry + config.reconnect_spread.mul_f64(rand::random::<f64>())
}

/// Sleeps until `deadline`, or for ever without one.
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
