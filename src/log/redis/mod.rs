//! The Redis Streams backend: several gateway nodes share one log, so a
//! cursor from any node is valid on every node (no sticky sessions). A
//! single Redis (`redis://…`) or a Redis Cluster (`redis+cluster://…`).
//!
//! Per topic `T`, Redis holds a stream of events and a hash of its epoch
//! and head, both in the slot of the `{T}` hash tag (see [`keys`]); appends
//! and reads are Lua scripts over those two keys (see [`scripts`]). Only
//! an append creates a topic (and counts it against `--max-topics`, in the
//! one global key, once): a topic without `meta` (never published to, or a
//! flushed Redis) reads as empty in [`Epoch::NONE`], and the next append
//! creates a new epoch and drops any stale stream. A Redis that lost
//! acknowledged writes (a promoted replica, an old snapshot) gets a new
//! epoch over what it has: clients are told to reset, never silently given
//! different data under the same cursor.
//!
//! Fan-in: every append also announces its event on the topic's channel.
//! Each node subscribes the channels of the topics in use on it over a few
//! connections per shard ([`readers`]), whatever the number of topics, and
//! feeds a bounded local window per topic (the in-memory backend's
//! `TopicState`, see [`topic`]) that wakes local subscribers through the
//! topic's head signal: a thousand subscribers at the head cost Redis
//! nothing more than one. Older cursors, `after=0`, other epochs and
//! cursors ahead of the local head are answered from Redis.
//!
//! While Redis is down, appends fail with [`LogError::Unavailable`] (HTTP
//! 503) and nothing is acknowledged that Redis did not take; subscribers
//! keep their connections and are served from the local window; readers
//! reconnect with backoff and catch up by seq.

mod cluster;
mod conn;
mod keys;
mod readers;
mod reply;
mod scripts;
mod topic;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::Value;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use self::cluster::{ClusterUrl, Topology};
use self::conn::{BACKOFF_MIN, COMMAND_TIMEOUT, Commands};
use self::keys::{Keys, TOPICS_KEY, topic_of_channel};
use self::readers::{Reader, ReaderKey, jitter};
use self::reply::{
    Entry, Snapshot, answer, bad_reply, continue_from_none, epoch_of, int, parse_snapshot,
    reply_parts,
};
use self::scripts::Scripts;
use self::topic::{Applied, Message, Topic};
use super::memory::{duration_micros, lock};
use super::{
    Appended, Batch, Cursor, Epoch, Head, LogError, Retention, Subscription, Topic as TopicName,
    unix_micros,
};

/// Most stream entries one resync reads.
const READ_COUNT: usize = 1_000;
/// A topic nobody subscribed to or read for this long is closed here.
const IDLE: Duration = Duration::from_secs(60);
/// A topic opened for subscribers of a topic that does not exist, which
/// none holds any more, is closed after this (at once when its last
/// subscriber leaves; this catches opens whose subscriber never came).
const UNBORN_GRACE: Duration = Duration::from_secs(5);
/// How often idle topics are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Interval of the health probe (a `PING`), which also drives reconnects of
/// the shared connection while Redis is down.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for a topic to be followed (its channel subscribed and its
/// window synced) before a subscriber is answered 503.
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a read that found a newer epoch in Redis waits for the local
/// window to adopt it, so that waiting subscribers do not spin meanwhile.
const EPOCH_ADOPT_WAIT: Duration = Duration::from_secs(1);
/// Most resyncs reading at once (after a reconnect every topic resyncs).
const RESYNCS_AT_ONCE: usize = 64;

