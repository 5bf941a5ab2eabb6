//! The Redis Streams backend: several gateway nodes share one log, so a
//! cursor from any node is valid on every node (no sticky sessions).
//!
//! Per topic `T`, Redis holds (the `{T}` hash tag keeps them in one slot):
//!
//! - `feedgate:{T}:log` — a stream; entry ID `<seq>-0`, fields `t` (publish
//!   time, µs) and `e` (the event JSON every transport writes, built once).
//! - `feedgate:{T}:meta` — a hash: `epoch`, `seq` (the head) and `since`
//!   (the ID of the epoch's entry in the `epochs` stream).
//! - `feedgate:{T}:epochs` — a short stream with one entry per epoch ever
//!   created, so a blocked reader wakes when the log is recreated.
//! - `feedgate:topics` — a set of topic names, for `--max-topics`.
//!
//! Appends and reads are Lua scripts, so seq allocation and append are one
//! atomic step, and an epoch with its events is always read consistently.
//! Only an append creates a topic (and counts it against `--max-topics`):
//! a topic without `meta` (never published to, or a flushed Redis) reads
//! as empty in [`Epoch::NONE`], and the next append creates a new epoch and
//! drops any stale stream: clients get a reset, never silently different
//! data under the same cursor.
//!
//! Every entry read is checked ([`Event::decode`]); one that is not an
//! event is never sent, but told to readers as a gap (see [`answer`]).
//!
//! Fan-in: each node runs one reader task per topic in use, blocked in
//! `XREAD` on a connection of its own (blocking commands would stall the
//! multiplexed connection publishes use). It feeds a bounded local window
//! (the in-memory backend's [`TopicState`]) and wakes local subscribers
//! through the topic's head signal, so a thousand subscribers at the head cost
//! one Redis read per batch of events. Older cursors, `after=0`, other
//! epochs and cursors ahead of the local head are answered from Redis.
//!
//! While Redis is down, appends fail with [`LogError::Unavailable`] (HTTP
//! 503) and nothing is acknowledged that Redis did not take; subscribers
//! keep their connections and are served from the local window; readers
//! reconnect with backoff and catch up by seq.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError, Script, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::HeadSender;
use super::memory::{TopicState, duration_micros, lock};
use super::{
    Appended, Batch, Cursor, Epoch, Event, Gap, Head, LogError, Retention, Subscription,
    Topic as TopicName, unix_micros,
};
use crate::sync::head_signal;

/// Prefix of every key feedgate writes.
const PREFIX: &str = "feedgate:";
/// The set of topic names, shared by all topics (see `--max-topics`).
const TOPICS_KEY: &str = "feedgate:topics";
/// Longest wait for one command's answer, whatever the connection state:
/// a publish to a hung Redis answers 503 after this, not never.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait to establish a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a reader's `XREAD` blocks before it looks around (idle check).
const BLOCK: Duration = Duration::from_secs(5);
/// Most stream entries one `XREAD` returns.
const READ_COUNT: usize = 1_000;
/// A topic nobody subscribed to or read for this long loses its reader.
const IDLE: Duration = Duration::from_secs(60);
/// Interval of the health probe (a `PING`), which also drives reconnects of
/// the shared connection while Redis is down.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Reader reconnect backoff: from `BACKOFF_MIN`, doubling, capped.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a read that found a newer epoch in Redis waits for the local
/// reader to adopt it, so that waiting subscribers do not spin meanwhile.
const EPOCH_ADOPT_WAIT: Duration = Duration::from_secs(1);
/// Most corrupt entries remembered per topic (so each is counted and
/// logged once); past it, further ones are counted each time they are read.
const CORRUPT_REMEMBERED: usize = 1024;

/// Shared by both scripts.
///
/// KEYS: meta, log, epochs, topics. ARGV[1] topic, ARGV[2] a fresh random
/// epoch (Lua's `math.random` is deterministic in Redis, so the caller draws
/// it), ARGV[3] the topic limit.
const PRELUDE: &str = r#"
local function create(epoch)
  redis.call('DEL', KEYS[2])
  local id = redis.call('XADD', KEYS[3], 'MAXLEN', '16', '*', 'epoch', epoch)
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', '0', 'since', id)
  return epoch
end
-- The head, after checking it against what a node has seen of this epoch:
-- a head that went backwards means Redis came back from an older snapshot
-- (RDB, a promoted replica), and reusing seqs that clients have already
-- seen would be silently wrong, so the log is recreated under a new epoch.
local function head_after_check(epoch, seen_epoch, seen_head)
  local head = tonumber(redis.call('HGET', KEYS[1], 'seq'))
  if seen_epoch == epoch and tonumber(seen_head) > head then
    return create(ARGV[2]), 0
  end
  return epoch, head
end
"#;

/// Appends one event. ARGV[4] MAXLEN, ARGV[5] time (µs), ARGV[6] data JSON,
/// ARGV[7]/[8] the epoch and head this node has seen (for the rollback
/// check; empty/0 when the topic is not open here).
///
/// Only an append creates a topic: a missing `meta` creates the epoch (and
/// drops any stale stream), counting the topic against the limit unless it
/// is already in the `topics` set; over the limit, nothing is written.
/// The seq is taken, the entry added, and only then the head moved, so a
/// failed XADD (out of memory) leaves no hole. The event JSON is built here
/// because only here is the seq known; its format is `Event::build`'s, and
/// `tests/redis.rs` checks they agree byte for byte.
const APPEND: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then
    if redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[3]) then return {'full'} end
    redis.call('SADD', KEYS[4], ARGV[1])
  end
  epoch = create(ARGV[2])
