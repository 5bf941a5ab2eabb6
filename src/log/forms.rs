//! The wire forms of an event besides its JSON — the lean bytes, the
//! permessage-deflate payloads, the SSE blocks — each made at most once
//! however many subscribers take it, and kept within one byte budget for
//! the whole server ([`FormCache`], `--encoding-cache`).
//!
//! Without a budget every form an event was ever read in stayed as long as
//! the event: one reader per encoding, reading a retained window of large
//! events from `after=0`, multiplied the window's memory about sixfold
//! (issue 20). Now the forms made last are kept and the oldest are let go
//! once the budget is full; a form asked for again after that is made
//! again. Live fan-out reads the newest events, so their forms are the ones
//! kept: a reader walking old events costs CPU for itself, not memory for
//! everyone and not the live subscribers' encode-once.
//!
//! Locks: a [`FormCache`]'s lock is always taken before an event's, never
//! the other way round; an event's lock is held only while its form is
//! looked up or made (so a form is made once even when many subscribers
//! ask at the same moment).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;

/// Which form of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// The v1 JSON, permessage-deflated.
    JsonDeflated,
    /// The lean multiplexed form, `TOPIC data`.
    LeanMulti,
    /// The lean single-topic form (`data`), permessage-deflated.
    LeanDeflated,
    /// The lean multiplexed form, permessage-deflated.
    LeanMultiDeflated,
    /// A single-topic SSE stream's block for the event, `id:` to the blank
    /// line, in the v1 JSON.
    SseJson,
    /// The same in the lean encoding.
    SseLean,
    /// A poll or long poll's body when the event is all it carries
    /// (`{"epoch":…,"events":[…],"next":SEQ}`), in the v1 JSON.
    PollJson,
    /// The same in the lean encoding.
    PollLean,
}

/// The forms of one event, shared by every clone of it.
#[derive(Debug, Default)]
pub(crate) struct Forms {
    /// `data` within the event JSON (`None`: a foreign object without it).
    pub(super) data: Option<Range<usize>>,
    made: Mutex<Made>,
}

/// What an event holds of its forms now.
#[derive(Debug, Default)]
struct Made {
    /// The forms kept, in the order they were made (rarely more than two).
    forms: Vec<(Form, Bytes)>,
    /// The budget they count against (set with the first kept form), so
    /// that they are given back when the event goes.
    cache: Option<Arc<FormCache>>,
}

/// Cached forms never make two events differ.
impl PartialEq for Forms {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Forms {}

impl Forms {
    /// The forms of an event whose `data` is at `data` in its JSON.
    pub(super) fn at(data: Option<Range<usize>>) -> Arc<Forms> {
        Arc::new(Forms {
            data,
            made: Mutex::default(),
        })
    }

    fn made(&self) -> MutexGuard<'_, Made> {
        // A panic while a form was made leaves the list as it was.
        self.made.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Gives the forms' bytes back to the budget when the last clone of the
/// event goes.
impl Drop for Forms {
    fn drop(&mut self) {
        let made = self.made.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(cache) = made.cache.take() {
            let bytes = made.forms.iter().map(|(_, b)| b.len()).sum();
            cache.released(made.forms.len(), bytes);
        }
    }
}

/// The byte budget of every event's kept forms, oldest let go first.
#[derive(Debug)]
pub struct FormCache {
    budget: usize,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// Bytes of the forms kept now.
    bytes: usize,
    /// How many forms are kept now.
    kept: usize,
    /// Kept forms, oldest first. Entries of events that are gone are
    /// skipped when they come up (their bytes were given back by the
    /// event's drop), and swept out when they outnumber the kept ones.
    order: VecDeque<(Weak<Forms>, Form)>,
}

impl FormCache {
    /// A budget of `budget` bytes (0: no form is ever kept; each is made
    /// per delivery).
    pub fn new(budget: usize) -> Arc<FormCache> {
        Arc::new(FormCache {
            budget,
            state: Mutex::default(),
        })
    }

    /// Bytes of the forms kept now (`feedgate_encoding_cache_bytes`).
    pub fn bytes(&self) -> usize {
        self.state().bytes
    }