/// The Redis backend's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// Subscriber connections per shard (per master on a cluster).
    pub readers: usize,
    /// Replicas that must confirm a publish (`WAIT`) before it is
    /// acknowledged; 0 acknowledges once the master has it.
    pub wait: usize,
    /// How long a publish waits for those replicas; then it answers 503.
    pub wait_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            readers: 1,
            wait: 0,
            wait_timeout: Duration::from_secs(1),
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
    /// Itself, for the tasks it spawns.
    me: Weak<Shared>,
    commands: Commands,
    /// Where reader connections go.
    target: Target,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    readers: Mutex<HashMap<ReaderKey, Arc<Reader>>>,
    /// Which master serves which slot (a cluster only).
    topology: Mutex<Topology>,
    /// Asks for the slot map to be read again.
    topology_stale: Arc<Notify>,
    options: RedisOptions,
    retention: Retention,
    max_topics: usize,
    /// Corrupt log entries found (see [`Entry::Corrupt`]), for the metrics.
    corrupt: Arc<AtomicU64>,
    scripts: Scripts,
    resyncs: Arc<Semaphore>,
    /// Cancelled when the last handle is dropped: stops every task.
    stop: CancellationToken,
}

/// Where this node's subscriber connections connect.
enum Target {
    Single(String),
    Cluster(ClusterUrl),
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RedisLog {
    /// Connects lazily to `url` (`redis://host:port/db`, or
    /// `redis+cluster://host:port,…`): the node starts even while Redis is
    /// down, reports itself degraded, and keeps trying. Spawns the health
    /// probe, so it must run inside a Tokio runtime.
    pub(crate) fn new(
        url: &str,
        retention: Retention,
        max_topics: usize,
        options: RedisOptions,
    ) -> Result<Self, String> {
        let (commands, target) = if url.starts_with(cluster::SCHEME) {
            let cluster = ClusterUrl::parse(url)?;
            let seeds: Vec<String> = cluster.seeds.iter().map(|s| cluster.node_url(s)).collect();
            (Commands::cluster(&seeds)?, Target::Cluster(cluster))
        } else {
            (Commands::single(url)?, Target::Single(url.to_owned()))
        };
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            commands,
            target,
            topics: Mutex::default(),
            readers: Mutex::default(),
            topology: Mutex::default(),
            topology_stale: Arc::new(Notify::new()),
            options: RedisOptions {
                readers: options.readers.max(1),
                ..options
            },
            retention,
            max_topics,
            corrupt: Arc::default(),
            scripts: Scripts::new(),
            resyncs: Arc::new(Semaphore::new(RESYNCS_AT_ONCE)),
            stop: CancellationToken::new(),
        });
        tokio::spawn(probe(Arc::downgrade(&shared)));
        tokio::spawn(sweep(Arc::downgrade(&shared)));
        if shared.commands.is_cluster() {
            tokio::spawn(cluster::follow_topology(Arc::downgrade(&shared)));
        }
        Ok(RedisLog { shared })
    }

    pub(crate) async fn append(&self, name: &TopicName, data: &[u8]) -> Result<Appended, LogError> {
        let topic = name.as_str();
        let shared = &self.shared;
        let keys = Keys::new(topic);
        let time = unix_micros().to_string();
        let seen = shared
            .local(topic)
            .filter(|t| t.is_ready())
            .map(|t| t.head.head());
        let (seen_epoch, seen_head) = match seen {
            Some(h) => (h.epoch.to_string(), h.seq.to_string()),
            None => (String::new(), "0".to_owned()),
        };
        let maxlen = shared.retention.max_events.max(1).to_string();
        let epoch = Epoch::random().to_string();
        let mut create = "0";
        loop {
            let args: [&[u8]; 10] = [
                topic.as_bytes(),
                epoch.as_bytes(),
                keys.channel.as_bytes(),
                shared.publish_command().as_bytes(),
                maxlen.as_bytes(),
                time.as_bytes(),
                data,
                seen_epoch.as_bytes(),
                seen_head.as_bytes(),
                create.as_bytes(),
            ];
            let (reply, confirmed) = shared.run_append(&keys, &args).await?;
            if is_absent(&reply) {
                if create == "1" {
                    return Err(bad_reply());
                }
                shared.register(topic).await?;
                create = "1";
                continue;
            }
            let mut parts = reply_parts(reply, shared.max_topics)?.into_iter();
            let seq = parts.next().and_then(int).ok_or_else(bad_reply)?;
            let epoch = parts.next().and_then(epoch_of).ok_or_else(bad_reply)?;
            let wait = shared.options.wait;
            if confirmed < wait as u64 {
                return Err(LogError::Unavailable(format!(
                    "redis: event {seq} of {topic} is on the master, but only {confirmed} of \
                     {wait} replicas confirmed it within {:?}; a failover now may lose it \
                     (publishing again may store it twice)",
                    shared.options.wait_timeout
                )));
            }
            return Ok(Appended { seq, epoch });
        }
    }

    pub(crate) async fn read(
        &self,
        topic: &str,
        cursor: &Cursor,
        max: usize,
    ) -> Result<Batch, LogError> {
        let cursor = &continue_from_none(cursor);
        let shared = &self.shared;
        let local = shared.local(topic);
        if let Some(t) = &local {
            t.touch();
            if let Some(batch) = t.read_window(cursor, max, &shared.retention) {
                return Ok(batch);
            }
        }
        let keys = local
            .as_ref()
            .map_or_else(|| Keys::new(topic), |t| t.keys.clone());
        let snap = shared.snapshot(&keys, cursor, max, None).await?;
        let Some(t) = local else {
            // Not open on this node: an unknown topic is answered and left
            // alone (reading creates nothing, here or in Redis); a known
            // one is opened, so that its next reads are local.
            if snap.epoch != Epoch::NONE {
                let log = self.clone();
                let name = topic.to_owned();
                tokio::spawn(async move { log.open(&name).await.map(drop) });
            }
            return Ok(answer(snap, cursor, max).0);
        };
        let local_epoch = t.head.head().epoch;
        for entry in &snap.entries {
            if let Entry::Corrupt { seq, why } = entry {
                t.note_corrupt(snap.epoch, *seq, why);
            }
        }
        let (batch, mut state) = answer(snap, cursor, max);
        if t.absorb(
            state.epoch,
            state.events.make_contiguous(),
            &shared.retention,
        ) {
            t.publish_head();
        }
        if t.is_ready() && state.epoch != local_epoch {
            // Redis has an epoch this node's window has not adopted yet.
            // Subscribers would see every read as news until it does, so
            // resync it and give it a moment.
            shared.resync(&t);
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
            // Subscribe under the map lock, so the sweep cannot close the
            // topic between our lookup and our subscription.
            let topics = lock(&self.shared.topics);
            if topics.get(topic).is_some_and(|cur| Arc::ptr_eq(cur, &t)) {
                let lease = Lease {
                    shared: self.shared.me.clone(),
                    topic: t.clone(),
                };
                return Ok(Subscription::leased(t.head.subscribe(), Arc::new(lease)));
            }
        }
    }

    /// Applies the retention age to this node's windows. Redis itself is
    /// trimmed by count only; reads skip entries past the age.
    pub(crate) fn expire(&self) {
        for t in self.shared.open_topics() {
            lock(&t.state).expire(&self.shared.retention);
        }
    }

    /// (topics that exist and are open on this node, events in their
    /// windows). Topics opened only for subscribers waiting on a first
    /// publish are not counted: they hold nothing.
    pub(crate) fn stats(&self) -> (usize, usize) {
        let topics = self.shared.open_topics();
        let born = topics.iter().filter(|t| !t.unborn()).count();
        let cached = topics.iter().map(|t| lock(&t.state).events.len()).sum();
        (born, cached)
    }

    /// Corrupt log entries found so far (each counted once per topic and
    /// epoch, up to a bound per topic).
    pub(crate) fn corrupt_entries(&self) -> u64 {
        self.shared.corrupt.load(Ordering::Relaxed)
    }

    pub(crate) fn degraded(&self) -> Option<String> {
        self.shared.commands.health.problem()
    }

    /// The local topic, opened on first use: its channel subscribed, then
    /// its epoch and head read from Redis.
    async fn open(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        let t = self.shared.local_or_insert(name);
        t.touch();
        match tokio::time::timeout(OPEN_TIMEOUT, t.wait_ready()).await {
            Ok(()) => Ok(t),
            Err(_) => Err(LogError::Unavailable(format!(
                "redis: could not follow topic {name} within {OPEN_TIMEOUT:?}: {}",
                self.degraded()
                    .unwrap_or_else(|| "its subscriber connection is not up".into())
            ))),
        }
    }
}

