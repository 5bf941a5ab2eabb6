//! The topics a subscriber follows and where each stands, and the steps a
//! connection's messages become: deliveries to yield, and positions to
//! take once everything before them was yielded.
//!
//! A topic's cursor moves only as the caller is handed things, never when
//! they are merely read off the wire: so the LIST it resumes from (after a
//! restart, a changed topic set, or in another process) loses and repeats
//! nothing, whatever was still queued.

use std::collections::VecDeque;

use super::{ClientError, Delivery};
use crate::protocol::{Cursor, push_item};

/// One followed topic.
#[derive(Debug, Clone)]
pub(super) struct Followed {
    /// Its name.
    pub name: String,
    /// After everything yielded (`after: None`: from now, until the server
    /// says where that is).
    pub cursor: Cursor,
    /// Lean encoding: the seq of the last event read (lean events carry
    /// none; counting starts from `ready`, `subscribed`, `gap`, `reset`).
    pub lean_seq: u64,
}

impl Followed {
    /// A topic followed from `cursor`.
    pub fn new(name: &str, cursor: Cursor) -> Followed {
        Followed {
            name: name.to_owned(),
            cursor,
            lean_seq: cursor.after.unwrap_or(0),
        }
    }
}

/// What a connection's messages become, in order.
#[derive(Debug)]
pub(super) enum Step {
    /// Hand this to the caller; it moves topic `.0`'s cursor past it.
    Deliver(usize, Delivery),
    /// Topic `.0` stands here now: each field that is set replaces the
    /// cursor's (a `ready`, a `subscribed`, an SSE id, a poll's `next`).
    Stand(usize, Cursor),
}

/// Every followed topic, and the steps read but not yet taken.
#[derive(Debug, Default)]
pub(super) struct Topics {
    pub list: Vec<Followed>,
    pub steps: VecDeque<Step>,
}

impl Topics {
    /// The index of `name`, if followed.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|f| f.name == name)
    }

    /// The LIST that resumes every topic.
    pub fn list_text(&self) -> String {
        let mut out = String::new();
        for f in &self.list {
            push_item(&mut out, &f.name, &f.cursor);
        }
        out
    }

    /// Takes the positions queued before the next delivery.
    pub fn settle(&mut self) {
        while let Some(&Step::Stand(i, at)) = self.steps.front() {
            self.steps.pop_front();
            let c = &mut self.list[i].cursor;
            c.epoch = at.epoch.or(c.epoch);
            c.after = at.after.or(c.after);
        }
    }

    /// The next delivery, its topic's cursor moved past it and every
    /// position up to the one after it taken.
    pub fn next_delivery(&mut self) -> Option<(usize, Delivery)> {
        self.settle();
        let Some(Step::Deliver(i, d)) = self.steps.pop_front() else {
            return None;
        };
        let c = &mut self.list[i].cursor;
        match &d {
            Delivery::Event(e) => c.after = Some(e.seq),
            Delivery::Gap { resume_seq, .. } => c.after = Some(resume_seq.saturating_sub(1)),
            Delivery::Reset { epoch, .. } => *c = Cursor::at(0, *epoch),
        }
        self.settle();
        Some((i, d))
    }

    /// Stops following topic `i`: what was queued for it goes, and the
    /// indices after it close up.
    pub fn remove(&mut self, i: usize) {
        self.list.remove(i);
        self.steps.retain_mut(|s| {
            let (Step::Deliver(j, _) | Step::Stand(j, _)) = s;
            if *j == i {
                return false;
            }
            if *j > i {
                *j -= 1;
            }
            true
        });
    }
}

/// Most topics a client-side LIST is parsed with (the server has its own
/// limit, `--max-topics-per-connection`).
const MAX_LIST: usize = 100_000;

/// Parses a LIST (`a,b@5,c@EPOCH:3`) into topics and cursors (no `@`: from
/// now), for the command line and [`super::Subscriber::connect_list`].
///
/// # Errors
/// [`ClientError::Usage`] for a malformed LIST.
pub fn parse_list(text: &str) -> Result<Vec<(String, Cursor)>, ClientError> {
    let items = crate::protocol::parse_list(text, MAX_LIST)
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    Ok(items
        .into_iter()
        .map(|(t, c)| (t.as_str().to_owned(), c.unwrap_or_default()))
        .collect())
}
