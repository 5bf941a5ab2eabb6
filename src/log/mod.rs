//! The change log: one append-only, gapless sequence of events per topic.
//!
//! Every transport answers the same question — "events after seq N" — by
//! calling [`Log::read`], and waits for more with a [`Subscription`]. There is
//! no per-subscriber queue: a subscriber is a cursor, and the log is the only
//! buffer. Events are serialized to their wire JSON once, at append, and every
//! transport writes those same shared bytes.
//!
//! [`Log`] is an enum over backends so callers never see which one runs: the
//! in-memory backend ([`memory`]) is the default; the file backend (`file`)
//! keeps the log on local disk across restarts; the Redis Streams backend
//! (`redis`) lets several gateway nodes share one log, on one Redis or a
//! Redis Cluster.

mod event;
pub(crate) mod file;
mod forms;
pub(crate) mod memory;
pub(crate) mod redis;

use std::sync::Arc;
use std::time::Duration;

/// A topic's head as the memory and Redis backends publish it.
pub(crate) type HeadSender = crate::sync::head_signal::HeadSender<Head>;
/// A subscriber's wait on a topic's head.
pub(crate) type HeadReceiver = crate::sync::head_signal::HeadReceiver<Head>;

pub use event::{BadEvent, Event, EventJson};
pub use file::Fsync;
pub(crate) use forms::Form;
pub use forms::FormCache;
pub use redis::RedisOptions;
// Topic names, epochs and cursors are the protocol's: clients use them too.
pub use crate::protocol::{Cursor, Epoch, MAX_TOPIC_LEN, Topic, unix_micros};

/// Why a cursor could not be honoured and the reader was restarted from the
/// oldest retained event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The cursor carries another epoch: the log was recreated (a restart of
    /// an in-memory gateway, or a lost Redis stream).
    EpochChanged,
    /// The cursor is past the head of the log: it cannot come from this log.
    CursorAhead,
}

impl ResetReason {
    /// The wire name used in every transport's reset signal.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::EpochChanged => "epoch_changed",
            ResetReason::CursorAhead => "cursor_ahead",
        }
    }
}

/// A cursor older than retention: `missed` events are gone for good, and
/// delivery resumes at `resume_seq`, the oldest retained event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// How many events after the cursor are no longer retained.
    pub missed: u64,
    /// The first seq delivered after the gap.
    pub resume_seq: u64,
}

/// The answer to "events after N": the events plus what the reader must be
/// told about its cursor.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The log's epoch; clients send it back with their next cursor.
    pub epoch: Epoch,
    /// Events in seq order, at most the `max` asked for.
    pub events: Vec<Event>,
    /// The cursor to ask with next time (the last delivered seq, or the
    /// resolved cursor when nothing was delivered).
    pub next: u64,
    /// Set when the cursor was older than retention.
    pub gap: Option<Gap>,
    /// Set when the cursor was from another epoch or past the head.
    pub reset: Option<ResetReason>,
}

impl Batch {
    /// No events and nothing to tell, at `cursor` (resolved: with an
    /// epoch): where a reader stands that got nothing this time.
    pub fn at(cursor: Cursor) -> Batch {
        Batch {
            epoch: cursor.epoch.unwrap_or(Epoch::NONE),
            events: Vec::new(),
            next: cursor.after.unwrap_or(0),
            gap: None,
            reset: None,
        }
    }

    /// Whether a reader must be told anything: events, a gap or a reset.
    pub fn has_news(&self) -> bool {
        !self.events.is_empty() || self.gap.is_some() || self.reset.is_some()
    }

    /// The cursor to continue from after this batch.
    pub fn next_cursor(&self) -> Cursor {
        Cursor::at(self.next, self.epoch)
    }
}

/// What an append returns.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The seq given to the new event.
    pub seq: u64,
    /// The log's epoch.
    pub epoch: Epoch,
}

/// The position of a topic's head, published to waiting subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Seq of the newest event (0 when the topic is empty).
    pub seq: u64,
    /// The log's epoch.
    pub epoch: Epoch,
}

/// How much history each topic keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Most events kept per topic.
    pub max_events: usize,
    /// Events older than this are dropped, if set.
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_events: 10_000,
            max_age: None,
        }
    }
}

/// Errors the log can return; each maps to one HTTP status in `error.rs`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LogError {
    /// Creating the topic would exceed `--max-topics`.
    #[error("too many topics: the limit is {0}")]
    TooManyTopics(usize),
    /// The backing store cannot be reached (Redis down).
    #[error("the change log is unavailable: {0}")]
    Unavailable(String),
}

