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
//! A missing `meta` (a flushed or restarted Redis without persistence) makes
//! the next script create a new epoch and drop any stale stream: clients
//! get a reset, never silently different data under the same cursor.
//!
//! Fan-in: each node runs one reader task per topic in use, blocked in
//! `XREAD` on a connection of its own (blocking commands would stall the
//! multiplexed connection publishes use). It feeds a bounded local window
//! (the in-memory backend's [`TopicState`]) and wakes local subscribers
//! through the topic's `watch`, so a thousand subscribers at the head cost
//! one Redis read per batch of events. Older cursors, `after=0`, other
//! epochs and cursors ahead of the local head are answered from Redis.
//!
//! While Redis is down, appends fail with [`LogError::Unavailable`] (HTTP
//! 503) and nothing is acknowledged that Redis did not take; subscribers
//! keep their connections and are served from the local window; readers
//! reconnect with backoff and catch up by seq.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError, Script, Value};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::memory::{TopicState, duration_micros, lock};
use super::{
    Appended, Batch, Cursor, Epoch, Event, Head, LogError, Retention, Subscription,
    Topic as TopicName, unix_micros,
};

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

/// Shared by both scripts. `open()` returns the topic's epoch, creating it
/// (and dropping any stale stream) when `meta` is missing, or `false` when
/// the topic is new and the topic limit is reached.
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
local function open()
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if epoch then return epoch end
  if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then
    if redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[3]) then return false end
    redis.call('SADD', KEYS[4], ARGV[1])
  end
  return create(ARGV[2])
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
/// The seq is taken, the entry added, and only then the head moved, so a
/// failed XADD (out of memory) leaves no hole. The event JSON is built here
/// because only here is the seq known; its format is `Event::build`'s, and
/// `tests/redis.rs` checks they agree byte for byte.
const APPEND: &str = r#"
local epoch = open()
if not epoch then return {'full'} end
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
/// (0: none): older entries are skipped, except the newest. ARGV[8]/[9]
/// are the epoch and head this node has seen, for the rollback check.
const READ: &str = r#"
local epoch = open()
if not epoch then return {'full'} end
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
      and tonumber(chunk[i][2][2]) < cutoff do
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
struct Topic {
    name: String,
    keys: Keys,
    /// Only the reader task changes `epoch`; reads and the reader both add
    /// events, always contiguous with what is there.
    state: Mutex<TopicState>,
    /// The epoch's entry in the `epochs` stream, where the reader resumes.
    since: Mutex<String>,
    head: watch::Sender<Head>,
    last_used: Mutex<Instant>,
    /// Asks the reader to re-read the epoch now (a read saw a newer one).
    resync: Notify,
}