/// Held by a subscription: when the last subscriber of a topic that does
/// not exist in Redis leaves, the topic is closed on this node at once.
struct Lease {
    shared: Weak<Shared>,
    topic: Arc<Topic>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade()
            && self.topic.unborn()
        {
            shared.close(&self.topic);
        }
    }
}

/// Whether an append script answered that the topic does not exist.
fn is_absent(reply: &Value) -> bool {
    matches!(reply, Value::Array(parts)
        if matches!(parts.first(), Some(Value::BulkString(s)) if s.as_slice() == b"absent"))
}

impl Shared {
    /// The topic, if it is open on this node.
    fn local(&self, name: &str) -> Option<Arc<Topic>> {
        lock(&self.topics).get(name).cloned()
    }

    fn open_topics(&self) -> Vec<Arc<Topic>> {
        lock(&self.topics).values().cloned().collect()
    }

    /// The topic, or a new one (not ready yet) whose channel its reader is
    /// asked to subscribe. Bounded by the topics that exist in Redis
    /// (`--max-topics`) plus those subscribers wait on, so no limit of its
    /// own.
    fn local_or_insert(&self, name: &str) -> Arc<Topic> {
        let mut topics = lock(&self.topics);
        if let Some(t) = topics.get(name) {
            return t.clone();
        }
        let keys = Keys::new(name);
        let key = self.reader_key(keys.slot);
        let t = Arc::new(Topic::new(keys, key.clone(), self.corrupt.clone()));
        topics.insert(name.to_owned(), t.clone());
        self.reader(&key).want(&t);
        t
    }

