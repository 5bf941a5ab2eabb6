//! What Redis answers, parsed: the scripts' replies and stream entries, and
//! how a read's snapshot answers a cursor.
//!
//! Redis answers arrays; anything unexpected is a bug or an incompatible
//! server, reported as unavailability. Every entry read is checked
//! ([`Event::decode`]); one that is not an event is never sent, but told to
//! readers as a gap (see [`answer`]).

use bytes::Bytes;
use redis::Value;

use crate::log::memory::TopicState;
use crate::log::{Batch, Cursor, Epoch, Event, Gap, LogError};

/// What the read script answered.
pub(super) struct Snapshot {
    pub(super) head: u64,
    pub(super) epoch: Epoch,
    /// Log entries after the cursor, oldest first.
    pub(super) entries: Vec<Entry>,
}

/// One entry of a topic's log stream, as read from Redis.
pub(super) enum Entry {
    /// A valid event.
    Event(Event),
    /// Bytes that are not an event this node could have built (not UTF-8,
    /// not one JSON object, a field missing): another writer's, or damage.
    /// Never sent; readers are told its seq as a gap and move past it.
    Corrupt { seq: u64, why: String },
}

impl Entry {
    pub(super) fn seq(&self) -> u64 {
        match self {
            Entry::Event(e) => e.seq,
            Entry::Corrupt { seq, .. } => *seq,
        }
    }
}

/// A cursor at seq 0 of [`Epoch::NONE`] is what a reader of a topic that
/// did not exist yet holds: it continues into the topic's first epoch, from
/// its first event, without a reset.
pub(super) fn continue_from_none(cursor: &Cursor) -> Cursor {
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
pub(super) fn answer(snap: Snapshot, cursor: &Cursor, max: usize) -> (Batch, TopicState) {
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

pub(super) fn bad_reply() -> LogError {
    LogError::Unavailable("unexpected reply from redis".into())
}

/// Splits `{'ok', …}` / `{'full'}` script replies.
pub(super) fn reply_parts(reply: Value, max_topics: usize) -> Result<Vec<Value>, LogError> {
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

pub(super) fn parse_snapshot(reply: Value, max_topics: usize) -> Result<Snapshot, LogError> {
    let mut parts = reply_parts(reply, max_topics)?.into_iter();
    let head = parts.next().and_then(int).ok_or_else(bad_reply)?;
    let epoch = parts.next().and_then(epoch_of).ok_or_else(bad_reply)?;
    let entries = match parts.next() {
        Some(Value::Array(entries)) => entries.into_iter().filter_map(log_entry).collect(),
        _ => Vec::new(),
    };
    Ok(Snapshot {
        head,
        epoch,
        entries,
    })
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

pub(super) fn int(v: Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(i).ok(),
        other => text(other)?.parse().ok(),
    }
}

pub(super) fn epoch_of(v: Value) -> Option<Epoch> {
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
            entries: entries
                .iter()
                .map(|&s| match s {
                    s if s > 0 => Entry::Event(Event::build(
                        &crate::log::Topic::new("t").unwrap(),
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
