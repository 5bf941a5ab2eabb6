//! Server-Sent Events: one endless `text/event-stream` response per
//! subscriber.
//!
//! The stream opens with `retry:` and a `ready` event whose `id:` is the
//! resolved cursor (so even a "from now" subscriber that reconnects resumes
//! without loss). Each event is `id: EPOCH:SEQ` + `data: <event json>`; gap
//! and reset are the named events `gap` and `reset`. Events that are ready
//! together go out in one write. Comment heartbeats keep proxies from
//! timing the stream out. The stream ends when the server drains.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::feed::{Delivery, Feed};
use super::{Reply, gap_fields, reset_fields, start_of};
use crate::app::App;
use crate::auth::Grant;
use crate::error::ApiError;
use crate::log::{Cursor, Topic};
use crate::metrics::{Outcome, Transport};
use crate::params::{Query, cursor_text, format_cursor};

/// `GET /topics/{topic}/sse`.
pub(crate) async fn subscribe(
    app: &App,
    topic: Topic,
    query: &Query,
    headers: &HeaderMap,
    grant: &Grant,
) -> Result<Reply, ApiError> {
    let cursor = cursor(query, headers)?;
    let feed = Feed::open(app, Transport::Sse, vec![(topic, cursor)], grant).await?;
    let every = app.config().sse_heartbeat;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let state = Stream {
        feed,
        heartbeat,
        retry_ms: app.config().sse_retry.as_millis(),
    };
    let frames = futures_util::stream::unfold(state, |mut s| async move {
        let bytes = s.next_frame().await?;
        Some((Ok(Frame::data(bytes)), s))
    });
    let mut res = Response::new(StreamBody::new(frames.boxed()).boxed_unsync());
    *res.status_mut() = StatusCode::OK;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx not to buffer this response, whatever its config says.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(Reply::new(res, Outcome::Stream))
}

/// The cursor, by precedence: `Last-Event-ID` header (what a reconnecting
/// `EventSource` sends), then `last_event_id`, then `after` / `epoch`.
fn cursor(query: &Query, headers: &HeaderMap) -> Result<Cursor, ApiError> {
    if let Some(v) = headers.get("last-event-id") {
        let text = v
            .to_str()
            .map_err(|_| ApiError::InvalidCursor("Last-Event-ID is not ASCII".into()))?;
        // An empty id is "no id" (an EventSource resets it so): the
        // cursors in the query stand.
        if !text.trim().is_empty() {
            return cursor_text(text);
        }
    }
    if let Some(text) = &query.last_event_id {
        return cursor_text(text);
    }
    query.cursor()
}

/// The state of one SSE response body: a feed and a heartbeat.
struct Stream {
    feed: Feed,
    heartbeat: Interval,
    retry_ms: u128,
}

impl Stream {
    /// The next chunk to write, or `None` to end the stream.
    async fn next_frame(&mut self) -> Option<Bytes> {
        tokio::select! {
            biased;
            next = self.feed.next() => {
                let bytes = self.encode(&next.ok()?);
                // Events are on their way: a heartbeat now would be wasted.
                self.heartbeat.reset();
                Some(bytes)
            }
            _ = self.heartbeat.tick() => Some(Bytes::from_static(b":\n\n")),
        }
    }

    /// Encodes a delivery (with the stream's opening the first time) as
    /// one chunk, and accounts for it.
    fn encode(&self, d: &Delivery) -> Bytes {
        let batch = &d.batch;
        let events_len: usize = batch.events.iter().map(|e| e.json.len() + 48).sum();
        let mut b = BytesMut::with_capacity(events_len + 128);
        let start = format_cursor(batch.epoch, start_of(batch));
        if d.opening {
            b.put_slice(
                format!(
                    "retry: {}\nevent: ready\nid: {start}\ndata: {{\"epoch\":\"{}\",\"next\":{}}}\n\n",
                    self.retry_ms,
                    batch.epoch,
                    start_of(batch)
                )
                .as_bytes(),
            );
        }
        if let Some(reason) = batch.reset {
            b.put_slice(
                format!(
                    "event: reset\nid: {start}\ndata: {{{}}}\n\n",
                    reset_fields(reason, batch.epoch)
                )
                .as_bytes(),
            );
        }
        if let Some(gap) = &batch.gap {
            b.put_slice(
                format!("event: gap\nid: {start}\ndata: {{{}}}\n\n", gap_fields(gap)).as_bytes(),
            );
        }
        for e in &batch.events {
            // Formatted straight into the chunk: no allocation per event.
            let _ = write!((&mut b).writer(), "id: {}:{}\ndata: ", batch.epoch, e.seq);
            b.put_slice(&e.json);
            b.put_slice(b"\n\n");
        }
        self.feed.delivered(batch);
        b.freeze()
    }
}