end
local head
epoch, head = head_after_check(epoch, ARGV[7], ARGV[8])
local seq = head + 1
local s = string.format('%d', seq)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], s .. '-0', 't', ARGV[5], 'e',
  '{"topic":"' .. ARGV[1] .. '","seq":' .. s .. ',"time":' .. ARGV[5] .. ',"data":' .. ARGV[6] .. '}')
redis.call('HSET', KEYS[1], 'seq', s)
return {'ok', seq, epoch}
"#;

/// Reads the head, the epoch, and up to ARGV[6] entries after ARGV[4]
/// (from the oldest retained when ARGV[4] is empty or 0, from another
/// epoch ARGV[5], or past the head). ARGV[7] is the age cutoff in µs
/// (0: none): older entries are skipped, except the newest (an entry whose
/// time is unreadable counts as old). ARGV[8]/[9] are the epoch and head
/// this node has seen, for the rollback check.
///
/// Reading creates nothing: a topic without `meta` (never published to, or
/// lost with a flushed Redis) reads as empty in epoch 0 ([`Epoch::NONE`]),
/// with `since` at the end of its epochs stream, so that a reader blocked
/// on that stream wakes at the first publish and not before.
const READ: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
  local since = '0-0'
  if #last > 0 then since = last[1][1] end
  return {'ok', 0, '0000000000000000', since, {}}
