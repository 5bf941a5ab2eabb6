//! A subscriber, whatever transport carries it: a [`Feed`] of cursors into
//! the log, and the reasons it ends.
//!
//! The log is the only buffer, so a subscriber is nothing but a cursor per
//! topic it follows. A `Feed` owns those cursors and everything that moves
//! them: reading the log, waiting on it for more, retrying it while it is
//! down, taking turns between topics so that a busy one cannot starve the
//! others, and ending — on shutdown, when the subscriber's token expires, or
//! when the demo injects a fault. It checks those end conditions before
//! every batch, so a subscriber that lags on a busy topic still hears about
//! them as soon as its socket takes the next write.
//!
//! The transports only encode what a Feed yields: a [`Delivery`] is one
//! topic's [`Batch`] (plus, the first time, the cue to announce the
//! stream); poll and long poll turn it into a JSON body, SSE into a chunk,
//! WebSocket into frames. A transport that cannot write tells the Feed why
//! it stopped ([`End::WriteStalled`]), so the reasons are named in one place.
//!
//! Demo faults wrap the Feed, never the encoders: a refused transport fails
//! [`Feed::open`] with a 503, a stalled one opens a Feed that never yields,
//! and a fault injected while a stream is open ends it ([`End::Fault`]).

use std::time::Duration;

use futures_util::future::select_all;
use tokio::time::Instant;

use crate::app::App;
use crate::auth::Grant;
use crate::demo::Fault;
use crate::error::ApiError;
use crate::log::{Batch, Cursor, Epoch, Log, Subscription, Topic};
use crate::metrics::{Limit, Link, Transport, TransportMetrics};

/// How long to wait before retrying the log after it failed (Redis down);
/// streams stay open meanwhile.
const LOG_RETRY: Duration = Duration::from_secs(1);

/// One subscriber's cursors into the log.
pub(crate) struct Feed {
    app: App,
    transport: Transport,
    /// The connection's protocol and TLS: the labels its deliveries are
    /// counted under (the transport never looks at them).
    link: Link,
    follows: Vec<Follow>,
    /// The follow to read first next time: topics take turns.
    turn: usize,
    /// When the subscriber's token expires.
    expires: Option<Instant>,
    /// A demo fault holds this feed open but delivers nothing.
    stalled: bool,
    /// Most events one read takes from one topic.
    batch_limit: usize,
    /// The shutdown, as a feed waits on it ([`App::stop_watch`]).
    stop: crate::sync::stop_signal::StopWatch,
}

/// One topic a feed follows.
struct Follow {
    topic: Topic,
    sub: Subscription,
    cursor: Cursor,
    /// The epoch the subscriber was last told (`None` before the opening).
    told: Option<Epoch>,
}

impl Follow {
    /// The delivery `batch` makes, moving the cursor past it; `None` when
    /// it has nothing to tell. A topic's first publish moves a reader that
    /// came before it out of `Epoch::NONE` without a reset: it is told the
    /// epoch as at the opening.
    fn take(&mut self, index: usize, batch: Batch) -> Option<Delivery> {
        let new_epoch = self.told != Some(batch.epoch);
        if !(batch.has_news() || new_epoch) {
            return None;
        }
        let opening = self.told.is_none() || (batch.reset.is_none() && new_epoch);
        self.told = Some(batch.epoch);
        self.cursor = batch.next_cursor();
        Some(Delivery {
            index,
            batch,
            opening,
        })
    }
}

/// What a feed yields: one topic's batch.
pub(crate) struct Delivery {
    /// Which of the feed's topics, by position in [`Feed::open`]'s list.
    pub index: usize,
    /// The events and signals to write.
    pub batch: Batch,
    /// The first delivery for this topic, or the first in the epoch that
    /// the topic's first publish created: a stream announces itself
    /// (`ready`, with the epoch) with it; it may hold no news.
    pub opening: bool,
}

/// Why a feed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The server is draining.
    Shutdown,
    /// The subscriber's token expired.
    Expired,
    /// A demo fault was injected on this transport.
    Fault,
    /// The subscriber read nothing for `--write-timeout`.
    WriteStalled,
    /// The socket failed or the peer went away: nobody to tell.
    Gone,
}

