//! The node's subscriber connections: a fixed number per Redis shard
//! (`--redis-readers`), over which the channel of every topic in use on
//! this node is subscribed — however many topics there are.
//!
//! Each append announces its event on the topic's channel (see the append
//! script), so a node follows a topic without reading it: a message that
//! continues the window is applied as it arrives, in the connection's own
//! task. Pub/sub drops nothing while the connection lives (Redis closes a
//! subscriber that falls too far behind), and each message carries its
//! seq, so whatever does not continue the window, and everything after a
//! (re)connect, is caught up by a resync: a read from the window's head.
//!
//! One task per connection owns it and is the only one that subscribes or
//! unsubscribes on it: topics opening and closing tell it what they want
//! ([`Reader::want`], [`Reader::unwant`]) and it converges, so a subscribe
//! never overtakes the unsubscribe before it. Subscribing to one more topic
//! is one `SUBSCRIBE` on a connection that is already open: it does not
//! wait for anything else.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, ProtocolVersion, PushInfo};
use redis::{PushKind, RedisError, Value};
use tokio::sync::Notify;

use super::Shared;
use super::conn::{BACKOFF_MIN, COMMAND_TIMEOUT, CONNECT_TIMEOUT};
use super::topic::Topic;
use crate::log::memory::lock;

/// Reconnect backoff is capped here.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A silent connection is pinged this often, so a dead peer (a killed
/// master, a partition) is noticed even when nothing is published.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Most channels in one `SUBSCRIBE` (or subscribe commands in flight).
const BATCH: usize = 256;

/// Which reader connection: the shard (the master's `host:port` on a
/// cluster; empty for a single Redis, and on a cluster while a topic's
/// master is not known yet) and the connection's index in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReaderKey {
    pub(super) shard: Arc<str>,
    pub(super) index: usize,
}

impl ReaderKey {
    /// A reader of the one Redis.
    pub(super) fn single(index: usize) -> Self {
        ReaderKey {
            shard: Arc::from(""),
            index,
        }
    }
}

/// One subscriber connection's wishes; its task does the rest.
pub(super) struct Reader {
    pub(super) key: ReaderKey,
    /// channel → the topic that wants it subscribed here.
    wanted: Mutex<HashMap<String, Arc<Topic>>>,
    /// Channels whose wish changed since the task last looked.
    changes: Mutex<Vec<String>>,
    /// Channels the server unsubscribed us from (a slot moved away).
    dropped: Mutex<Vec<String>>,
    wake: Notify,
}

impl Reader {
    pub(super) fn new(key: ReaderKey) -> Self {
        Reader {
            key,
            wanted: Mutex::default(),
            changes: Mutex::default(),
            dropped: Mutex::default(),
            wake: Notify::new(),
        }
    }

    /// Asks for `topic`'s channel to be subscribed here; the topic is
    /// resynced once it is (which makes a new topic ready).
    pub(super) fn want(&self, topic: &Arc<Topic>) {
        let channel = topic.keys.channel.clone();
        lock(&self.wanted).insert(channel.clone(), topic.clone());
        self.changed(channel);
    }

    /// Withdraws `topic`'s wish (not a newer topic's of the same name).
    pub(super) fn unwant(&self, topic: &Arc<Topic>) {
        let channel = &topic.keys.channel;
        {
            let mut wanted = lock(&self.wanted);
            if !wanted.get(channel).is_some_and(|t| Arc::ptr_eq(t, topic)) {
                return;
            }
            wanted.remove(channel);
        }
        self.changed(channel.clone());
    }

    /// Wakes the task to look at its wishes (and whether it is still
    /// needed).
    pub(super) fn nudge(&self) {
        self.wake.notify_one();
    }

    pub(super) fn is_idle(&self) -> bool {
        lock(&self.wanted).is_empty()
    }

    fn changed(&self, channel: String) {
        lock(&self.changes).push(channel);
        self.wake.notify_one();
    }
}