    /// Closes the topic on this node, unless it has subscribers (or was
    /// replaced meanwhile).
    fn close(&self, t: &Arc<Topic>) -> bool {
        let mut topics = lock(&self.topics);
        let same = topics.get(&t.name).is_some_and(|cur| Arc::ptr_eq(cur, t));
        if !same || t.head.receiver_count() > 0 {
            return false;
        }
        topics.remove(&t.name);
        let key = lock(&t.reader).clone();
        if let Some(r) = lock(&self.readers).get(&key) {
            r.unwant(t);
        }
        tracing::debug!(topic = %t.name, "topic closed on this node");
        true
    }

    /// The reader connection for a topic in `slot`: one of
    /// `--redis-readers` per shard, the same for every topic in a slot.
    fn reader_key(&self, slot: u16) -> ReaderKey {
        let index = usize::from(slot) % self.options.readers;
        match self.target {
            Target::Single(_) => ReaderKey::single(index),
            Target::Cluster(_) => ReaderKey {
                shard: lock(&self.topology)
                    .master_of(slot)
                    .unwrap_or_else(|| Arc::from("")),
                index,
            },
        }
    }

    /// The reader for `key`, started on first use. Called with the topics
    /// map locked, like every change of what readers want, so that a
    /// reader cannot retire between being found and being asked.
    fn reader(&self, key: &ReaderKey) -> Arc<Reader> {
        let mut readers = lock(&self.readers);
        if let Some(r) = readers.get(key) {
            return r.clone();
        }
        let r = Arc::new(Reader::new(key.clone()));
        readers.insert(key.clone(), r.clone());
        tokio::spawn(readers::run(self.me.clone(), r.clone()));
        r
    }

    /// Removes a reader that nothing wants and whose shard is gone.
    fn retire_reader(&self, reader: &Arc<Reader>) -> bool {
        let _topics = lock(&self.topics);
        let mut readers = lock(&self.readers);
        let retire = reader.is_idle()
            && self.shard_gone(&reader.key.shard)
            && readers
                .get(&reader.key)
                .is_some_and(|r| Arc::ptr_eq(r, reader));
        if retire {
            readers.remove(&reader.key);
        }
        retire
    }

    /// Whether `shard` no longer serves any slot (a cluster only; the
    /// empty shard stands for "not known yet").
    fn shard_gone(&self, shard: &str) -> bool {
        match self.target {
            Target::Single(_) => false,
            Target::Cluster(_) => shard.is_empty() || !lock(&self.topology).has_master(shard),
        }
    }

