//! The polling connection, short and long: one keep-alive HTTP connection
//! asking "events after my cursor" (single topic:
//! `/topics/{t}/{poll,longpoll}`, several: `/{poll,longpoll}?topics=LIST`),
//! and what its answers say.
//!
//! A short poll revalidates with the answer's `ETag` (`304` when nothing
//! is new); a long poll waits instead. A long poll a draining server cut
//! short is answered `200` with `Retry-After-Ms`: its events still count,
//! and the restart is reported after them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::protocol;
use super::http::{gunzip, gzipped};
use super::lean::Shape;
use super::topics::{Step, Topics};
use super::{ClientError, Endpoint, HttpConn, RequestStats, Wire};
use crate::protocol::{Cursor, Epoch, Gap, Reset};
use crate::wire::ByteCount;

/// A subscriber's polling connection.
#[derive(Default)]
pub(super) struct PollConn {
    /// The keep-alive connection, once made.
    http: Option<HttpConn>,
    /// The last answer's `ETag` (single-topic short polls).
    etag: Option<String>,
    /// A first request went out: later short polls wait their interval.
    polled: bool,
}

/// A poll's answer: its decoded body, and the server's drain delay when
/// it is restarting.
pub(super) struct Answer {
    /// `None`: `304 Not Modified`.
    pub body: Option<Bytes>,
    pub draining: Option<Duration>,
}

impl PollConn {
    /// Connects now, so a reconnect is proved before its wait ends.
    ///
    /// # Errors
    /// When connecting fails.
    pub async fn connect(
        &mut self,
        ep: &Endpoint,
        bytes: &Arc<ByteCount>,
    ) -> Result<(), ClientError> {
        self.http = Some(HttpConn::connect(ep, bytes.clone()).await?);
        Ok(())
    }

    /// What its connection speaks, once connected.
    pub fn link(&self) -> Option<super::Link> {
        self.http.as_ref().map(HttpConn::link)
    }

    /// Forgets the `ETag`: the topics changed, so it no longer says where
    /// this poller stands.
    pub fn forget_etag(&mut self) {
        self.etag = None;
    }

    /// Sends one poll to `path` (a short one after its interval).
    ///
    /// # Errors
    /// When the connection fails or the server answers an error status.
    pub async fn request(
        &mut self,
        ep: &Endpoint,
        bytes: &Arc<ByteCount>,
        path: &str,
        (long, interval): (bool, Duration),
        wire: Wire,
        stats: &mut RequestStats,
    ) -> Result<Answer, ClientError> {
        if !long && self.polled {
            tokio::time::sleep(interval).await;
        }
        self.polled = true;
        if self.http.as_ref().is_none_or(|h| h.is_closed()) {
            self.connect(ep, bytes).await?;
        }
        let conn = self.http.as_mut().expect("connected above");
        // Only a short poll revalidates (304); a long poll waits instead,
        // so the header would be wasted bytes on every request.
        let mut headers: Vec<(&str, String)> = self
            .etag
            .iter()
            .filter(|_| !long)
            .map(|e| ("if-none-match", e.clone()))
            .collect();
        headers.extend(wire.accept_encoding());
        let res = conn.send(Method::GET, path, &headers, None).await?;
        stats.requests += 1;
        let status = res.status();
        if let Some(e) = res.headers().get("etag").and_then(|v| v.to_str().ok()) {
            self.etag = Some(e.to_owned());
        }
        // A `200` with a retry hint: the server drains (after this answer,
        // which still moves the cursor).
        let draining = (status == StatusCode::OK)
            .then(|| retry_hint(res.headers()))
            .flatten();
        let gzipped = gzipped(res.headers());
        let mut body = res.into_body().collect().await?.to_bytes();
        if gzipped {
            body = gunzip(&body)?;
        }
        if status == StatusCode::NOT_MODIFIED {
            stats.empty += 1;
            return Ok(Answer {
                body: None,
                draining,
            });
        }
        if status != StatusCode::OK {
            return Err(ClientError::status(status, &body));
        }
        Ok(Answer {
            body: Some(body),
            draining,
        })
    }
}

