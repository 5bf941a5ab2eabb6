//! One topic as a node holds it: a bounded local window of the log in
//! Redis (the memory backend's [`TopicState`]), the head its subscribers
//! wait on, and whether the window is known to match Redis.
//!
//! The window is fed from three sides, each only where it continues what
//! is there: the topic's channel (every append is announced with its
//! event), resyncs (reads from the window's head, after a missed message
//! or a reconnect), and reads that went to Redis (older events, in front).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::keys::Keys;
use super::readers::ReaderKey;
use super::reply::Entry;
use crate::log::HeadSender;
use crate::log::memory::{TopicState, lock};
use crate::log::{Batch, Cursor, Epoch, Event, Head, Retention};
use crate::sync::head_signal;

/// Most corrupt entries remembered per topic (so each is counted and
/// logged once); past it, further ones are counted each time they are read.
const CORRUPT_REMEMBERED: usize = 1024;

/// One topic on this node.
///
/// A topic that does not exist in Redis (no publish yet) is opened only
/// for subscribers, in [`Epoch::NONE`]; it is closed as soon as the last
/// one leaves, and counts against no limit.
pub(super) struct Topic {
    pub(super) name: String,
    pub(super) keys: Keys,
    /// Reads and messages add events, always contiguous with what is there.
    pub(super) state: Mutex<TopicState>,
    pub(super) head: HeadSender,
    last_used: Mutex<Instant>,
    sync: Mutex<SyncState>,
    /// Told when the window first matches Redis.
    ready: Notify,
    /// The reader connection the topic's channel is subscribed on.
    pub(super) reader: Mutex<ReaderKey>,
    /// The log's count of corrupt entries, shared by every topic.
    corrupt: Arc<AtomicU64>,
    /// The corrupt entries of this topic already counted.
    corrupt_seen: Mutex<CorruptSeen>,
}

/// Where the window stands against Redis.
#[derive(Default)]
struct SyncState {
    /// The window has been synced with Redis once (until then it answers
    /// nothing and messages only ask for a resync).
    ready: bool,
    /// A resync task runs.
    running: bool,
    /// Bumped by every message that could not be applied: a resync that
    /// started before the last bump must read again.
    misses: u64,
}

/// The seqs of one epoch's corrupt entries that were counted and logged.
#[derive(Default)]
struct CorruptSeen {
    epoch: Option<Epoch>,
    seqs: HashSet<u64>,
}

/// What a topic's channel says (see the append script).
#[derive(Debug, PartialEq)]
pub(super) enum Message {
    /// `EPOCH HEAD`: the log now is `epoch`, at `head` (new or reborn).
    Epoch { epoch: Epoch, head: u64 },
    /// `EPOCH SEQ TIME JSON`: an appended event.
    Event {
        epoch: Epoch,
        seq: u64,
        time_us: u64,
        json: Bytes,
    },
}

impl Message {
    /// `None` for anything else on the channel (ignored: the seqs of the
    /// next event tell whether something was missed).
    pub(super) fn parse(payload: Vec<u8>) -> Option<Message> {
        let mut fields = payload.splitn(4, |&b| b == b' ');
        fn word(f: Option<&[u8]>) -> Option<&str> {
            std::str::from_utf8(f?).ok()
        }
        let epoch: Epoch = word(fields.next())?.parse().ok()?;
        let seq: u64 = word(fields.next())?.parse().ok()?;
        let Some(time) = word(fields.next()) else {
            return Some(Message::Epoch { epoch, head: seq });
        };
        let time_us = time.parse().ok()?;
        let start = payload.len() - fields.next()?.len();
        let mut json = Bytes::from(payload);
        Some(Message::Event {
            epoch,
            seq,
            time_us,
            json: json.split_off(start),
        })
    }
}

/// What applying a message did.
#[derive(Debug, PartialEq)]
pub(super) enum Applied {
    /// Applied, or nothing new.
    Done,
    /// It does not continue the window (a missed message, another epoch,
    /// or the window is not synced yet): the window needs a resync.
    Missed,
}