    /// The URL a reader connects to.
    fn reader_url(&self, key: &ReaderKey) -> Result<String, String> {
        match &self.target {
            Target::Single(url) => Ok(url.clone()),
            Target::Cluster(_) if key.shard.is_empty() => {
                Err("the cluster's slot map is not known yet".into())
            }
            Target::Cluster(c) => Ok(c.node_url(&key.shard)),
        }
    }

    /// After the slot map changed: every topic whose slot has another
    /// master now is subscribed through that master's reader (and
    /// resynced there: messages may have been missed in between).
    fn rehome(&self) {
        let topics = lock(&self.topics);
        for t in topics.values() {
            let key = self.reader_key(t.keys.slot);
            let old = std::mem::replace(&mut *lock(&t.reader), key.clone());
            if old != key {
                if let Some(r) = lock(&self.readers).get(&old) {
                    r.unwant(t);
                }
                self.reader(&key).want(t);
            }
        }
        drop(topics);
        // Readers of masters that are gone retire once idle; wake them.
        for r in lock(&self.readers).values() {
            r.nudge();
        }
    }

    /// A message on a topic's channel: applied to the window when it
    /// continues it, else the window is resynced.
    fn on_message(&self, channel: &[u8], payload: Vec<u8>) {
        let Some(t) = topic_of_channel(channel).and_then(|name| self.local(name)) else {
            return;
        };
        let Some(message) = Message::parse(payload) else {
            return;
        };
        if t.apply(message, &self.retention) == Applied::Missed {
            self.resync(&t);
        }
    }

    /// Brings the topic's window up to Redis's head (and makes a new
    /// topic ready), in a task of its own unless one runs already.
    fn resync(&self, t: &Arc<Topic>) {
        if t.missed() {
            tokio::spawn(resync(self.me.clone(), t.clone()));
        }
    }

    /// `SPUBLISH` on a cluster (a shard channel stays on its shard),
    /// `PUBLISH` on a single Redis (any version ≥ 6.2).
    fn publish_command(&self) -> &'static str {
        match self.target {
            Target::Single(_) => "PUBLISH",
            Target::Cluster(_) => "SPUBLISH",
        }
    }

    /// Runs the append script, followed by `WAIT` when `--redis-wait` asks
    /// for replicas: its reply, and how many replicas confirmed it.
    async fn run_append(&self, keys: &Keys, args: &[&[u8]]) -> Result<(Value, u64), LogError> {
        let lua = &self.scripts.append;
        let key_names = [keys.meta.as_str(), keys.log.as_str()];
        match self.options.wait {
            0 => Ok((self.commands.script(lua, &key_names, args).await?, 0)),
            n => {
                self.commands
                    .script_and_wait(lua, &key_names, args, n, self.options.wait_timeout)
                    .await
            }
        }
    }

    /// Counts a topic about to be created against `--max-topics`.
    async fn register(&self, topic: &str) -> Result<(), LogError> {
        let limit = self.max_topics.to_string();
        let reply = self
            .commands
            .script(
                &self.scripts.register,
                &[TOPICS_KEY],
                &[topic.as_bytes(), limit.as_bytes()],
            )
            .await?;
        match reply {
            Value::Int(1) => Ok(()),
            Value::Int(0) => Err(LogError::TooManyTopics(self.max_topics)),
            _ => Err(bad_reply()),
        }
    }

    /// Runs the read script: head, epoch and up to `max` entries after
    /// `cursor`. `seen` is this node's (epoch, head), for the checks that
    /// start a new epoch when Redis lost what this node saw.
    async fn snapshot(
        &self,
        keys: &Keys,
        cursor: &Cursor,
        max: usize,
        seen: Option<Head>,
    ) -> Result<Snapshot, LogError> {
        let cutoff = self.retention.max_age.map_or(0, |age| {
            unix_micros().saturating_sub(duration_micros(age)).max(1)
        });
        let topic = &keys.topic;
        let epoch = Epoch::random().to_string();
        let after = cursor.after.map(|a| a.to_string()).unwrap_or_default();
        let cursor_epoch = cursor.epoch.map(|e| e.to_string()).unwrap_or_default();
        // One event more than asked for costs little and lets a read with
        // max=0 still see where the retained window starts.
        let count = if max == 0 && cursor.after.is_none() {
            0
        } else {
            max.max(1)
        }
        .to_string();
        let cutoff = cutoff.to_string();
        let (seen_epoch, seen_head) = match seen {
            Some(h) => (h.epoch.to_string(), h.seq.to_string()),
            None => (String::new(), "0".to_owned()),
        };
        let args: [&[u8]; 10] = [
            topic.as_bytes(),
            epoch.as_bytes(),
            keys.channel.as_bytes(),
            self.publish_command().as_bytes(),
            after.as_bytes(),
            cursor_epoch.as_bytes(),
            count.as_bytes(),
            cutoff.as_bytes(),
            seen_epoch.as_bytes(),
            seen_head.as_bytes(),
        ];
        let reply = self
            .commands
            .script(
                &self.scripts.read,
                &[keys.meta.as_str(), keys.log.as_str()],
                &args,
            )
            .await?;
        parse_snapshot(reply, self.max_topics)
    }
}

