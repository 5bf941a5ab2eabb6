//! The in-memory backend: a bounded ring of events per topic and a head
//! signal (`head_signal.rs`) that wakes the topic's waiting readers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use super::HeadSender;
use super::{
    Appended, Batch, Cursor, Epoch, Event, Gap, Head, LogError, ResetReason, Retention,
    Subscription, unix_micros,
};
use crate::sync::head_signal;

/// Every topic's log, in this process. Cheap to clone.
#[derive(Clone)]
pub(crate) struct MemoryLog {
    shared: Arc<Shared>,
}

struct Shared {
    topics: Mutex<Topics>,
    retention: Retention,
    max_topics: usize,
    /// The epoch of every topic of this log: one incarnation of the log is
    /// one process, and a restart changes them all at once. Shared, a
    /// multiplexed SSE id names it once for all its topics.
    epoch: Epoch,
}

/// The topics map. An entry is either a published topic (it has events,
/// and keeps its newest one whatever the retention, so it stays), or a
/// placeholder for subscribers waiting on a topic nobody has published to:
/// those are not topics yet — they count against no limit and go with
/// their last subscriber ([`Placeholder`]).
#[derive(Default)]
struct Topics {
    map: HashMap<super::Topic, Arc<Topic>>,
    /// How many entries of `map` have been published to.
    published: usize,
}

/// One topic: its events behind a lock, its head behind a [`HeadSender`].
pub(crate) struct Topic {
    state: Mutex<TopicState>,
    head: HeadSender,
}

/// The retained window of one topic's log. Shared with the Redis backend,
/// which keeps one of these per topic as its local cache.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub(crate) epoch: Epoch,
    /// Retained events, oldest first, contiguous seqs.
    pub(crate) events: VecDeque<Event>,
    /// Seq of the newest event ever appended (0 when none).
    pub(crate) head: u64,
}

/// A poisoned lock only means another thread panicked mid-update of plain
/// data that stays consistent (every update is a single push or pop), so
/// keep serving rather than propagate the panic to every reader.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Held by every subscription to a topic nobody has published to yet: when
/// the last one goes and still nothing was published, the entry goes too,
/// so that subscribing to made-up names costs nothing once they leave.
struct Placeholder {
    shared: Weak<Shared>,
    name: super::Topic,
    topic: Arc<Topic>,
}

impl Drop for Placeholder {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        // Lock order everywhere: the map, then a topic's state.
        let mut topics = lock(&shared.topics);
        let unused = self.topic.head.receiver_count() == 0 && lock(&self.topic.state).head == 0;
        let same = topics
            .map
            .get(&self.name)
            .is_some_and(|t| Arc::ptr_eq(t, &self.topic));
        if unused && same {
            topics.map.remove(&self.name);
        }
    }
}

impl MemoryLog {
    pub(crate) fn new(retention: Retention, max_topics: usize) -> Self {
        MemoryLog {
            shared: Arc::new(Shared {
                topics: Mutex::new(Topics::default()),
                retention,
                max_topics,
                epoch: Epoch::random(),
            }),
        }
    }

    fn existing(&self, name: &super::Topic) -> Option<Arc<Topic>> {
        lock(&self.shared.topics).map.get(name).cloned()
    }

    pub(crate) fn append(&self, name: &super::Topic, data: &[u8]) -> Result<Appended, LogError> {
        let appended = {
            let mut topics = lock(&self.shared.topics);
            let t = topics
                .map
                .entry(name.clone())
                .or_insert_with(|| Arc::new(Topic::new(Epoch::NONE)))
                .clone();
            let mut state = lock(&t.state);
            if state.head == 0 {
                // The first publish makes it a topic (from a placeholder,
                // or from nothing).
                if topics.published >= self.shared.max_topics {
                    drop(state);
                    if t.head.receiver_count() == 0 {
                        topics.map.remove(name);
                    }
                    return Err(LogError::TooManyTopics(self.shared.max_topics));
                }
                topics.published += 1;
                state.epoch = self.shared.epoch;
            }
            drop(topics);
            let seq = state.head + 1;
            let event = Event::build(name, seq, unix_micros(), data);
            state.push(event, &self.shared.retention);
            (
                t.clone(),
                Appended {
                    seq,
                    epoch: state.epoch,
                },
            )
        };
        let (t, appended) = appended;
        // Notify after the guards are gone, so woken readers don't block.
        t.publish_head(appended.seq, appended.epoch);
        Ok(appended)
    }