end
local head
epoch, head = head_after_check(epoch, ARGV[8], ARGV[9])
local out = {}
local count = tonumber(ARGV[6])
if count > 0 then
  local after = tonumber(ARGV[4])
  local start = '-'
  if after and after > 0 and after <= head and (ARGV[5] == '' or ARGV[5] == epoch) then
    start = string.format('%d-0', after + 1)
  end
  local cutoff = tonumber(ARGV[7])
  local newest = string.format('%d-0', head)
  for _ = 1, 16 do
    local chunk = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', count)
    local i = 1
    while cutoff > 0 and i <= #chunk and chunk[i][1] ~= newest
      and (tonumber(chunk[i][2][2]) or 0) < cutoff do
      i = i + 1
    end
    if i <= #chunk or #chunk < count then
      for j = i, #chunk do out[#out + 1] = chunk[j] end
      break
    end
    start = '(' .. chunk[#chunk][1]
  end
end
return {'ok', head, epoch, redis.call('HGET', KEYS[1], 'since'), out}
"#;

/// The Redis keys of one topic.
#[derive(Debug, Clone)]
struct Keys {
    meta: String,
    log: String,
    epochs: String,
}

impl Keys {
    fn new(topic: &str) -> Self {
        // Topic names are [A-Za-z0-9_.:-], so they never contain the braces
        // of the hash tag.
        Keys {
            meta: format!("{PREFIX}{{{topic}}}:meta"),
            log: format!("{PREFIX}{{{topic}}}:log"),
            epochs: format!("{PREFIX}{{{topic}}}:epochs"),
        }
    }
}

/// Every topic's log, in Redis, with this node's local windows. Cheap to
/// clone.
#[derive(Clone)]
pub(crate) struct RedisLog {
    shared: Arc<Shared>,
}

struct Shared {
    client: Client,
    /// The multiplexed connection for appends and reads (never blocking
    /// commands); it reconnects by itself.
    conn: ConnectionManager,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    retention: Retention,
    max_topics: usize,
    health: Arc<Health>,
    /// Corrupt log entries found (see [`Entry::Corrupt`]), for the metrics.
    corrupt: Arc<AtomicU64>,
    append: Script,
    read: Script,
    /// Cancelled when the last handle is dropped: stops readers and probe.
    stop: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One topic on this node: the local window, its head for waiting
/// subscribers, and the handles of its reader task.
///
/// A topic that does not exist in Redis (no publish yet) is opened only
/// for subscribers, in [`Epoch::NONE`]; it is closed as soon as the last
/// one leaves, and counts against no limit.
struct Topic {
    name: String,
    keys: Keys,
    /// Only the reader task changes `epoch`; reads and the reader both add
    /// events, always contiguous with what is there.
    state: Mutex<TopicState>,
    /// The epoch's entry in the `epochs` stream, where the reader resumes.
    since: Mutex<String>,
    head: HeadSender,
    last_used: Mutex<Instant>,
    /// Asks the reader to re-read the epoch now (a read saw a newer one).
    resync: Notify,
    /// The log's count of corrupt entries, shared by every topic.
    corrupt: Arc<AtomicU64>,
    /// The corrupt entries of this topic already counted.
    corrupt_seen: Mutex<CorruptSeen>,
}

/// The seqs of one epoch's corrupt entries that were counted and logged.
#[derive(Default)]
struct CorruptSeen {
    epoch: Option<Epoch>,
    seqs: HashSet<u64>,
}

impl Topic {
    /// Whether the topic does not exist in Redis (as last seen here).
    fn unborn(&self) -> bool {
        lock(&self.state).epoch == Epoch::NONE
    }

    /// Counts and logs a corrupt entry, once per entry.
    fn note_corrupt(&self, epoch: Epoch, seq: u64, why: &str) {
        {
            let mut seen = lock(&self.corrupt_seen);
            if seen.epoch != Some(epoch) {
                *seen = CorruptSeen {
                    epoch: Some(epoch),
                    seqs: HashSet::new(),
                };
            }
            if seen.seqs.contains(&seq) {
                return;
            }
            if seen.seqs.len() < CORRUPT_REMEMBERED {
                seen.seqs.insert(seq);
            }
        }
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        // Never sent: a client must not get what this process did not
        // build or check (see `EventJson`); readers are told of a gap.
        tracing::warn!(topic = %self.name, %epoch, seq, error = why, "skipping a corrupt log entry");
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// Wakes waiting subscribers if the head moved.
    fn publish_head(&self) {
        let (seq, epoch) = {
            let s = lock(&self.state);
            (s.head, s.epoch)
        };
        self.head.send_if_modified(|h| {
            let changed = h.seq != seq || h.epoch != epoch;
            *h = Head { seq, epoch };
            changed
        });
    }

    /// Answers from the local window when it can do so exactly: same epoch,
    /// a cursor within the window (or "from now"). `None` sends the read to
    /// Redis: the cursor is older than the window (or `after=0` while the
    /// window does not start at seq 1), from another epoch, or ahead of
    /// this node's head (which may just lag Redis).
    fn read_window(&self, cursor: &Cursor, max: usize, retention: &Retention) -> Option<Batch> {
        let mut s = lock(&self.state);
        if cursor.epoch.is_some_and(|e| e != s.epoch) {
            return None;
        }
        s.expire(retention);
        match cursor.after {
            None => Some(s.read(cursor, max)),
            // "From the oldest retained": only the window knows it holds
            // that when it holds seq 1 (or the topic is empty).
            Some(0) if s.first_seq() != 1 => None,
            Some(n) if n > s.head || n + 1 < s.first_seq() => None,
            Some(_) => Some(s.read(cursor, max)),
        }
    }

    /// Adds events read from Redis in `epoch` to the window where they are
    /// contiguous with it: older ones in front (while there is room), newer
    /// ones at the back. Returns whether the head moved.
    fn absorb(&self, epoch: Epoch, events: &[Event], retention: &Retention) -> bool {
        let mut s = lock(&self.state);
        if s.epoch != epoch || events.is_empty() {
            return false;
        }
        let first = s.first_seq();
        if events[0].seq < first && events[events.len() - 1].seq + 1 >= first {
            for e in events.iter().rev().filter(|e| e.seq < first) {
                if s.events.len() >= retention.max_events.max(1) {
                    break;
                }
                s.events.push_front(e.clone());
            }
        }
        let before = s.head;
        for e in events {
            if e.seq == s.head + 1 {
                s.push(e.clone(), retention);
            }
        }
        s.head != before
    }
}

/// Whether Redis answers, for `/healthz`.
struct Health {
    problem: Mutex<Option<String>>,
}

impl Health {
    /// Degraded until the first command succeeds: a node that has never
    /// reached Redis cannot serve anything.
    fn new() -> Self {
        Health {
            problem: Mutex::new(Some("not connected to redis yet".into())),
        }
    }

    fn ok(&self) {
        if lock(&self.problem).take().is_some() {
            tracing::info!("redis reachable");
        }
    }

    fn failed(&self, why: String) {
        let mut p = lock(&self.problem);
        if p.is_none() {
            tracing::warn!(error = %why, "redis unavailable");
        }
        *p = Some(why);
    }

    fn problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }
}

/// What the read script answered.
struct Snapshot {
    head: u64,
    epoch: Epoch,
    since: String,
    /// Log entries after the cursor, oldest first.
    entries: Vec<Entry>,
}

/// One entry of a topic's log stream, as read from Redis.
enum Entry {
    /// A valid event.
    Event(Event),
    /// Bytes that are not an event this node could have built (not UTF-8,
    /// not one JSON object, a field missing): another writer's, or damage.
    /// Never sent; readers are told its seq as a gap and move past it.
    Corrupt { seq: u64, why: String },
}

impl Entry {
    fn seq(&self) -> u64 {
        match self {
            Entry::Event(e) => e.seq,
            Entry::Corrupt { seq, .. } => *seq,
        }
    }
}

/// A cursor at seq 0 of [`Epoch::NONE`] is what a reader of a topic that
/// did not exist yet holds: it continues into the topic's first epoch, from
/// its first event, without a reset.
fn continue_from_none(cursor: &Cursor) -> Cursor {
    match (cursor.after, cursor.epoch) {
        (None | Some(0), Some(Epoch::NONE)) => Cursor {
            after: cursor.after,
            epoch: None,
        },
        _ => *cursor,
    }
}

/// Answers `cursor` from what the read script returned; also returns the
/// events the batch was cut from, for the local window.
///
/// Valid events are taken up to the first hole (a corrupt or missing
/// entry), so every hole ends up right after some reader's cursor; there
/// it is told as a gap, and the cursor moves past it. A reader thus never
/// skips a seq silently, nor stops at a corrupt one for ever.
fn answer(snap: Snapshot, cursor: &Cursor, max: usize) -> (Batch, TopicState) {
    let mut entries = snap.entries.into_iter().peekable();
    // Corrupt entries right after the cursor: (first seq, last seq).
    let mut corrupt: Option<(u64, u64)> = None;
    while let Some(Entry::Corrupt { seq, .. }) = entries.peek() {
        let seq = *seq;
        if seq > snap.head {
            break;
        }
        corrupt = Some((corrupt.map_or(seq, |(first, _)| first), seq));
        entries.next();
    }
    let mut events: Vec<Event> = Vec::new();
    for entry in entries {
        let next = events
            .last()
            .map(|e| e.seq + 1)
            .or(corrupt.map(|(_, last)| last + 1));
        match entry {
            Entry::Event(e) if e.seq <= snap.head && next.is_none_or(|n| e.seq == n) => {
                events.push(e)
            }
            // Not contiguous with the run: after a corrupt run, a missing
            // entry is the same gap (`resume` below covers it).
            Entry::Event(e) if events.is_empty() && e.seq <= snap.head => events.push(e),
            _ => break,
        }
    }
    let state = TopicState {
        epoch: snap.epoch,
        events: events.into(),
        head: snap.head,
    };
    let mut batch = state.read(cursor, max);
    // The window's own rules tell a gap after a cursor > 0; a corrupt run
    // is also a gap for a reader from the oldest event (`after=0`, or a
    // reset), whose start is otherwise not a gap.
    let positioned = cursor.after.is_some() || batch.reset.is_some();
    if let Some((first, last)) = corrupt
        && positioned
    {
        let resume = state.events.front().map_or(last + 1, |e| e.seq);
        let after = match (batch.reset, cursor.after) {
            (None, Some(after)) => after,
            _ => 0,
        };
        let from = if after > 0 { after + 1 } else { first };
        batch.gap = Some(Gap {
            missed: resume - from,
            resume_seq: resume,
        });
        if state.events.is_empty() {
            // Past the corrupt run, not to the head: what follows it was
            // not read yet.
            batch.next = last;
        }
    }
    (batch, state)
}

impl RedisLog {
    /// Connects lazily to `url` (`redis://host:port/db`): the node starts
    /// even while Redis is down, reports itself degraded, and keeps trying.
    /// Spawns the health probe, so it must run inside a Tokio runtime.
    pub(crate) fn new(url: &str, retention: Retention, max_topics: usize) -> Result<Self, String> {
        let client = Client::open(url).map_err(|e| format!("bad Redis URL {url:?}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            // A few quick tries per reconnect, so a command waiting on one
            // fails fast; the probe starts another every second.
            .set_number_of_retries(3)
            .set_min_delay(BACKOFF_MIN)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("cannot set up the Redis connection to {url}: {e}"))?;
        let shared = Arc::new(Shared {
            client,
            conn,
            topics: Mutex::new(HashMap::new()),
            retention,
            max_topics,
            health: Arc::new(Health::new()),
            corrupt: Arc::default(),
            append: Script::new(&format!("{PRELUDE}{APPEND}")),
            read: Script::new(&format!("{PRELUDE}{READ}")),
            stop: CancellationToken::new(),
        });
        tokio::spawn(probe(
            shared.conn.clone(),
            shared.health.clone(),
            shared.stop.clone(),
        ));
        Ok(RedisLog { shared })
    }

    pub(crate) async fn append(&self, name: &TopicName, data: &[u8]) -> Result<Appended, LogError> {
        let topic = name.as_str();
        let keys = Keys::new(topic);
        let time_us = unix_micros();
        let seen = lock(&self.shared.topics).get(topic).map(|t| t.head.head());
        let mut inv = self.shared.append.prepare_invoke();
        inv.key(&keys.meta)
            .key(&keys.log)
            .key(&keys.epochs)
            .key(TOPICS_KEY)
            .arg(topic)
            .arg(Epoch::random().to_string())
            .arg(self.shared.max_topics)
            .arg(self.shared.retention.max_events.max(1))
            .arg(time_us)
            .arg(data)
            .arg(seen.map(|h| h.epoch.to_string()).unwrap_or_default())
            .arg(seen.map_or(0, |h| h.seq));
        let mut conn = self.shared.conn.clone();
        let reply = self.command(inv.invoke_async::<Value>(&mut conn)).await?;
        let mut parts = reply_parts(reply, self.shared.max_topics)?.into_iter();
        let seq = parts.next().and_then(int).ok_or_else(bad_reply)?;
        let epoch = parts.next().and_then(epoch_of).ok_or_else(bad_reply)?;
        Ok(Appended { seq, epoch })
    }

    pub(crate) async fn read(
        &self,
        topic: &str,
        cursor: &Cursor,
        max: usize,
    ) -> Result<Batch, LogError> {
        let cursor = &continue_from_none(cursor);
        let local = self.local(topic);
        if let Some(t) = &local {
            t.touch();
            if let Some(batch) = t.read_window(cursor, max, &self.shared.retention) {
                return Ok(batch);
            }
        }
        let seen = local.as_ref().map(|t| t.head.head());
        let keys = local
            .as_ref()
            .map_or_else(|| Keys::new(topic), |t| t.keys.clone());
        let snap = self.snapshot(topic, &keys, cursor, max, None).await?;
        let t = match local {
            Some(t) => t,
            // Not open on this node: an unknown topic is answered and left
            // alone (reading creates nothing, here or in Redis); a known
            // one is opened, so that its next reads are local.
            None if snap.epoch == Epoch::NONE => return Ok(answer(snap, cursor, max).0),
            None => self.insert(topic, keys, &snap),
        };
        let local_epoch = seen.unwrap_or_else(|| t.head.head()).epoch;
        for entry in &snap.entries {
            if let Entry::Corrupt { seq, why } = entry {
                t.note_corrupt(snap.epoch, *seq, why);
            }
        }
        let (batch, mut state) = answer(snap, cursor, max);
        if t.absorb(
            state.epoch,
            state.events.make_contiguous(),
            &self.shared.retention,
        ) {
            t.publish_head();
        }
        if state.epoch != local_epoch {
            // Redis has an epoch this node's reader has not adopted yet.
            // Subscribers would see every read as news until it does, so
            // nudge it and give it a moment.
            t.resync.notify_one();
            let mut rx = t.head.subscribe();
            let adopted = rx.wait_for(|h| h.epoch == state.epoch);
            let _ = tokio::time::timeout(EPOCH_ADOPT_WAIT, adopted).await;
        }
        Ok(batch)
    }

    /// Subscribing opens the topic on this node (in [`Epoch::NONE`] when it
    /// does not exist yet) but creates nothing in Redis.
    pub(crate) async fn subscribe(&self, topic: &str) -> Result<Subscription, LogError> {
        loop {
            let t = self.open(topic).await?;
            t.touch();
            // Subscribe under the map lock, so an idle reader cannot retire
            // the topic between our lookup and our subscription.
            let topics = lock(&self.shared.topics);
            if topics.get(topic).is_some_and(|cur| Arc::ptr_eq(cur, &t)) {
                return Ok(Subscription::new(t.head.subscribe()));
            }
        }
    }

    /// Applies the retention age to this node's windows. Redis itself is
    /// trimmed by count only; reads skip entries past the age.
    pub(crate) fn expire(&self) {
        let topics: Vec<Arc<Topic>> = lock(&self.shared.topics).values().cloned().collect();
        for t in topics {
            lock(&t.state).expire(&self.shared.retention);
        }
    }

    /// (topics that exist and are open on this node, events in their
    /// windows). Topics opened only for subscribers waiting on a first
    /// publish are not counted: they hold nothing.
    pub(crate) fn stats(&self) -> (usize, usize) {
        let topics: Vec<Arc<Topic>> = lock(&self.shared.topics).values().cloned().collect();
        let born = topics.iter().filter(|t| !t.unborn()).count();
        let cached = topics.iter().map(|t| lock(&t.state).events.len()).sum();
        (born, cached)
    }

    /// Corrupt log entries found so far (each counted once per topic and
    /// epoch, up to [`CORRUPT_REMEMBERED`] per topic).
    pub(crate) fn corrupt_entries(&self) -> u64 {
        self.shared.corrupt.load(Ordering::Relaxed)
    }

    pub(crate) fn degraded(&self) -> Option<String> {
        self.shared.health.problem()
    }

    /// The topic, if it is open on this node.
    fn local(&self, name: &str) -> Option<Arc<Topic>> {
        lock(&self.shared.topics).get(name).cloned()
    }

    /// The local topic, opened (epoch and head read from Redis, reader
    /// started) on first use.
    async fn open(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        if let Some(t) = self.local(name) {
            return Ok(t);
        }
        let keys = Keys::new(name);
        let snap = self
            .snapshot(name, &keys, &Cursor::default(), 0, None)
            .await?;
        Ok(self.insert(name, keys, &snap))
    }

    /// Opens the topic at the head `snap` read, unless another task just
    /// did. Bounded by the topics that exist in Redis (`--max-topics`) plus
    /// those subscribers wait on, so no limit of its own.
    fn insert(&self, name: &str, keys: Keys, snap: &Snapshot) -> Arc<Topic> {
        let mut topics = lock(&self.shared.topics);
        if let Some(t) = topics.get(name) {
            return t.clone();
        }
        let head = head_signal::channel(Head {
            seq: snap.head,
            epoch: snap.epoch,
        });
        let t = Arc::new(Topic {
            name: name.to_owned(),
            keys,
            state: Mutex::new(TopicState {
                epoch: snap.epoch,
                events: Default::default(),
                head: snap.head,
            }),
            since: Mutex::new(snap.since.clone()),
            head,
            last_used: Mutex::new(Instant::now()),
            resync: Notify::new(),
            corrupt: self.shared.corrupt.clone(),
            corrupt_seen: Mutex::default(),
        });
        topics.insert(name.to_owned(), t.clone());
        tokio::spawn(follow(Arc::downgrade(&self.shared), t.clone()));
        t
    }

    /// Runs the read script: head, epoch and up to `max` entries after
    /// `cursor`. `seen` is this node's (epoch, head), for the rollback check.
    async fn snapshot(
        &self,
        topic: &str,
        keys: &Keys,
        cursor: &Cursor,
        max: usize,
        seen: Option<Head>,
    ) -> Result<Snapshot, LogError> {
        let cutoff = self.shared.retention.max_age.map_or(0, |age| {
            unix_micros().saturating_sub(duration_micros(age)).max(1)
        });
        let mut inv = self.shared.read.prepare_invoke();
        inv.key(&keys.meta)
            .key(&keys.log)
            .key(&keys.epochs)
            .key(TOPICS_KEY)
            .arg(topic)
            .arg(Epoch::random().to_string())
            .arg(self.shared.max_topics)
            .arg(cursor.after.map(|a| a.to_string()).unwrap_or_default())
            .arg(cursor.epoch.map(|e| e.to_string()).unwrap_or_default())
            // One event more than asked for costs little and lets a read
            // with max=0 still see where the retained window starts.
            .arg(if max == 0 && cursor.after.is_none() {
                0
            } else {
                max.max(1)
            })
            .arg(cutoff)
            .arg(seen.map(|h| h.epoch.to_string()).unwrap_or_default())
            .arg(seen.map_or(0, |h| h.seq));
        let mut conn = self.shared.conn.clone();
        let reply = self.command(inv.invoke_async::<Value>(&mut conn)).await?;
        parse_snapshot(reply, self.shared.max_topics)
    }

    /// Runs one command on the shared connection within [`COMMAND_TIMEOUT`],
    /// recording Redis's health from the outcome.
    async fn command<T>(
        &self,
        cmd: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, LogError> {
        let health = &self.shared.health;
        match tokio::time::timeout(COMMAND_TIMEOUT, cmd).await {
            Ok(Ok(v)) => {
                health.ok();
                Ok(v)
            }
            Ok(Err(e)) => {
                let why = format!("redis: {e}");
                health.failed(why.clone());
                Err(LogError::Unavailable(why))
            }
            Err(_) => {
                let why = format!("redis did not answer within {COMMAND_TIMEOUT:?}");
                health.failed(why.clone());
                Err(LogError::Unavailable(why))
            }
        }
    }
}

/// Pings Redis every [`PROBE_INTERVAL`] so `/healthz` is right even with no
/// traffic, and so the shared connection keeps reconnecting while Redis is
/// down.
async fn probe(mut conn: ConnectionManager, health: Arc<Health>, stop: CancellationToken) {
    loop {
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<Value>(&mut conn);
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(COMMAND_TIMEOUT, ping) => r,
        };
        match outcome {
            Ok(Ok(_)) => health.ok(),
            Ok(Err(e)) => health.failed(format!("redis: {e}")),
            Err(_) => health.failed(format!(
                "redis did not answer a PING within {COMMAND_TIMEOUT:?}"
            )),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
        }
    }
}

/// Why a reader's session with Redis ended.
enum Exit {
    /// Shutdown, or the topic retired for idleness: the task ends.
    Done,
    /// A read saw a newer epoch: reconnect at once and re-read it.
    Resync,
}

/// The reader task of one topic: follows the topic's stream in Redis into
/// the local window for as long as the topic is in use on this node,
/// reconnecting with backoff. It holds the log only weakly (upgrading per
/// step), so dropping the last `Log` handle stops it.
async fn follow(shared: Weak<Shared>, topic: Arc<Topic>) {
    let Some(stop) = shared.upgrade().map(|s| s.stop.clone()) else {
        return;
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let why = tokio::select! {
            _ = stop.cancelled() => return,
            r = session(&shared, &topic, &mut backoff) => r,
        };
        match why {
            Ok(Exit::Done) => return,
            Ok(Exit::Resync) => continue,
            Err(e) => {
                tracing::warn!(topic = %topic.name, error = %e, retry_in = ?backoff, "redis reader failed");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(jitter(backoff)) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One connection's worth of following: sync the epoch, then `XREAD BLOCK`
/// the log and the epochs stream until an error, a resync or idleness.
async fn session(
    weak: &Weak<Shared>,
    topic: &Topic,
    backoff: &mut Duration,
) -> Result<Exit, String> {
    let Some((client, health, retention)) = weak
        .upgrade()
        .map(|s| (s.client.clone(), s.health.clone(), s.retention))
    else {
        return Ok(Exit::Done);
    };
    let failed = |e: RedisError| {
        let why = format!("redis: {e}");
        health.failed(why.clone());
        why
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(BLOCK + COMMAND_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(failed)?;
    if !sync(weak, topic).await? {
        return Ok(Exit::Done);
    }
    *backoff = BACKOFF_MIN;
    loop {
        let (issued, from) = {
            let s = lock(&topic.state);
            (s.epoch, s.head)
        };
        // A topic that does not exist has no log to follow (a stream left
        // without `meta` is stale): only its epochs stream, which its
        // first publish writes to.
        let unborn = issued == Epoch::NONE;
        let from = (!unborn).then_some(from);
        let since = lock(&topic.since).clone();
        let reply = tokio::select! {
            r = xread(&mut conn, &topic.keys, from, &since) => {
                let reply = r.map_err(failed)?;
                health.ok();
                reply
            }
            _ = topic.resync.notified() => return Ok(Exit::Resync),
            // An unborn topic is closed as soon as its last subscriber
            // leaves (below), not after `IDLE`: it holds nothing.
            _ = topic.head.closed(), if unborn && topic.head.receiver_count() > 0 => Value::Nil,
        };
        let (entries, epochs) = parse_xread(reply, &topic.keys);
        if let Some((id, epoch)) = epochs.last() {
            *lock(&topic.since) = id.clone();
            if *epoch != Some(issued) {
                // The log was recreated: whatever this read returned may
                // belong to either epoch, so drop it and start over.
                if !sync(weak, topic).await? {
                    return Ok(Exit::Done);
                }
                continue;
            }
        }
        if follow_entries(topic, issued, entries, &retention) {
            topic.publish_head();
        }
        let Some(shared) = weak.upgrade() else {
            return Ok(Exit::Done);
        };
        if retire_if_idle(&shared, topic) {
            return Ok(Exit::Done);
        }
    }
}

/// Reads the topic's epoch and head from Redis and makes the window agree:
/// a different epoch (or a head that went backwards) empties it.
/// `false` when the log is gone (shutdown).
async fn sync(weak: &Weak<Shared>, topic: &Topic) -> Result<bool, String> {
    let Some(log) = weak.upgrade().map(|shared| RedisLog { shared }) else {
        return Ok(false);
    };
    let seen = topic.head.head();
    let snap = log
        .snapshot(&topic.name, &topic.keys, &Cursor::default(), 0, Some(seen))
        .await
        .map_err(|e| e.to_string())?;
    drop(log);
    {
        let mut s = lock(&topic.state);
        if s.epoch != snap.epoch || s.head > snap.head {
            if s.epoch != snap.epoch {
                tracing::info!(topic = %topic.name, old = %s.epoch, new = %snap.epoch, "new epoch in redis");
            }
            s.epoch = snap.epoch;
            s.events.clear();
            s.head = snap.head;
        }
    }
    *lock(&topic.since) = snap.since;
    topic.publish_head();
    Ok(true)
}

/// Appends what the reader got to the window. Entries from a read issued
/// in another epoch are dropped; a jump (the reader fell behind retention)
/// or a corrupt entry restarts the window after it, and older cursors go to
/// Redis, which reports the gap. Returns whether the head moved.
fn follow_entries(
    topic: &Topic,
    issued: Epoch,
    entries: Vec<Entry>,
    retention: &Retention,
) -> bool {
    let mut corrupt = Vec::new();
    let moved = {
        let mut s = lock(&topic.state);
        if s.epoch != issued {
            return false;
        }
        let before = s.head;
        for entry in entries {
            let seq = entry.seq();
            if seq <= s.head {
                continue;
            }
            match entry {
                Entry::Event(e) => {
                    if seq != s.head + 1 {
                        s.events.clear();
                        s.head = seq - 1;
                    }
                    s.push(e, retention);
                }
                Entry::Corrupt { seq, why } => {
                    // Step over it, or the next XREAD would return it again
                    // at once, for ever.
                    s.events.clear();
                    s.head = seq;
                    corrupt.push((seq, why));
                }
            }
        }
        s.head != before
    };
    for (seq, why) in corrupt {
        topic.note_corrupt(issued, seq, &why);
    }
    moved
}

/// Removes a topic nobody subscribes to and nobody read for [`IDLE`], or
/// at once when it does not exist in Redis.
fn retire_if_idle(shared: &Shared, topic: &Topic) -> bool {
    let mut topics = lock(&shared.topics);
    let idle = topic.head.receiver_count() == 0
        && (topic.unborn() || lock(&topic.last_used).elapsed() >= IDLE);
    if idle {
        topics.remove(&topic.name);
        tracing::debug!(topic = %topic.name, "redis reader retired: topic idle");
    }
    idle
}

/// `XREAD COUNT … BLOCK … STREAMS log epochs <head>-0 <since>`, or only
/// the epochs stream without `from`.
async fn xread(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    from: Option<u64>,
    since: &str,
) -> Result<Value, RedisError> {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT")
        .arg(READ_COUNT)
        .arg("BLOCK")
        .arg(BLOCK.as_millis() as u64)
        .arg("STREAMS");
    if from.is_some() {
        cmd.arg(&keys.log);
    }
    cmd.arg(&keys.epochs);
    if let Some(from) = from {
        cmd.arg(format!("{from}-0"));
    }
    cmd.arg(if since.is_empty() { "0-0" } else { since })
        .query_async(conn)
        .await
}

/// Reader backoff with ±50% jitter, so nodes do not reconnect in lockstep.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + rand::random::<f64>())
}

// ---- Reply parsing. Redis answers RESP2 arrays; anything unexpected is a
// ---- bug or an incompatible server, reported as unavailability.

fn bad_reply() -> LogError {
    LogError::Unavailable("unexpected reply from redis".into())
}

/// Splits `{'ok', …}` / `{'full'}` script replies.
fn reply_parts(reply: Value, max_topics: usize) -> Result<Vec<Value>, LogError> {
    let Value::Array(mut parts) = reply else {
        return Err(bad_reply());
    };
    if parts.is_empty() {
        return Err(bad_reply());
    }
    match text(parts.remove(0)).as_deref() {
        Some("ok") => Ok(parts),
        Some("full") => Err(LogError::TooManyTopics(max_topics)),
        _ => Err(bad_reply()),
    }
}

fn parse_snapshot(reply: Value, max_topics: usize) -> Result<Snapshot, LogError> {
    let mut parts = reply_parts(reply, max_topics)?.into_iter();
    let head = parts.next().and_then(int).ok_or_else(bad_reply)?;
    let epoch = parts.next().and_then(epoch_of).ok_or_else(bad_reply)?;
    let since = parts.next().and_then(text).unwrap_or_default();
    let entries = match parts.next() {
        Some(Value::Array(entries)) => entries.into_iter().filter_map(log_entry).collect(),
        _ => Vec::new(),
    };
    Ok(Snapshot {
        head,
        epoch,
        since,
        entries,
    })
}

/// Splits an `XREAD` reply into log entries and `(id, epoch)` entries.
fn parse_xread(reply: Value, keys: &Keys) -> (Vec<Entry>, Vec<(String, Option<Epoch>)>) {
    let mut events = Vec::new();
    let mut epochs = Vec::new();
    let Value::Array(streams) = reply else {
        return (events, epochs); // Nil: the block timed out.
    };
    for stream in streams {
        let Value::Array(mut kv) = stream else {
            continue;
        };
        if kv.len() != 2 {
            continue;
        }
        let entries = kv.pop();
        let key = kv.pop().and_then(text).unwrap_or_default();
        let Some(Value::Array(entries)) = entries else {
            continue;
        };
        if key == keys.log {
            events.extend(entries.into_iter().filter_map(log_entry));
        } else if key == keys.epochs {
            epochs.extend(entries.into_iter().filter_map(epoch_entry));
        }
    }
    (events, epochs)
}

/// A log entry `[<seq>-0, [t, <µs>, e, <json>]]`: an event, or corrupt.
/// `None` only when its ID names no seq.
fn log_entry(entry: Value) -> Option<Entry> {
    let (id, fields) = entry_parts(entry)?;
    let (seq, minor) = id.split_once('-')?;
    let seq: u64 = seq.parse().ok()?;
    let corrupt = |why: &str| {
        Some(Entry::Corrupt {
            seq,
            why: why.to_owned(),
        })
    };
    if minor != "0" {
        return corrupt("the entry ID is not <seq>-0");
    }
    let mut time_us = None;
    let mut json = None;
    let mut it = fields.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match text(k).as_deref() {
            Some("t") => time_us = int(v),
            Some("e") => json = bytes(v),
            _ => {}
        }
    }
    let (Some(time_us), Some(json)) = (time_us, json) else {
        return corrupt("the entry has no time (t) or no event (e)");
    };
    match Event::decode(seq, time_us, json) {
        Ok(event) => Some(Entry::Event(event)),
        Err(e) => corrupt(&e.to_string()),
    }
}

/// An epochs entry `[<id>, [epoch, <hex>]]`.
fn epoch_entry(entry: Value) -> Option<(String, Option<Epoch>)> {
    let (id, fields) = entry_parts(entry)?;
    let epoch = fields.into_iter().nth(1).and_then(epoch_of);
    Some((id, epoch))
}

fn entry_parts(entry: Value) -> Option<(String, Vec<Value>)> {
    let Value::Array(mut parts) = entry else {
        return None;
    };
    let fields = match parts.pop()? {
        Value::Array(f) => f,
        _ => return None,
    };
    let id = text(parts.pop()?)?;
    Some((id, fields))
}

fn bytes(v: Value) -> Option<Bytes> {
    match v {
        Value::BulkString(b) => Some(Bytes::from(b)),
        Value::SimpleString(s) => Some(Bytes::from(s)),
        _ => None,
    }
}

fn text(v: Value) -> Option<String> {
    String::from_utf8(bytes(v)?.into()).ok()
}

fn int(v: Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(i).ok(),
        other => text(other)?.parse().ok(),
    }
}

fn epoch_of(v: Value) -> Option<Epoch> {
    text(v)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot at `head` holding `entries`: a seq alone is an event, a
    /// negative one is that seq corrupt.
    fn snap(head: u64, entries: &[i64]) -> Snapshot {
        Snapshot {
            head,
            epoch: Epoch(7),
            since: String::new(),
            entries: entries
                .iter()
                .map(|&s| match s {
                    s if s > 0 => Entry::Event(Event::build(
                        &TopicName::new("t").unwrap(),
                        s as u64,
                        1,
                        b"1",
                    )),
                    s => Entry::Corrupt {
                        seq: s.unsigned_abs(),
                        why: "test".into(),
                    },
                })
                .collect(),
        }
    }

    fn read(s: Snapshot, after: Option<u64>, max: usize) -> (Vec<u64>, Option<Gap>, u64) {
        let cursor = Cursor {
            after,
            epoch: Some(Epoch(7)),
        };
        let (b, _) = answer(s, &cursor, max);
        (b.events.iter().map(|e| e.seq).collect(), b.gap, b.next)
    }

    fn gap(missed: u64, resume_seq: u64) -> Option<Gap> {
        Some(Gap { missed, resume_seq })
    }

    #[test]
    fn events_stop_at_a_hole_and_the_hole_is_a_gap_next_time() {
        // 1, 2, then 3 corrupt: the batch ends at 2…
        assert_eq!(
            read(snap(5, &[1, 2, -3, 4, 5]), Some(0), 10),
            (vec![1, 2], None, 2)
        );
        // …and the next read is told of 3 and goes on.
        assert_eq!(
            read(snap(5, &[-3, 4, 5]), Some(2), 10),
            (vec![4, 5], gap(1, 4), 5)
        );
        // A missing entry after a corrupt one is the same gap.
        assert_eq!(
            read(snap(6, &[-3, 5, 6]), Some(2), 10),
            (vec![5, 6], gap(2, 5), 6)
        );
    }

    #[test]
    fn a_corrupt_oldest_entry_is_a_gap_even_from_the_start() {
        assert_eq!(
            read(snap(3, &[-1, 2, 3]), Some(0), 10),
            (vec![2, 3], gap(1, 2), 3)
        );
        // Another epoch's cursor: a reset from the oldest, and the gap.
        let (b, _) = answer(snap(3, &[-1, 2, 3]), &Cursor::at(9, Epoch(8)), 10);
        assert!(b.reset.is_some());
        assert_eq!(b.gap, gap(1, 2));
    }

    #[test]
    fn only_corrupt_entries_move_the_cursor_past_them_not_to_the_head() {
        // The read returned only the corrupt 3 (max 1) though the head is 5:
        // the cursor moves to 3, not 5, so 4 and 5 are read next time.
        assert_eq!(read(snap(5, &[-3]), Some(2), 1), (vec![], gap(1, 4), 3));
        assert_eq!(read(snap(4, &[-3, -4]), Some(2), 2), (vec![], gap(2, 5), 4));
    }

    #[test]
    fn from_now_ignores_corrupt_entries() {
        assert_eq!(read(snap(3, &[-1, 2, 3]), None, 10), (vec![], None, 3));
    }

    #[test]
    fn a_cursor_at_zero_of_no_epoch_continues_into_the_first() {
        let c = continue_from_none(&Cursor::at(0, Epoch::NONE));
        assert_eq!(c.epoch, None);
        assert_eq!(c.after, Some(0));
        // Past 0 it is a cursor of another epoch: a reset, as always.
        let c = Cursor::at(3, Epoch::NONE);
        assert_eq!(continue_from_none(&c), c);
    }
}