impl Topic {
    pub(super) fn new(keys: Keys, reader: ReaderKey, corrupt: Arc<AtomicU64>) -> Self {
        Topic {
            name: keys.topic.clone(),
            keys,
            state: Mutex::new(TopicState::new(Epoch::NONE)),
            head: head_signal::channel(Head {
                seq: 0,
                epoch: Epoch::NONE,
            }),
            last_used: Mutex::new(Instant::now()),
            sync: Mutex::default(),
            ready: Notify::new(),
            reader: Mutex::new(reader),
            corrupt,
            corrupt_seen: Mutex::default(),
        }
    }

    /// Whether the topic does not exist in Redis (as last seen here).
    pub(super) fn unborn(&self) -> bool {
        lock(&self.state).epoch == Epoch::NONE
    }

    pub(super) fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    pub(super) fn idle_for(&self) -> std::time::Duration {
        lock(&self.last_used).elapsed()
    }

    pub(super) fn is_ready(&self) -> bool {
        lock(&self.sync).ready
    }

    /// Resolves once the window has been synced with Redis.
    pub(super) async fn wait_ready(&self) {
        loop {
            let notified = self.ready.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.is_ready() {
                return;
            }
            notified.await;
        }
    }

    /// Notes that the window may lag Redis. Returns whether the caller
    /// must start a resync task (none runs yet); one that runs reads again.
    pub(super) fn missed(&self) -> bool {
        let mut s = lock(&self.sync);
        s.misses += 1;
        !std::mem::replace(&mut s.running, true)
    }

    /// A resync task is about to read: the misses it will cover.
    pub(super) fn resync_begins(&self) -> u64 {
        lock(&self.sync).misses
    }

    /// A resync task read and applied what Redis had when it began at
    /// `misses`. Returns whether it is done (nothing was missed since, and
    /// the window caught up); otherwise it reads again.
    pub(super) fn resync_ends(&self, misses: u64, caught_up: bool) -> bool {
        let mut s = lock(&self.sync);
        let first = !s.ready;
        s.ready = true;
        let done = caught_up && s.misses == misses;
        if done {
            s.running = false;
        }
        drop(s);
        if first {
            self.ready.notify_waiters();
        }
        done
    }

    /// The resync task gives up (the topic was closed, or the log stopped).
    pub(super) fn resync_abandoned(&self) {
        lock(&self.sync).running = false;
    }

    /// Applies a message from the topic's channel where it continues the
    /// window.
    pub(super) fn apply(&self, message: Message, retention: &Retention) -> Applied {
        if !self.is_ready() {
            return Applied::Missed;
        }
        let mut corrupt = None;
        {
            let mut s = lock(&self.state);
            match message {
                Message::Epoch { epoch, head } => {
                    if epoch == s.epoch {
                        return Applied::Done;
                    }
                    // Announced at the moment the epoch began: the window
                    // starts there, empty (older events are read from Redis).
                    tracing::info!(topic = %self.name, old = %s.epoch, new = %epoch, "new epoch in redis");
                    s.epoch = epoch;
                    s.events.clear();
                    s.head = head;
                }
                Message::Event {
                    epoch,
                    seq,
                    time_us,
                    json,
                } => {
                    let next = s.head.saturating_add(1);
                    if epoch != s.epoch || seq > next {
                        return Applied::Missed;
                    }
                    if seq <= s.head {
                        return Applied::Done;
                    }
                    match Event::decode(seq, time_us, json) {
                        Ok(e) => s.push(e, retention),
                        Err(e) => {
                            s.events.clear();
                            s.head = seq;
                            corrupt = Some((epoch, seq, e.to_string()));
                        }
                    }
                }
            }
        }
        if let Some((epoch, seq, why)) = corrupt {
            self.note_corrupt(epoch, seq, &why);
        }
        self.publish_head();
        Applied::Done
    }