/// Runs a reader until the log stops, or its shard is no longer a master
/// and nothing wants it. Reconnects with backoff (±50% jitter, so nodes do
/// not reconnect in lockstep).
pub(super) async fn run(weak: Weak<Shared>, reader: Arc<Reader>) {
    let Some(stop) = weak.upgrade().map(|s| s.stop.clone()) else {
        return;
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            r = session(&weak, &reader, &mut backoff) => r,
        };
        let Some(shared) = weak.upgrade() else {
            return;
        };
        if let Err(e) = outcome {
            tracing::warn!(shard = %reader.key.shard, index = reader.key.index, error = %e, retry_in = ?backoff, "redis reader failed");
            shared.commands.health.failed(e);
        }
        // A master that fails may have been replaced: read the slot map
        // again (a single Redis ignores this).
        shared.topology_stale.notify_one();
        if shared.retire_reader(&reader) {
            return;
        }
        drop(shared);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(jitter(backoff)) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's worth of following: connect, subscribe everything
/// wanted (and resync it: messages may have been missed while not
/// subscribed), then follow the wishes until the connection fails.
/// `Ok` when the reader's shard is gone and it has nothing to do.
async fn session(
    weak: &Weak<Shared>,
    reader: &Arc<Reader>,
    backoff: &mut Duration,
) -> Result<(), String> {
    let Some(shared) = weak.upgrade() else {
        return Ok(());
    };
    if shared.shard_gone(&reader.key.shard) {
        return Ok(());
    }
    let url = shared.reader_url(&reader.key)?;
    let sharded = shared.commands.is_cluster();
    drop(shared);
    let lost = Arc::new(Notify::new());
    let mut conn = connect(&url, weak, reader, &lost).await?;
    let mut subscribed = HashSet::new();
    lock(&reader.changes).clear();
    lock(&reader.dropped).clear();
    let all: Vec<String> = lock(&reader.wanted).keys().cloned().collect();
    subscribe(&mut conn, sharded, &all).await?;
    for channel in all {
        caught_up(weak, reader, &channel);
        subscribed.insert(channel);
    }
    *backoff = BACKOFF_MIN;
    loop {
        tokio::select! {
            _ = reader.wake.notified() => {}
            _ = lost.notified() => return Err("the subscriber connection closed".into()),
            _ = tokio::time::sleep(PING_INTERVAL) => {
                let cmd = redis::cmd("PING");
                let ping = cmd.query_async::<Value>(&mut conn);
                match tokio::time::timeout(COMMAND_TIMEOUT, ping).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(format!("redis: {e}")),
                    Err(_) => return Err(format!("redis did not answer a PING within {COMMAND_TIMEOUT:?}")),
                }
            }
        }
        converge(weak, reader, &mut conn, sharded, &mut subscribed).await?;
        let Some(shared) = weak.upgrade() else {
            return Ok(());
        };
        if shared.shard_gone(&reader.key.shard) && reader.is_idle() {
            return Ok(());
        }
    }
}

/// A RESP3 connection whose pushes (messages, and the library's notice of
/// a disconnect) are handled as they arrive, in the connection's task.
async fn connect(
    url: &str,
    weak: &Weak<Shared>,
    reader: &Arc<Reader>,
    lost: &Arc<Notify>,
) -> Result<MultiplexedConnection, String> {
    let info = url
        .into_connection_info()
        .map_err(|e| format!("bad Redis URL {url:?}: {e}"))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = Client::open(info.set_redis_settings(settings))
        .map_err(|e| format!("bad Redis URL {url:?}: {e}"))?;
    let on_push = {
        let (weak, reader, lost) = (weak.clone(), Arc::downgrade(reader), lost.clone());
        move |push: PushInfo| -> Result<(), std::convert::Infallible> {
            on_push(&weak, &reader, &lost, push);
            Ok(())
        }
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_push_sender(on_push);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("redis: {e}"))
}

fn on_push(weak: &Weak<Shared>, reader: &Weak<Reader>, lost: &Notify, push: PushInfo) {
    let mut data = push.data.into_iter();
    match push.kind {
        PushKind::Message | PushKind::SMessage => {
            let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
                (data.next(), data.next())
            else {
                return;
            };
            if let Some(shared) = weak.upgrade() {
                shared.on_message(&channel, payload);
            }
        }
        PushKind::SUnsubscribe => {
            if let (Some(reader), Some(Value::BulkString(channel))) =
                (reader.upgrade(), data.next())
                && let Ok(channel) = String::from_utf8(channel)
            {
                lock(&reader.dropped).push(channel);
                reader.wake.notify_one();
            }
        }
        PushKind::Disconnection => lost.notify_one(),
        _ => {}
    }
}

