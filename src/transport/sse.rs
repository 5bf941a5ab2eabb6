//! Server-Sent Events: one endless `text/event-stream` response per
//! subscriber.
//!
//! The stream opens with `retry:` and a `ready` event whose `id:` is the
//! resolved cursor (so even a "from now" subscriber that reconnects resumes
//! without loss). Each event is `id: EPOCH:SEQ` + `data: <event json>`; gap
//! and reset are the named events `gap` and `reset`. Events that are ready
//! together go out in one write. Comment heartbeats keep proxies from
//! timing the stream out. The stream ends when the server drains.

use std::time::Duration;

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::time::{Interval, MissedTickBehavior};

use super::{Reply, account, gap_fields, reset_fields, start_of};
use crate::app::App;
use crate::auth::Grant;
use crate::demo;
use crate::error::ApiError;
use crate::log::{Batch, Cursor, Log, Subscription};
use crate::metrics::{Outcome, Transport};
use crate::params::{Query, cursor_text, format_cursor};

/// How long to wait before retrying the log after it failed (Redis down);
/// the stream stays open meanwhile.
const LOG_RETRY: Duration = Duration::from_secs(1);

/// `GET /topics/{topic}/sse`.
pub(crate) async fn subscribe(
    app: &App,
    topic: &str,
    query: &Query,
    headers: &HeaderMap,
    grant: Grant,
) -> Result<Reply, ApiError> {
    let cursor = cursor(query, headers)?;
    let stalled = demo::stalled(app, Transport::Sse)?;
    let sub = app.log().subscribe(topic).await?;
    let cursor = Log::resolve(&cursor, &sub);
    let mut heartbeat = tokio::time::interval(app.config().sse_heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let state = Stream {
        app: app.clone(),
        topic: topic.to_owned(),
        sub,
        cursor,
        heartbeat,
        opened: false,
        stalled,
        expires: grant.remaining().map(|d| tokio::time::Instant::now() + d),
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
        return cursor_text(text);
    }
    if let Some(text) = &query.last_event_id {
        return cursor_text(text);
    }
    query.cursor()
}

/// The state of one SSE response body.
struct Stream {
    app: App,
    topic: String,
    sub: Subscription,
    cursor: Cursor,
    heartbeat: Interval,
    opened: bool,
    /// An injected demo fault: hold the stream open, deliver nothing.
    stalled: bool,
    /// When the subscriber's token expires, the stream ends.
    expires: Option<tokio::time::Instant>,
}

impl Stream {
    /// The next chunk to write, or `None` to end the stream (shutdown).
    async fn next_frame(&mut self) -> Option<Bytes> {
        if self.stalled {
            self.app.shutdown().cancelled().await;
            return None;
        }
        // The first tick of an interval is immediate; the opening frame
        // stands in for it.
        if !self.opened {
            self.heartbeat.tick().await;
        }
        loop {
            match self
                .app
                .log()
                .read(&self.topic, &self.cursor, self.app.config().max_batch)
                .await
            {
                Ok(batch) => {
                    let news =
                        !batch.events.is_empty() || batch.gap.is_some() || batch.reset.is_some();
                    if news || !self.opened {
                        return Some(self.frame(&batch));
                    }
                }
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "sse read failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(LOG_RETRY) => continue,
                        _ = self.app.shutdown().cancelled() => return None,
                    }
                }
            }
            let expiry = self.expires;
            tokio::select! {
                biased;
                _ = self.app.shutdown().cancelled() => return None,
                _ = super::sleep_until(expiry) => return None,
                _ = demo::broken(&self.app, Transport::Sse) => return None,
                _ = self.sub.wait_beyond(&self.cursor) => {}
                _ = self.heartbeat.tick() => return Some(Bytes::from_static(b":\n\n")),
            }
        }
    }

    /// Encodes a batch (and, first time, the stream's opening) as one chunk.
    fn frame(&mut self, batch: &Batch) -> Bytes {
        let events_len: usize = batch.events.iter().map(|e| e.json.len() + 48).sum();
        let mut b = BytesMut::with_capacity(events_len + 128);
        let start = format_cursor(batch.epoch, start_of(batch));
        if !self.opened {
            self.opened = true;
            let retry = self.app.config().sse_retry.as_millis();
            b.put_slice(
                format!(
                    "retry: {retry}\nevent: ready\nid: {start}\ndata: {{\"epoch\":\"{}\",\"next\":{}}}\n\n",
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
        self.cursor = batch.next_cursor();
        account(self.app.metrics().transport(Transport::Sse), batch);
        // Events are on their way: a heartbeat now would be wasted bytes.
        self.heartbeat.reset();
        b.freeze()
    }
}