impl Feed {
    /// Follows `topics` from their cursors ("from now" resolves to each
    /// topic's head as it is now, so nothing published later is missed).
    /// Creates no topic.
    ///
    /// # Errors
    /// The 503 of a demo fault that refuses `transport`; the log's error
    /// when it cannot be reached.
    pub async fn open(
        app: &App,
        transport: Transport,
        link: Link,
        topics: Vec<(Topic, Cursor)>,
        grant: &Grant,
    ) -> Result<Feed, ApiError> {
        let stalled = demo_gate(app, transport)? == Fault::Stall;
        let mut feed = Feed {
            app: app.clone(),
            transport,
            link,
            follows: Vec::with_capacity(topics.len()),
            turn: 0,
            expires: grant.remaining().map(|d| Instant::now() + d),
            stalled,
            batch_limit: app.config().max_batch,
            stop: app.stop_watch(),
        };
        for (topic, cursor) in topics {
            feed.add(topic, cursor).await?;
        }
        Ok(feed)
    }

    /// Follows one more topic from `cursor` (resolved as in
    /// [`Feed::open`]); its opening delivery comes with the next
    /// [`Feed::next`]. The caller checks it is not followed already.
    ///
    /// # Errors
    /// The log's error when it cannot be reached.
    pub async fn add(&mut self, topic: Topic, cursor: Cursor) -> Result<(), ApiError> {
        let sub = self.app.log().subscribe(&topic).await?;
        let cursor = Log::resolve(&cursor, &sub);
        self.follows.push(Follow {
            topic,
            sub,
            cursor,
            told: None,
        });
        self.metrics().subscriptions.inc();
        Ok(())
    }

    /// Holds the feed to `grant` too: it ends when the earlier of its
    /// grants expires (a topic added later never extends the socket's
    /// life).
    pub fn restrict(&mut self, grant: &Grant) {
        if let Some(d) = grant.remaining() {
            let at = Instant::now() + d;
            self.expires = Some(self.expires.map_or(at, |e| e.min(at)));
        }
    }

    /// Stops following `topic`; `false` when it was not followed.
    pub fn remove(&mut self, topic: &Topic) -> bool {
        let Some(i) = self.follows.iter().position(|f| f.topic == *topic) else {
            return false;
        };
        self.follows.remove(i);
        self.metrics().subscriptions.dec();
        if self.turn > i {
            self.turn -= 1;
        }
        self.turn %= self.follows.len().max(1);
        true
    }

    /// The server's state.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Whether `topic` is followed.
    pub fn follows(&self, topic: &Topic) -> bool {
        self.follows.iter().any(|f| f.topic == *topic)
    }

    /// How many topics are followed.
    pub fn len(&self) -> usize {
        self.follows.len()
    }

    /// The topic at `index` and the cursor that would resume it now.
    pub fn position(&self, index: usize) -> (&Topic, Cursor) {
        let f = &self.follows[index];
        (&f.topic, f.cursor)
    }

    /// Shares `--max-batch` between the topics: one answer that holds every
    /// topic's news (a multiplexed poll) stays about one batch in all.
    pub fn share_batch(&mut self) {
        let n = self.follows.len().max(1);
        self.batch_limit = self.app.config().max_batch.div_ceil(n);
    }

    /// Where a short poll passes the demo's faults: refused with a 503, or
    /// stalled by the longest long-poll hold (answered as usual after it).
    ///
    /// # Errors
    /// The 503 of a refusing fault.
    pub async fn poll_gate(app: &App) -> Result<(), ApiError> {
        if demo_gate(app, Transport::Poll)? == Fault::Stall {
            let mut stop = app.stop_watch();
            tokio::select! {
                _ = tokio::time::sleep(app.config().longpoll_max) => {}
                _ = stop.stopped() => {}
            }
        }
        Ok(())
    }