    /// Makes the window agree with what a resync read: `snap_epoch` at
    /// `snap_head` with `entries` after the window's head (or from the
    /// oldest retained, in another epoch). `began` is the window's epoch
    /// when the read was sent: if a message changed it meanwhile, the read
    /// may be older than the window and is not applied. Returns whether
    /// the window now reaches `snap_head`.
    pub(super) fn apply_resync(
        &self,
        began: Epoch,
        snap_epoch: Epoch,
        snap_head: u64,
        entries: Vec<Entry>,
        retention: &Retention,
    ) -> bool {
        let mut corrupt = Vec::new();
        let caught_up = {
            let mut s = lock(&self.state);
            if s.epoch != snap_epoch {
                if s.epoch != began {
                    return false;
                }
                if s.epoch != Epoch::NONE {
                    tracing::info!(topic = %self.name, old = %s.epoch, new = %snap_epoch, "new epoch in redis");
                }
                s.epoch = snap_epoch;
                s.events.clear();
                s.head = entries
                    .first()
                    .map_or(snap_head, |e| e.seq().saturating_sub(1));
            }
            follow_entries(&mut s, entries, retention, &mut corrupt);
            s.head >= snap_head
        };
        for (seq, why) in corrupt {
            self.note_corrupt(snap_epoch, seq, &why);
        }
        self.publish_head();
        caught_up
    }