impl Topic {
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
#[derive(Default)]
struct Health {
    problem: Mutex<Option<String>>,
}

impl Health {
    fn ok(&self) {
        if lock(&self.problem).take().is_some() {
            tracing::info!("redis reachable again");
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
    events: Vec<Event>,
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
            health: Arc::new(Health::default()),
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
        let seen = lock(&self.shared.topics)
            .get(topic)
            .map(|t| *t.head.borrow());
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
        Ok(Appended {
            seq,
            epoch,
            event: Event::build(name, seq, time_us, data),
        })
    }

    pub(crate) async fn read(
        &self,
        topic: &str,
        cursor: &Cursor,
        max: usize,
    ) -> Result<Batch, LogError> {
        let t = self.topic(topic).await?;
        t.touch();
        if let Some(batch) = t.read_window(cursor, max, &self.shared.retention) {
            return Ok(batch);
        }
        let local = *t.head.borrow();
        let snap = self.snapshot(&t.name, &t.keys, cursor, max, None).await?;
        let mut state = TopicState {
            epoch: snap.epoch,
            events: snap.events.into(),
            head: snap.head,
        };
        let batch = state.read(cursor, max);
        if t.absorb(
            state.epoch,
            state.events.make_contiguous(),
            &self.shared.retention,
        ) {
            t.publish_head();
        }
        if state.epoch != local.epoch {
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

    pub(crate) async fn subscribe(&self, topic: &str) -> Result<Subscription, LogError> {
        loop {
            let t = self.topic(topic).await?;
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

    pub(crate) fn stats(&self) -> (usize, usize) {
        let topics: Vec<Arc<Topic>> = lock(&self.shared.topics).values().cloned().collect();
        let cached = topics.iter().map(|t| lock(&t.state).events.len()).sum();
        (topics.len(), cached)
    }

    pub(crate) fn degraded(&self) -> Option<String> {
        self.shared.health.problem()
    }

    /// The local topic, opened (epoch and head read from Redis, reader
    /// started) on first use.
    async fn topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        if let Some(t) = lock(&self.shared.topics).get(name) {
            return Ok(t.clone());
        }
        let keys = Keys::new(name);
        let snap = self
            .snapshot(name, &keys, &Cursor::default(), 0, None)
            .await?;
        let mut topics = lock(&self.shared.topics);
        if let Some(t) = topics.get(name) {
            return Ok(t.clone());
        }
        if topics.len() >= self.shared.max_topics {
            return Err(LogError::TooManyTopics(self.shared.max_topics));
        }
        let (head, _) = watch::channel(Head {
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
            since: Mutex::new(snap.since),
            head,
            last_used: Mutex::new(Instant::now()),
            resync: Notify::new(),
        });
        topics.insert(name.to_owned(), t.clone());
        tokio::spawn(follow(Arc::downgrade(&self.shared), t.clone()));
        Ok(t)
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
        let since = lock(&topic.since).clone();
        let reply = tokio::select! {
            r = xread(&mut conn, &topic.keys, from, &since) => r.map_err(failed)?,
            _ = topic.resync.notified() => return Ok(Exit::Resync),
        };
        health.ok();
        let (events, epochs) = parse_xread(reply, &topic.keys);
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
        if follow_events(topic, issued, events, &retention) {
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
    let seen = *topic.head.borrow();
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

/// Appends what the reader got to the window. Events from a read issued in
/// another epoch are dropped; a jump (the reader fell behind retention)
/// restarts the window at the first event read, and older cursors go to
/// Redis, which reports the gap. Returns whether the head moved.
fn follow_events(topic: &Topic, issued: Epoch, events: Vec<Event>, retention: &Retention) -> bool {
    let mut s = lock(&topic.state);
    if s.epoch != issued {
        return false;
    }
    let before = s.head;
    for e in events {
        if e.seq <= s.head {
            continue;
        }
        if e.seq != s.head + 1 {
            s.events.clear();
            s.head = e.seq - 1;
        }
        s.push(e, retention);
    }
    s.head != before
}

/// Removes a topic nobody subscribes to and nobody read for [`IDLE`].
fn retire_if_idle(shared: &Shared, topic: &Topic) -> bool {
    let mut topics = lock(&shared.topics);
    let idle = topic.head.receiver_count() == 0 && lock(&topic.last_used).elapsed() >= IDLE;
    if idle {
        topics.remove(&topic.name);
        tracing::debug!(topic = %topic.name, "redis reader retired: topic idle");
    }
    idle
}

/// `XREAD COUNT … BLOCK … STREAMS log epochs <head>-0 <since>`.
async fn xread(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    from: u64,
    since: &str,
) -> Result<Value, RedisError> {
    redis::cmd("XREAD")
        .arg("COUNT")
        .arg(READ_COUNT)
        .arg("BLOCK")
        .arg(BLOCK.as_millis() as u64)
        .arg("STREAMS")
        .arg(&keys.log)
        .arg(&keys.epochs)
        .arg(format!("{from}-0"))
        .arg(if since.is_empty() { "0-0" } else { since })
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
    let events = match parts.next() {
        Some(Value::Array(entries)) => entries.into_iter().filter_map(entry_event).collect(),
        _ => Vec::new(),
    };
    Ok(Snapshot {
        head,
        epoch,
        since,
        events,
    })
}

/// Splits an `XREAD` reply into log events and `(id, epoch)` entries.
fn parse_xread(reply: Value, keys: &Keys) -> (Vec<Event>, Vec<(String, Option<Epoch>)>) {
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
            events.extend(entries.into_iter().filter_map(entry_event));
        } else if key == keys.epochs {
            epochs.extend(entries.into_iter().filter_map(epoch_entry));
        }
    }
    (events, epochs)
}

/// A log entry `[<seq>-0, [t, <µs>, e, <json>]]` as an event.
fn entry_event(entry: Value) -> Option<Event> {
    let (id, fields) = entry_parts(entry)?;
    let seq = id.split('-').next()?.parse().ok()?;
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
    match Event::decode(seq, time_us?, json?) {
        Ok(event) => Some(event),
        Err(e) => {
            // Never sent: a client must not get what this process did not
            // build or check (see `EventJson`).
            tracing::warn!(seq, error = %e, "skipping a corrupt log entry");
            None
        }
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