    pub(crate) fn read(&self, name: &super::Topic, cursor: &Cursor, max: usize) -> Batch {
        match self.existing(name) {
            Some(t) => self.read_window(&t, cursor, max),
            None => TopicState::new(Epoch::NONE).read(cursor, max),
        }
    }

    /// Reads one topic's window, held by a subscription.
    pub(crate) fn read_window(&self, t: &Topic, cursor: &Cursor, max: usize) -> Batch {
        let mut state = lock(&t.state);
        state.expire(&self.shared.retention);
        state.read(cursor, max)
    }

    pub(crate) fn subscribe(&self, name: &super::Topic) -> Subscription {
        let mut topics = lock(&self.shared.topics);
        let t = topics
            .map
            .entry(name.clone())
            .or_insert_with(|| Arc::new(Topic::new(Epoch::NONE)))
            .clone();
        let rx = t.head.subscribe();
        if lock(&t.state).head > 0 {
            return Subscription::new(rx).with_window(t);
        }
        drop(topics);
        let lease = Placeholder {
            shared: Arc::downgrade(&self.shared),
            name: name.clone(),
            topic: t.clone(),
        };
        Subscription::leased(rx, Arc::new(lease)).with_window(t)
    }

    /// Makes `event` visible: a durable backend (`file`) chose its seq,
    /// stored it, and counts topics itself. The first event of a topic sets
    /// its epoch and where its window starts (the oldest event a restart
    /// read back from disk, or seq 1). Returns the oldest retained seq.
    pub(crate) fn push(&self, name: &super::Topic, epoch: Epoch, event: Event) -> u64 {
        let (t, seq, first) = {
            let mut topics = lock(&self.shared.topics);
            let t = topics
                .map
                .entry(name.clone())
                .or_insert_with(|| Arc::new(Topic::new(Epoch::NONE)))
                .clone();
            let mut state = lock(&t.state);
            if state.head == 0 {
                topics.published += 1;
                state.epoch = epoch;
                state.head = event.seq - 1;
            }
            drop(topics);
            let seq = event.seq;
            state.push(event, &self.shared.retention);
            let first = state.first_seq();
            drop(state);
            (t, seq, first)
        };
        t.publish_head(seq, epoch);
        first
    }

    /// The oldest retained seq of a published topic.
    pub(crate) fn first_seq(&self, name: &super::Topic) -> Option<u64> {
        let t = self.existing(name)?;
        let state = lock(&t.state);
        (state.head > 0).then(|| state.first_seq())
    }

    /// Drops events past the retention age in every topic, so memory is
    /// bounded by age even for topics nobody appends to or reads.
    pub(crate) fn expire(&self) {
        let topics: Vec<Arc<Topic>> = lock(&self.shared.topics).map.values().cloned().collect();
        for t in topics {
            lock(&t.state).expire(&self.shared.retention);
        }
    }

    /// (published topics, retained events).
    pub(crate) fn stats(&self) -> (usize, usize) {
        let (published, topics) = {
            let t = lock(&self.shared.topics);
            (t.published, t.map.values().cloned().collect::<Vec<_>>())
        };
        let retained = topics.iter().map(|t| lock(&t.state).events.len()).sum();
        (published, retained)
    }

    /// Entries in the topics map, placeholders included (for tests).
    #[cfg(test)]
    fn entries(&self) -> usize {
        lock(&self.shared.topics).map.len()
    }
}

impl Topic {
    pub(crate) fn new(epoch: Epoch) -> Self {
        let head = head_signal::channel(Head { seq: 0, epoch });
        Topic {
            state: Mutex::new(TopicState::new(epoch)),
            head,
        }
    }

    /// Wakes every reader waiting on this topic.
    pub(crate) fn publish_head(&self, seq: u64, epoch: Epoch) {
        self.head.send_if_modified(|h| {
            let changed = h.seq != seq || h.epoch != epoch;
            *h = Head { seq, epoch };
            changed
        });
    }
}