/// Subscribes and unsubscribes what changed, then resyncs what was
/// subscribed (a new topic becomes ready that way).
async fn converge(
    weak: &Weak<Shared>,
    reader: &Reader,
    conn: &mut MultiplexedConnection,
    sharded: bool,
    subscribed: &mut HashSet<String>,
) -> Result<(), String> {
    let mut changes = std::mem::take(&mut *lock(&reader.changes));
    for channel in std::mem::take(&mut *lock(&reader.dropped)) {
        // Our own unsubscribes are answered this way too; a channel we
        // still count as subscribed was dropped by the server: its slot
        // moved to another master.
        if subscribed.remove(&channel) {
            if let Some(shared) = weak.upgrade() {
                shared.topology_stale.notify_one();
            }
            changes.push(channel);
        }
    }
    changes.sort_unstable();
    changes.dedup();
    let (mut add, mut remove, mut again) = (Vec::new(), Vec::new(), Vec::new());
    {
        let wanted = lock(&reader.wanted);
        for channel in changes {
            match (wanted.contains_key(&channel), subscribed.contains(&channel)) {
                (true, false) => add.push(channel),
                // Wanted again by a newer topic of that name: it needs its
                // first sync.
                (true, true) => again.push(channel),
                (false, true) => remove.push(channel),
                (false, false) => {}
            }
        }
    }
    subscribe(conn, sharded, &add).await?;
    for channel in add.into_iter().chain(again) {
        caught_up(weak, reader, &channel);
        subscribed.insert(channel);
    }
    unsubscribe(conn, sharded, &remove).await?;
    for channel in &remove {
        subscribed.remove(channel);
    }
    Ok(())
}

/// The channel is subscribed: its topic reads what it may have missed.
fn caught_up(weak: &Weak<Shared>, reader: &Reader, channel: &str) {
    let topic = lock(&reader.wanted).get(channel).cloned();
    if let (Some(shared), Some(topic)) = (weak.upgrade(), topic) {
        shared.resync(&topic);
    }
}

/// `SUBSCRIBE` (a single Redis) or `SSUBSCRIBE` (a cluster: sharded
/// pub/sub, one channel per command, as each may be in another slot).
async fn subscribe(
    conn: &mut MultiplexedConnection,
    sharded: bool,
    channels: &[String],
) -> Result<(), String> {
    for batch in channels.chunks(BATCH) {
        let done = if sharded {
            each(conn, "SSUBSCRIBE", batch).await
        } else {
            conn.subscribe(batch).await
        };
        done.map_err(|e| format!("redis: subscribing: {e}"))?;
    }
    Ok(())
}

async fn unsubscribe(
    conn: &mut MultiplexedConnection,
    sharded: bool,
    channels: &[String],
) -> Result<(), String> {
    for batch in channels.chunks(BATCH) {
        let done = if sharded {
            each(conn, "SUNSUBSCRIBE", batch).await
        } else {
            conn.unsubscribe(batch).await
        };
        match done {
            Ok(()) => {}
            // A slot that moved away is answered MOVED: the server already
            // dropped those channels.
            Err(e) if sharded && !e.is_io_error() && !e.is_timeout() => {
                tracing::debug!(error = %e, "unsubscribing");
            }
            Err(e) => return Err(format!("redis: unsubscribing: {e}")),
        }
    }
    Ok(())
}

/// `command channel` for each channel, all in flight at once.
async fn each(
    conn: &MultiplexedConnection,
    command: &str,
    channels: &[String],
) -> Result<(), RedisError> {
    try_join_all(channels.iter().map(|channel| {
        let mut conn = conn.clone();
        let mut cmd = redis::cmd(command);
        cmd.arg(channel);
        async move { cmd.query_async::<Value>(&mut conn).await }
    }))
    .await
    .map(drop)
}

/// Backoff with ±50% jitter.
pub(super) fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + rand::random::<f64>())
}