/// Brings a topic's window up to Redis: reads from the window's head (a
/// topic not synced yet: its epoch and head only) and applies it, until no
/// message was missed since the last read began. Retries with backoff
/// while Redis is unavailable; gives up when the topic is closed.
async fn resync(weak: Weak<Shared>, t: Arc<Topic>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(shared) = weak.upgrade() else {
            t.resync_abandoned();
            return;
        };
        let open = shared
            .local(&t.name)
            .is_some_and(|cur| Arc::ptr_eq(&cur, &t));
        if shared.stop.is_cancelled() || !open {
            t.resync_abandoned();
            return;
        }
        let Ok(_permit) = shared.resyncs.clone().acquire_owned().await else {
            t.resync_abandoned();
            return;
        };
        let misses = t.resync_begins();
        let (began, head) = {
            let s = lock(&t.state);
            (s.epoch, s.head)
        };
        let synced = t.is_ready() && began != Epoch::NONE;
        let (cursor, max, seen) = if synced {
            let seen = Head {
                seq: head,
                epoch: began,
            };
            (Cursor::at(head, began), READ_COUNT, Some(seen))
        } else {
            (Cursor::default(), 0, None)
        };
        let read = shared.snapshot(&t.keys, &cursor, max, seen).await;
        let retention = shared.retention;
        let stop = shared.stop.clone();
        drop(shared);
        match read {
            Ok(snap) => {
                let caught_up =
                    t.apply_resync(began, snap.epoch, snap.head, snap.entries, &retention);
                if t.resync_ends(misses, caught_up) {
                    return;
                }
                backoff = BACKOFF_MIN;
            }
            Err(e) => {
                tracing::debug!(topic = %t.name, error = %e, "resync failed; retrying");
                tokio::select! {
                    _ = stop.cancelled() => {
                        t.resync_abandoned();
                        return;
                    }
                    _ = tokio::time::sleep(jitter(backoff)) => {}
                }
                backoff = (backoff * 2).min(COMMAND_TIMEOUT);
            }
        }
    }
}

/// Closes topics nobody subscribes to that nobody read for [`IDLE`] (or,
/// not existing in Redis, for [`UNBORN_GRACE`]).
async fn sweep(weak: Weak<Shared>) {
    let Some(stop) = weak.upgrade().map(|s| s.stop.clone()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        let Some(shared) = weak.upgrade() else {
            return;
        };
        for t in shared.open_topics() {
            let limit = if t.unborn() { UNBORN_GRACE } else { IDLE };
            if t.head.receiver_count() == 0 && t.idle_for() >= limit {
                shared.close(&t);
            }
        }
    }
}

/// Pings Redis every [`PROBE_INTERVAL`] so `/healthz` is right even with no
/// traffic, and so the shared connection keeps reconnecting while Redis is
/// down.
async fn probe(weak: Weak<Shared>) {
    let Some(stop) = weak.upgrade().map(|s| s.stop.clone()) else {
        return;
    };
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let ping = async {
            let _ = shared.commands.query(&redis::cmd("PING")).await;
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ping => {}
        }
        drop(shared);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
        }
    }
}