    /// Counts and logs a corrupt entry, once per entry.
    pub(super) fn note_corrupt(&self, epoch: Epoch, seq: u64, why: &str) {
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

    /// Wakes waiting subscribers if the head moved.
    pub(super) fn publish_head(&self) {
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

    /// Answers from the local window when it can do so exactly: synced,
    /// same epoch, a cursor within the window (or "from now"). `None` sends
    /// the read to Redis: the cursor is older than the window (or `after=0`
    /// while the window does not start at seq 1), from another epoch, or
    /// ahead of this node's head (which may just lag Redis).
    pub(super) fn read_window(
        &self,
        cursor: &Cursor,
        max: usize,
        retention: &Retention,
    ) -> Option<Batch> {
        if !self.is_ready() {
            return None;
        }
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
    pub(super) fn absorb(&self, epoch: Epoch, events: &[Event], retention: &Retention) -> bool {
        if !self.is_ready() {
            return false;
        }
        let mut s = lock(&self.state);
        if s.epoch != epoch || events.is_empty() {
            return false;
        }
        let first = s.first_seq();
        if events[0].seq < first && events[events.len() - 1].seq.saturating_add(1) >= first {
            for e in events.iter().rev().filter(|e| e.seq < first) {
                if s.events.len() >= retention.max_events.max(1) {
                    break;
                }
                s.events.push_front(e.clone());
            }
        }
        let before = s.head;
        for e in events {
            if Some(e.seq) == s.head.checked_add(1) {
                s.push(e.clone(), retention);
            }
        }
        s.head != before
    }
}

/// Appends entries read from Redis to the window. A jump (the window fell
/// behind retention) or a corrupt entry restarts the window after it, and
/// older cursors go to Redis, which reports the gap. Corrupt entries are
/// returned in `corrupt`.
fn follow_entries(
    s: &mut TopicState,
    entries: Vec<Entry>,
    retention: &Retention,
    corrupt: &mut Vec<(u64, String)>,
) {
    for entry in entries {
        let seq = entry.seq();
        if seq <= s.head {
            continue;
        }
        match entry {
            Entry::Event(e) => {
                if Some(seq) != s.head.checked_add(1) {
                    // seq > head ≥ 0 here, so seq ≥ 1.
                    s.events.clear();
                    s.head = seq - 1;
                }
                s.push(e, retention);
            }
            Entry::Corrupt { seq, why } => {
                // Step over it, or the next read would return it again at
                // once, for ever.
                s.events.clear();
                s.head = seq;
                corrupt.push((seq, why));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> Topic {
        let t = Topic::new(Keys::new("t"), ReaderKey::single(0), Arc::default());
        t.missed();
        assert!(t.resync_ends(1, true), "synced");
        t
    }

    fn event(epoch: Epoch, seq: u64) -> Message {
        let e = Event::build(&crate::log::Topic::new("t").unwrap(), seq, 5, b"1");
        Message::Event {
            epoch,
            seq,
            time_us: 5,
            json: e.json.bytes().clone(),
        }
    }

    #[test]
    fn messages_parse_and_keep_the_json_whole() {
        let m = Message::parse(b"00000000000000ff 3 17 {\"a\": \"b c\"}".to_vec());
        assert_eq!(
            m,
            Some(Message::Event {
                epoch: Epoch(255),
                seq: 3,
                time_us: 17,
                json: Bytes::from_static(b"{\"a\": \"b c\"}"),
            })
        );
        assert_eq!(
            Message::parse(b"00000000000000ff 0".to_vec()),
            Some(Message::Epoch {
                epoch: Epoch(255),
                head: 0
            })
        );
        assert_eq!(Message::parse(b"zz 1".to_vec()), None);
        assert_eq!(Message::parse(b"00ff x 1 {}".to_vec()), None);
    }

    #[test]
    fn a_message_applies_only_where_it_continues_the_window() {
        let r = Retention::default();
        let t = topic();
        let e = Epoch(9);
        assert_eq!(
            t.apply(Message::Epoch { epoch: e, head: 0 }, &r),
            Applied::Done
        );
        assert_eq!(t.apply(event(e, 1), &r), Applied::Done);
        assert_eq!(t.apply(event(e, 1), &r), Applied::Done, "a repeat");
        assert_eq!(t.apply(event(e, 3), &r), Applied::Missed, "2 is missing");
        assert_eq!(t.apply(event(Epoch(8), 2), &r), Applied::Missed);
        assert_eq!(t.apply(event(e, 2), &r), Applied::Done);
        assert_eq!(t.head.head(), Head { seq: 2, epoch: e });
        // A new epoch empties the window where it begins.
        t.apply(
            Message::Epoch {
                epoch: Epoch(10),
                head: 2,
            },
            &r,
        );
        assert_eq!(lock(&t.state).events.len(), 0);
        assert_eq!(t.apply(event(Epoch(10), 3), &r), Applied::Done);
    }

    #[test]
    fn an_unsynced_window_takes_no_message() {
        let t = Topic::new(Keys::new("t"), ReaderKey::single(0), Arc::default());
        let r = Retention::default();
        assert_eq!(
            t.apply(
                Message::Epoch {
                    epoch: Epoch(1),
                    head: 0
                },
                &r
            ),
            Applied::Missed
        );
        assert!(t.missed(), "the first miss starts a resync");
        assert!(!t.missed(), "one runs already");
        let began = t.resync_begins();
        t.missed();
        assert!(!t.resync_ends(began, true), "missed since it began");
        assert!(t.resync_ends(t.resync_begins(), true));
        assert!(t.is_ready());
    }

    #[test]
    fn a_resync_older_than_the_window_is_not_applied() {
        let r = Retention::default();
        let t = topic();
        // The read was sent in epoch NONE; a message moved the window to 9
        // meanwhile; the read's answer (epoch 7) predates that.
        t.apply(
            Message::Epoch {
                epoch: Epoch(9),
                head: 4,
            },
            &r,
        );
        assert!(!t.apply_resync(Epoch::NONE, Epoch(7), 3, Vec::new(), &r));
        assert_eq!(
            t.head.head(),
            Head {
                seq: 4,
                epoch: Epoch(9)
            }
        );
        // One sent in epoch 9 that finds epoch 11 is newer: taken.
        assert!(t.apply_resync(Epoch(9), Epoch(11), 6, Vec::new(), &r));
        assert_eq!(
            t.head.head(),
            Head {
                seq: 6,
                epoch: Epoch(11)
            }
        );
    }
}