impl TopicState {
    /// An empty window in `epoch`.
    pub(crate) fn new(epoch: Epoch) -> Self {
        TopicState {
            epoch,
            events: VecDeque::new(),
            head: 0,
        }
    }

    /// Appends the next event and trims the window to the retention.
    pub(crate) fn push(&mut self, event: Event, retention: &Retention) {
        debug_assert_eq!(event.seq, self.head + 1, "log seqs are gapless");
        self.head = event.seq;
        self.events.push_back(event);
        while self.events.len() > retention.max_events.max(1) {
            self.events.pop_front();
        }
        self.expire(retention);
    }

    /// Drops events older than the retention age. The newest event is kept
    /// even when old, so the head stays readable.
    pub(crate) fn expire(&mut self, retention: &Retention) {
        let Some(max_age) = retention.max_age else {
            return;
        };
        let cutoff = unix_micros().saturating_sub(duration_micros(max_age));
        while self.events.len() > 1 && self.events.front().is_some_and(|e| e.time_us < cutoff) {
            self.events.pop_front();
        }
    }

    /// Seq of the oldest retained event, or `head + 1` when none is.
    pub(crate) fn first_seq(&self) -> u64 {
        self.events.front().map_or(self.head + 1, |e| e.seq)
    }

    /// Answers "events after `cursor`, at most `max`" from the window.
    pub(crate) fn read(&self, cursor: &Cursor, max: usize) -> Batch {
        let first = self.first_seq();
        let mut reset = None;
        let after = match (cursor.after, cursor.epoch) {
            // Nothing seen before the topic's first epoch: no reset.
            _ if cursor.continues_into_first_epoch() => 0,
            (_, Some(e)) if e != self.epoch => {
                reset = Some(ResetReason::EpochChanged);
                0
            }
            (Some(n), _) if n > self.head => {
                reset = Some(ResetReason::CursorAhead);
                0
            }
            (Some(n), _) => n,
            (None, _) => self.head,
        };
        // after=0 means "from the oldest retained", which is not a gap.
        let gap = (after > 0 && after + 1 < first).then(|| Gap {
            missed: first - after - 1,
            resume_seq: first,
        });
        let start = after.max(first - 1);
        let skip = (start + 1 - first) as usize;
        // `range`, not `iter().skip()`: the window may hold many events
        // before the cursor, and skipping them one by one cost a reader
        // time in proportion to the window.
        let end = skip.saturating_add(max).min(self.events.len());
        let events: Vec<Event> = match skip < end {
            true => self.events.range(skip..end).cloned().collect(),
            false => Vec::new(),
        };
        let next = events.last().map_or(start, |e| e.seq);
        Batch {
            epoch: self.epoch,
            events,
            next,
            gap,
            reset,
        }
    }
}