/// Waits for a topic's head to move. Cheap to hold: a [`HeadReceiver`].
#[derive(Clone)]
pub struct Subscription {
    // Declared before `_lease`, so it is dropped first: a lease that
    // looks at the receiver count when it goes sees this one gone.
    head: HeadReceiver,
    /// Keeps a backend's state for a topic that has no events yet, and lets
    /// it go with the last subscriber (see `memory::Placeholder`).
    _lease: Option<Arc<dyn Send + Sync>>,
    /// The in-process window this subscription waits on (memory and file
    /// logs): a subscriber reads it directly, without the topics map's lock
    /// and a hash of the name per read. While the subscription lives the
    /// window cannot be dropped, and a published topic's window is never
    /// replaced.
    window: Option<Arc<memory::Topic>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("head", &self.head.head())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(head: HeadReceiver) -> Self {
        Subscription {
            head,
            _lease: None,
            window: None,
        }
    }

    /// A subscription that holds `lease` until its last clone is dropped.
    pub(crate) fn leased(head: HeadReceiver, lease: Arc<dyn Send + Sync>) -> Self {
        Subscription {
            head,
            _lease: Some(lease),
            window: None,
        }
    }

    /// The same, reading `window` directly (see the field).
    pub(crate) fn with_window(mut self, window: Arc<memory::Topic>) -> Self {
        self.window = Some(window);
        self
    }

    /// The head as last published.
    pub fn head(&self) -> Head {
        self.head.head()
    }

    /// Resolves once the log holds something a reader at `cursor` has not
    /// seen: an event after `cursor.after`, or a new epoch. Cancel-safe.
    ///
    /// Returns at once when that is already true. If the log is dropped the
    /// future never resolves; callers race it against shutdown anyway.
    pub async fn wait_beyond(&mut self, cursor: &Cursor) {
        let after = cursor.after.unwrap_or(0);
        // A topic's first publish moves it out of `Epoch::NONE`, which is
        // news for a reader at 0 only through its seq.
        let epoch = cursor
            .epoch
            .filter(|_| !cursor.continues_into_first_epoch());
        self.head
            .wait_for(|head| head.seq > after || epoch.is_some_and(|e| e != head.epoch))
            .await;
    }
}

/// The change log, whichever backend holds it. Cheap to clone.
#[derive(Clone)]
pub struct Log {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Memory(memory::MemoryLog),
    File(file::FileLog),
    Redis(redis::RedisLog),
}

impl Log {
    /// An in-memory log: the default, needs no service.
    pub fn memory(retention: Retention, max_topics: usize) -> Self {
        Log {
            backend: Backend::Memory(memory::MemoryLog::new(retention, max_topics)),
        }
    }

    /// A log in Redis Streams at `url` (`redis://host:port/db`), shared by
    /// every node pointed at the same Redis. Connects lazily: a node starts
    /// while Redis is down, reports itself degraded and keeps retrying.
    /// Must be called inside a Tokio runtime (it spawns a health probe);
    /// its background tasks stop when the last clone is dropped.
    ///
    /// # Errors
    /// [`std::io::ErrorKind::InvalidInput`] for a malformed URL.
    pub fn redis(url: &str, retention: Retention, max_topics: usize) -> std::io::Result<Self> {
        Self::redis_with(url, retention, max_topics, RedisOptions::default())
    }