    /// The next batch that holds news for one of the topics (or, once per
    /// topic, the opening one), or why the feed ended. The cursor moves
    /// past the batch as it is returned. Cancel-safe: a call dropped before
    /// it returns moves nothing.
    pub async fn next(&mut self) -> Result<Delivery, End> {
        loop {
            self.check_end()?;
            let mut failed = false;
            if !self.stalled {
                let n = self.follows.len();
                for k in 0..n {
                    let index = (self.turn + k) % n;
                    let f = &mut self.follows[index];
                    match self
                        .app
                        .log()
                        .read_subscribed(&f.sub, &f.topic, &f.cursor, self.batch_limit)
                        .await
                    {
                        Ok(batch) => {
                            if let Some(d) = f.take(index, batch) {
                                self.turn = (index + 1) % n;
                                return Ok(d);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(topic = %f.topic, error = %e, "log read failed; retrying");
                            failed = true;
                        }
                    }
                }
            }
            // One timer for both: the token's expiry, and the retry of a
            // log that failed (the loop head tells which fired).
            let retry = failed.then(|| Instant::now() + LOG_RETRY);
            let wake = match (retry, self.expires) {
                (Some(r), Some(e)) => Some(r.min(e)),
                (r, e) => r.or(e),
            };
            tokio::select! {
                biased;
                _ = self.stop.stopped() => return Err(End::Shutdown),
                _ = super::sleep_until(wake) => {}
                _ = demo_broken(&self.app, self.transport), if !self.stalled => return Err(End::Fault),
                _ = wait_any(&mut self.follows), if !self.stalled => {}
            }
        }
    }

    /// What every topic holds for its reader now, without waiting: the
    /// deliveries that have news (or open a topic), cursors moved past
    /// them. A topic whose read fails is left for next time.
    pub async fn ready_now(&mut self) -> Vec<Delivery> {
        let mut out = Vec::new();
        if self.stalled {
            return out;
        }
        for (index, f) in self.follows.iter_mut().enumerate() {
            if let Ok(batch) = self
                .app
                .log()
                .read_subscribed(&f.sub, &f.topic, &f.cursor, self.batch_limit)
                .await
            {
                out.extend(f.take(index, batch));
            }
        }
        out
    }

    /// The opening delivery of `topic` if the subscriber has not had it
    /// yet (no events: those follow in later deliveries, or never, once
    /// the topic is removed); `None` once it was delivered.
    ///
    /// # Errors
    /// The log's error when it cannot be reached.
    pub async fn opening_of(&mut self, topic: &Topic) -> Result<Option<Delivery>, ApiError> {
        let Some(index) = self
            .follows
            .iter()
            .position(|f| f.topic == *topic && f.told.is_none())
        else {
            return Ok(None);
        };
        let f = &mut self.follows[index];
        let batch = self
            .app
            .log()
            .read_subscribed(&f.sub, &f.topic, &f.cursor, 0)
            .await?;
        Ok(f.take(index, batch))
    }

    /// An answer without events at each topic's cursor, for a long poll
    /// that held to its end: the log's current view (gap, reset), nothing
    /// delivered.
    ///
    /// # Errors
    /// The log's error when it cannot be reached.
    pub async fn idle_batch(&self, index: usize) -> Result<Batch, ApiError> {
        let f = &self.follows[index];
        Ok(self
            .app
            .log()
            .read_subscribed(&f.sub, &f.topic, &f.cursor, 0)
            .await?)
    }

    /// Resolves when the feed must end while its subscriber waits on the
    /// fast path (`fanout.rs`) rather than on the log: on shutdown, when
    /// the token expires, or when the demo injects a fault.
    pub async fn ended(&mut self) -> End {
        loop {
            if let Err(end) = self.check_end() {
                return end;
            }
            tokio::select! {
                biased;
                _ = self.stop.stopped() => return End::Shutdown,
                _ = super::sleep_until(self.expires) => {}
                _ = demo_broken(&self.app, self.transport), if !self.stalled => return End::Fault,
            }
        }
    }

    /// Whether the feed may be served by the fast path: one topic, not
    /// stalled by a demo fault, and its opening told.
    pub fn fast_eligible(&self) -> bool {
        matches!(&self.follows[..], [f] if f.told.is_some()) && !self.stalled
    }

    /// The (only) topic's cursor, and its topic, for the fast path.
    pub fn single(&self) -> Option<(&Topic, Cursor)> {
        match &self.follows[..] {
            [f] => Some((&f.topic, f.cursor)),
            _ => None,
        }
    }

    /// Takes the position the fast path delivered up to (the same epoch).
    pub fn advance_to(&mut self, cursor: Cursor) {
        if let [f] = &mut self.follows[..] {
            f.cursor = cursor;
        }
    }

    /// When the subscriber's token expires.
    pub fn expires(&self) -> Option<Instant> {
        self.expires
    }

    /// Counts a batch the transport handed to the socket: one delivery per
    /// event with its latency, and the gap or reset the reader was told.
    pub fn delivered(&self, batch: &Batch) {
        account(self.metrics(), self.link, batch);
    }

    /// The transport's metric handles.
    pub fn metrics(&self) -> &TransportMetrics {
        self.app.metrics().transport(self.transport)
    }

    /// Runs a write for this subscriber within `--write-timeout`.
    ///
    /// # Errors
    /// [`End::WriteStalled`] when the peer read nothing for that long,
    /// [`End::Gone`] when the write failed.
    pub async fn write<T, E>(
        &self,
        write: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, End> {
        match tokio::time::timeout(self.app.config().write_timeout, write).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => {
                self.app.metrics().limit_hit(Limit::WriteTimeout);
                Err(End::WriteStalled)
            }
        }
    }

    /// Counts a limit this subscriber ran into.
    pub fn limit_hit(&self, limit: Limit) {
        self.app.metrics().limit_hit(limit);
    }

    /// The end condition that holds now, if any.
    fn check_end(&self) -> Result<(), End> {
        if self.stop.is_stopped() {
            return Err(End::Shutdown);
        }
        if self.expires.is_some_and(|e| Instant::now() >= e) {
            return Err(End::Expired);
        }
        if !self.stalled && demo_fault(&self.app, self.transport) != Fault::Ok {
            return Err(End::Fault);
        }
        Ok(())
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let n = i64::try_from(self.follows.len()).unwrap_or(i64::MAX);
        self.metrics().subscriptions.sub(n);
    }
}

/// Counts a batch handed to a socket on the transport `tm` measures.
pub(crate) fn account(tm: &TransportMetrics, link: Link, batch: &Batch) {
    let lm = tm.on(link);
    for e in &batch.events {
        lm.delivered(e.json.len(), e.time_us);
    }
    if batch.gap.is_some() {
        tm.gaps.inc();
    }
    if batch.reset.is_some() {
        tm.resets.inc();
    }
}

/// Resolves once any followed topic holds something its cursor has not
/// seen.
async fn wait_any(follows: &mut [Follow]) {
    match follows {
        [] => std::future::pending().await,
        [f] => f.sub.wait_beyond(&f.cursor).await,
        many => {
            let waits = many.iter_mut().map(|f| {
                let cursor = f.cursor;
                Box::pin(async move { f.sub.wait_beyond(&cursor).await })
            });
            select_all(waits).await;
        }
    }
}

/// The fault the demo injects on `t` now ([`Fault::Ok`] without `--demo`).
fn demo_fault(app: &App, t: Transport) -> Fault {
    app.demo().map_or(Fault::Ok, |d| d.fault(t))
}

/// Refuses `t` with a 503 when the demo says so; otherwise the fault that
/// shapes the feed.
fn demo_gate(app: &App, t: Transport) -> Result<Fault, ApiError> {
    match demo_fault(app, t) {
        Fault::Refuse => Err(ApiError::Unavailable(format!(
            "{} refused by an injected demo fault (POST /demo/faults to clear)",
            t.as_str()
        ))),
        fault => Ok(fault),
    }
}

/// Resolves when a fault is injected on `t`; never without `--demo`. Open
/// streams end on it so that their clients reconnect into the fault, as
/// they would when a proxy on the path is reconfigured.
async fn demo_broken(app: &App, t: Transport) {
    match app.demo() {
        // Boxed: only the demo pays for this future's size, not every
        // subscriber's state.
        Some(d) => Box::pin(d.broken(t)).await,
        None => std::future::pending().await,
    }
}