    /// The budget, bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    fn state(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `form` of the event whose forms are `forms`: the kept one, else made
    /// by `make` (once, however many ask at the same moment) and kept
    /// within the budget.
    pub(crate) fn get(
        self: &Arc<Self>,
        forms: &Arc<Forms>,
        form: Form,
        make: impl FnOnce() -> Bytes,
    ) -> Bytes {
        let mut made = forms.made();
        if let Some((_, b)) = made.forms.iter().find(|(f, _)| *f == form) {
            return b.clone();
        }
        let bytes = make();
        if bytes.len() > self.budget {
            return bytes;
        }
        made.forms.push((form, bytes.clone()));
        made.cache.get_or_insert_with(|| Arc::clone(self));
        drop(made);
        self.kept(forms, form, bytes.len());
        bytes
    }

    /// Counts a form just kept, and lets the oldest go while over budget.
    fn kept(&self, forms: &Arc<Forms>, form: Form, len: usize) {
        // Events let go here are dropped after the lock is released: a
        // last clone's drop gives its bytes back under the same lock.
        let mut let_go: Vec<Arc<Forms>> = Vec::new();
        let mut st = self.state();
        st.bytes = st.bytes.saturating_add(len);
        st.kept += 1;
        st.order.push_back((Arc::downgrade(forms), form));
        while st.bytes > self.budget {
            let Some((weak, f)) = st.order.pop_front() else {
                break;
            };
            // Gone already: its drop gave its bytes back.
            let Some(victim) = weak.upgrade() else {
                continue;
            };
            let mut made = victim.made();
            if let Some(i) = made.forms.iter().position(|(g, _)| *g == f) {
                let (_, b) = made.forms.remove(i);
                st.bytes -= b.len();
                st.kept -= 1;
            }
            drop(made);
            let_go.push(victim);
        }
        // Entries of events that went accumulate at the front as windows
        // move on; sweep the rest when they outnumber the kept forms.
        while st.order.front().is_some_and(|(w, _)| w.strong_count() == 0) {
            st.order.pop_front();
        }
        if st.order.len() > 2 * st.kept + 1024 {
            st.order.retain(|(w, _)| w.strong_count() > 0);
        }
        drop(st);
        drop(let_go);
    }

    /// An event that kept `n` forms of `bytes` in all went.
    fn released(&self, n: usize, bytes: usize) {
        let mut st = self.state();
        st.bytes = st.bytes.saturating_sub(bytes);
        st.kept = st.kept.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(cache: &Arc<FormCache>, forms: &Arc<Forms>, f: Form, len: usize) -> Bytes {
        cache.get(forms, f, || Bytes::from(vec![b'x'; len]))
    }

    #[test]
    fn a_form_is_made_once_and_shared() {
        let cache = FormCache::new(1000);
        let forms = Forms::at(None);
        let a = form(&cache, &forms, Form::SseJson, 10);
        let b = cache.get(&forms, Form::SseJson, || unreachable!("made twice"));
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(cache.bytes(), 10);
        drop(forms);
        assert_eq!(cache.bytes(), 0, "the event's drop gives its bytes back");
    }

    #[test]
    fn the_oldest_forms_go_first_when_the_budget_is_full() {
        let cache = FormCache::new(100);
        let events: Vec<_> = (0..5).map(|_| Forms::at(None)).collect();
        for e in &events {
            form(&cache, e, Form::JsonDeflated, 30);
        }
        // 150 bytes asked, 100 allowed: the first two went.
        assert_eq!(cache.bytes(), 90);
        let mut remade = 0;
        for e in &events {
            cache.get(e, Form::JsonDeflated, || {
                remade += 1;
                Bytes::from(vec![b'y'; 30])
            });
        }
        assert!(remade >= 2, "the let-go forms are made again");
        assert!(cache.bytes() <= 100);
        // Too big for the budget: made, never kept.
        let big = Forms::at(None);
        form(&cache, &big, Form::SseLean, 101);
        assert!(cache.bytes() <= 100);
        drop(events);
        drop(big);
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn entries_of_gone_events_do_not_pile_up() {
        let cache = FormCache::new(1 << 20);
        for _ in 0..10_000 {
            let e = Forms::at(None);
            form(&cache, &e, Form::LeanMulti, 8);
        }
        let st = cache.state();
        assert_eq!((st.bytes, st.kept), (0, 0));
        assert!(st.order.len() <= 1025, "{} entries", st.order.len());
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = FormCache::new(0);
        let e = Forms::at(None);
        let mut made = 0;
        for _ in 0..3 {
            cache.get(&e, Form::SseJson, || {
                made += 1;
                Bytes::from_static(b"x")
            });
        }
        assert_eq!((made, cache.bytes()), (3, 0));
    }
}