    /// As [`Log::redis`], with the Redis backend's own settings; `url` may
    /// also be `redis+cluster://host:port,…` (a Redis Cluster, found from
    /// any of those nodes).
    ///
    /// # Errors
    /// [`std::io::ErrorKind::InvalidInput`] for a malformed URL.
    pub fn redis_with(
        url: &str,
        retention: Retention,
        max_topics: usize,
        options: RedisOptions,
    ) -> std::io::Result<Self> {
        let log = redis::RedisLog::new(url, retention, max_topics, options)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Log {
            backend: Backend::Redis(log),
        })
    }

    /// A durable log in the directory `dir` (created if missing), read back
    /// from what an earlier run left there: epochs, seqs and retained
    /// events survive restarts. `fsync` says when a publish is on disk;
    /// `recover` (`--log-recover`) opens a damaged log anyway, each damaged
    /// topic in a new epoch. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// When the directory cannot be created, read or locked (another
    /// process uses it), or a segment cannot be read; `InvalidData`, naming
    /// the file and byte offset, when it is damaged other than by a torn
    /// last write and `recover` is off.
    pub async fn file(
        dir: &std::path::Path,
        fsync: Fsync,
        retention: Retention,
        max_topics: usize,
        recover: bool,
    ) -> std::io::Result<Self> {
        let dir = dir.to_owned();
        let log = tokio::task::spawn_blocking(move || {
            file::FileLog::open(&dir, fsync, retention, max_topics, recover)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Log {
            backend: Backend::File(log),
        })
    }

    /// Appends `data` (one valid, single-line JSON value) to `topic`.
    ///
    /// # Errors
    /// [`LogError::TooManyTopics`] when the topic is new and the limit is
    /// reached; [`LogError::Unavailable`] when the backend is down. Nothing is
    /// appended on error.
    pub async fn append(&self, topic: &Topic, data: &[u8]) -> Result<Appended, LogError> {
        match &self.backend {
            Backend::Memory(m) => m.append(topic, data),
            Backend::File(f) => Box::pin(f.append(topic, data)).await,
            Backend::Redis(r) => Box::pin(r.append(topic, data)).await,
        }
    }

    /// Events of `topic` after `cursor`, at most `max`, with the gap or reset
    /// the reader must be told about. A topic nobody has published to reads
    /// as empty, in [`Epoch::NONE`], and is not created.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the backend is down.
    pub async fn read(
        &self,
        topic: &Topic,
        cursor: &Cursor,
        max: usize,
    ) -> Result<Batch, LogError> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.read(topic, cursor, max)),
            Backend::File(f) => Ok(f.read(topic, cursor, max)),
            // Boxed: the Redis future is ~1.3 KiB, and this future is
            // inlined into every subscriber session's state (WebSocket,
            // SSE, long poll) even when the memory backend runs. A Redis
            // round trip dwarfs one allocation.
            Backend::Redis(r) => Box::pin(r.read(topic.as_str(), cursor, max)).await,
        }
    }

    /// As [`Log::read`], for a subscriber: reads the window `sub` holds when
    /// the backend keeps one in this process (no map lookup or lock).
    ///
    /// # Errors
    /// As [`Log::read`].
    pub async fn read_subscribed(
        &self,
        sub: &Subscription,
        topic: &Topic,
        cursor: &Cursor,
        max: usize,
    ) -> Result<Batch, LogError> {
        match (&sub.window, &self.backend) {
            (Some(w), Backend::Memory(m)) => Ok(m.read_window(w, cursor, max)),
            (Some(w), Backend::File(f)) => Ok(f.read_window(w, cursor, max)),
            _ => self.read(topic, cursor, max).await,
        }
    }

    /// A handle that wakes when `topic`'s head moves. A subscriber may wait
    /// for a topic's first event: that creates no topic and counts against
    /// no limit (what it holds goes with the last subscriber).
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the backend is down.
    pub async fn subscribe(&self, topic: &Topic) -> Result<Subscription, LogError> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.subscribe(topic)),
            Backend::File(f) => Ok(f.subscribe(topic)),
            Backend::Redis(r) => Box::pin(r.subscribe(topic.as_str())).await,
        }
    }

    /// Resolves a "from now" cursor to the current head, so that a reader
    /// that subscribed without `after` misses nothing published afterwards.
    pub fn resolve(cursor: &Cursor, sub: &Subscription) -> Cursor {
        match cursor.after {
            Some(_) => *cursor,
            None => {
                let head = sub.head();
                Cursor::at(head.seq, head.epoch)
            }
        }
    }

    /// Applies the retention age to every topic now (the server calls this
    /// periodically when `--retention-age` is set).
    pub fn expire(&self) {
        match &self.backend {
            Backend::Memory(m) => m.expire(),
            Backend::File(f) => f.expire(),
            Backend::Redis(r) => r.expire(),
        }
    }

    /// Sizes for the metrics: (topics, retained events across topics).
    pub fn stats(&self) -> (usize, usize) {
        match &self.backend {
            Backend::Memory(m) => m.stats(),
            Backend::File(f) => f.stats(),
            Backend::Redis(r) => r.stats(),
        }
    }

    /// Entries of a shared log that were not valid events: skipped, never
    /// sent, and told to readers as a gap (0 for the memory backend).
    pub fn corrupt_entries(&self) -> u64 {
        match &self.backend {
            Backend::Memory(_) => 0,
            Backend::File(f) => f.corrupt_entries(),
            Backend::Redis(r) => r.corrupt_entries(),
        }
    }

    /// `None` when healthy; otherwise why the backend is degraded.
    pub fn degraded(&self) -> Option<String> {
        match &self.backend {
            Backend::Memory(_) => None,
            Backend::File(f) => f.degraded(),
            Backend::Redis(r) => r.degraded(),
        }
    }

    /// Which backend runs, for logs and `/healthz`.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Memory(_) => "memory",
            Backend::File(_) => "file",
            Backend::Redis(_) => "redis",
        }
    }
}

#[cfg(test)]
mod size_tests {
    fn size_of_return<A, B, F: std::future::Future>(_: fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A multiplexed subscriber that waits holds one of these per topic it
    /// follows (it was 264 bytes with `watch::Receiver::wait_for`).
    #[test]
    fn the_wait_future_stays_small() {
        let size = size_of_return(super::Subscription::wait_beyond);
        assert!(
            size <= 192,
            "Subscription::wait_beyond future is {size} bytes"
        );
    }
}