pub(crate) fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(max_events: usize) -> MemoryLog {
        MemoryLog::new(
            Retention {
                max_events,
                max_age: None,
            },
            10,
        )
    }

    fn name(n: &str) -> crate::log::Topic {
        crate::log::Topic::new(n).unwrap()
    }

    fn seqs(b: &Batch) -> Vec<u64> {
        b.events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn appends_gapless_from_one() {
        let l = log(100);
        for i in 1..=5 {
            assert_eq!(l.append(&name("t"), b"1").unwrap().seq, i);
        }
        let b = l.read(&name("t"), &Cursor::default(), 10);
        assert!(b.events.is_empty(), "no after means from now");
        assert_eq!(b.next, 5);
        let epoch = b.epoch;
        let b = l.read(&name("t"), &Cursor::at(2, epoch), 2);
        assert_eq!(seqs(&b), vec![3, 4]);
        assert_eq!(b.next, 4);
        assert!(b.gap.is_none() && b.reset.is_none());
    }

    #[test]
    fn cursor_older_than_retention_is_a_gap() {
        let l = log(3);
        for _ in 0..10 {
            l.append(&name("t"), b"null").unwrap();
        }
        let b = l.read(
            &name("t"),
            &Cursor {
                after: Some(2),
                epoch: None,
            },
            100,
        );
        assert_eq!(seqs(&b), vec![8, 9, 10]);
        assert_eq!(
            b.gap,
            Some(Gap {
                missed: 5,
                resume_seq: 8
            })
        );
        // after=0 starts at the oldest retained without a gap.
        let b = l.read(
            &name("t"),
            &Cursor {
                after: Some(0),
                epoch: None,
            },
            100,
        );
        assert_eq!(seqs(&b), vec![8, 9, 10]);
        assert!(b.gap.is_none());
    }

    #[test]
    fn other_epoch_or_future_cursor_is_a_reset() {
        let l = log(100);
        l.append(&name("t"), b"1").unwrap();
        l.append(&name("t"), b"2").unwrap();
        let epoch = l.read(&name("t"), &Cursor::default(), 1).epoch;
        let b = l.read(&name("t"), &Cursor::at(1, Epoch(epoch.0 ^ 1)), 10);
        assert_eq!(b.reset, Some(ResetReason::EpochChanged));
        assert_eq!(seqs(&b), vec![1, 2]);
        let b = l.read(&name("t"), &Cursor::at(9, epoch), 10);
        assert_eq!(b.reset, Some(ResetReason::CursorAhead));
        assert_eq!(seqs(&b), vec![1, 2]);
    }

    #[test]
    fn topic_limit_is_enforced_without_side_effects() {
        let l = MemoryLog::new(Retention::default(), 2);
        l.append(&name("a"), b"1").unwrap();
        l.append(&name("b"), b"1").unwrap();
        assert_eq!(
            l.append(&name("c"), b"1").unwrap_err(),
            LogError::TooManyTopics(2)
        );
        assert_eq!(l.stats(), (2, 2));
        // Existing topics keep working.
        assert_eq!(l.append(&name("a"), b"2").unwrap().seq, 2);
    }

    #[test]
    fn reads_and_subscriptions_create_no_topic() {
        let l = MemoryLog::new(Retention::default(), 1);
        let b = l.read(&name("ghost"), &Cursor::at(0, Epoch::NONE), 10);
        assert_eq!((b.epoch, b.next, b.has_news()), (Epoch::NONE, 0, false));
        let subs: Vec<_> = (0..5)
            .map(|i| l.subscribe(&name(&format!("w{i}"))))
            .collect();
        assert_eq!(l.stats().0, 0, "waiting is not a topic");
        assert_eq!(l.entries(), 5);
        let again = subs[0].clone();
        drop(subs);
        assert_eq!(l.entries(), 1, "placeholders go with their last subscriber");
        drop(again);
        assert_eq!(l.entries(), 0);
        // The one topic the limit allows is still there for a publisher.
        assert_eq!(l.append(&name("real"), b"1").unwrap().seq, 1);
        assert_eq!(
            l.append(&name("more"), b"1").unwrap_err(),
            LogError::TooManyTopics(1)
        );
        assert_eq!(l.entries(), 1, "a refused first publish leaves nothing");
    }

    #[test]
    fn a_cursor_from_before_the_first_publish_continues_without_reset() {
        let l = log(10);
        let sub = l.subscribe(&name("t"));
        let cursor = crate::log::Log::resolve(&Cursor::default(), &sub);
        assert_eq!(cursor, Cursor::at(0, Epoch::NONE));
        l.append(&name("t"), b"1").unwrap();
        let b = l.read(&name("t"), &cursor, 10);
        assert_eq!(b.reset, None);
        assert_eq!(seqs(&b), vec![1]);
        assert_ne!(b.epoch, Epoch::NONE);
        // A published topic outlives its subscribers.
        drop(sub);
        assert_eq!(l.stats(), (1, 1));
        // Another epoch's cursor is still a reset.
        let b = l.read(&name("t"), &Cursor::at(0, Epoch(b.epoch.0 ^ 1)), 10);
        assert_eq!(b.reset, Some(ResetReason::EpochChanged));
    }

    #[tokio::test]
    async fn subscription_wakes_on_append() {
        let l = log(10);
        let mut sub = l.subscribe(&name("t"));
        let cursor = crate::log::Log::resolve(&Cursor::default(), &sub);
        let waiter = tokio::spawn(async move {
            sub.wait_beyond(&cursor).await;
            sub.head().seq
        });
        l.append(&name("t"), b"true").unwrap();
        assert_eq!(waiter.await.unwrap(), 1);
    }
}