/// The `Retry-After-Ms` (else `Retry-After`, seconds) of a long poll that
/// a draining server answered.
fn retry_hint(h: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| h.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    num("retry-after-ms")
        .map(Duration::from_millis)
        .or_else(|| num("retry-after").map(Duration::from_secs))
}

/// Where an answer leaves one topic, and what it says happened to its
/// cursor; lean multiplexed answers hold the topic's events here too.
#[derive(Deserialize)]
struct Position<'a> {
    epoch: Epoch,
    next: u64,
    gap: Option<Gap>,
    reset: Option<Reset>,
    #[serde(default, borrow)]
    events: Vec<&'a RawValue>,
}

/// A multiplexed answer: `{"events":[…],"topics":{"T":{…}},"next":"LIST"}`
/// (lean: each topic's events inside its entry).
#[derive(Deserialize)]
struct Multiplexed<'a> {
    #[serde(default, borrow)]
    events: Vec<&'a RawValue>,
    #[serde(borrow)]
    topics: HashMap<Cow<'a, str>, Position<'a>>,
}

/// Turns an answer's body into steps; returns how many events it held.
///
/// # Errors
/// A body that is not a poll answer.
pub(super) fn decode(
    body: &Bytes,
    topics: &mut Topics,
    shape: Shape,
) -> Result<usize, ClientError> {
    if !shape.multiplexed {
        let position: Position = serde_json::from_slice(body).map_err(protocol)?;
        return topic(0, position, body, topics, shape);
    }
    let answer: Multiplexed = serde_json::from_slice(body).map_err(protocol)?;
    let mut held = answer.events.len();
    let mut stands = Vec::with_capacity(answer.topics.len());
    for (name, position) in answer.topics {
        // A topic let go since the request was sent.
        let Some(i) = topics.index(&name) else {
            continue;
        };
        stands.push((i, Cursor::at(position.next, position.epoch)));
        held += topic(i, position, body, topics, shape)?;
    }
    for raw in answer.events {
        topics.event(shape, body.slice_ref(raw.get().as_bytes()))?;
    }
    // Every topic's position stands, events or not: a "from now" topic
    // learns its head and epoch this way.
    for (i, cursor) in stands {
        topics.steps.push_back(Step::Stand(i, cursor));
    }
    Ok(held)
}

/// One topic's part of an answer: its reset, its epoch, its gap, its
/// events when they are inside its entry, and (single topic) where it
/// stands after them.
fn topic(
    i: usize,
    p: Position<'_>,
    body: &Bytes,
    topics: &mut Topics,
    shape: Shape,
) -> Result<usize, ClientError> {
    if let Some(r) = p.reset {
        topics.steps.push_back(Step::Deliver(i, r.into()));
    }
    // The events are in this epoch (a reset above moved to it already).
    let epoch_only = Cursor {
        after: None,
        epoch: Some(p.epoch),
    };
    topics.steps.push_back(Step::Stand(i, epoch_only));
    if let Some(g) = p.gap {
        topics.steps.push_back(Step::Deliver(i, g.into()));
    }
    let n = p.events.len();
    for (k, raw) in p.events.into_iter().enumerate() {
        let json = body.slice_ref(raw.get().as_bytes());
        if !shape.lean {
            topics.event(shape, json)?;
            continue;
        }
        // Lean events count back from `next`: they end there.
        let seq = p
            .next
            .checked_add(k as u64 + 1)
            .and_then(|end| end.checked_sub(n as u64))
            .ok_or_else(|| protocol("a lean answer with more events than its next"))?;
        topics.lean_at(i, json, Some(seq));
    }
    if !shape.multiplexed {
        topics
            .steps
            .push_back(Step::Stand(i, Cursor::at(p.next, p.epoch)));
    }
    Ok(n)
}
