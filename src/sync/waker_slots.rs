//! The wakers of the tasks waiting on one thing, a slot each, kept until
//! that thing happens: a waiter puts its waker in once and keeps its slot
//! (replacing the waker only when its task's changes), the event takes
//! them all and wakes them in order. Used where `tokio::sync::Notify`
//! would put a node into an intrusive list and take it out again on every
//! wait: a topic's head signal (`head_signal.rs`) and the shutdown as
//! waiters watch it (`stop_signal.rs`).
//!
//! The slots are a `slab`: a slot given back is reused before the list
//! grows, so waiters coming and going cannot grow it without bound. Callers
//! keep slot numbers in `u32` (a waiter's state stays small). A slot handed
//! out before the last [`WakerSlots::take`] is void and must not be passed
//! back (the head signal checks its generation first; a stop watch never
//! waits again once stopped); one that is simply empty is a new slot, and
//! no slot number can index out of bounds.

use std::task::Waker;

use slab::Slab;

/// Waker slots.
#[derive(Default)]
pub(crate) struct WakerSlots {
    slots: Slab<Waker>,
}

impl WakerSlots {
    /// Puts `waker` in `slot`, the one this waiter holds (`None`: it holds
    /// none yet, and gets a free one); returns the slot. Keeps the waker
    /// already there when it wakes the same task.
    pub fn put(&mut self, slot: Option<u32>, waker: &Waker) -> u32 {
        if let Some(held) = slot.and_then(|i| self.slots.get_mut(i as usize)) {
            if !held.will_wake(waker) {
                held.clone_from(waker);
            }
            // Held, so it fits: it was handed out as a `u32`.
            return slot.unwrap_or_default();
        }
        let entry = self.slots.vacant_entry();
        // A slot per waiting task: far fewer than 2^32.
        let Ok(key) = u32::try_from(entry.key()) else {
            // Cannot happen; waking this waiter at once is the safe answer.
            waker.wake_by_ref();
            return u32::MAX;
        };
        entry.insert(waker.clone());
        key
    }

    /// Empties `slot` (its waiter stopped waiting) for reuse; a slot no
    /// longer held is left alone.
    pub fn remove(&mut self, slot: u32) {
        self.slots.try_remove(slot as usize);
    }

    /// Takes every waker, leaving no slot held: every slot handed out
    /// before is void from now on.
    pub fn take(&mut self) -> impl Iterator<Item = Waker> + use<> {
        let capacity = self.slots.capacity();
        std::mem::replace(&mut self.slots, Slab::with_capacity(capacity))
            .into_iter()
            .map(|(_, w)| w)
    }

    /// How many slots are held.
    #[cfg(all(test, not(feedgate_loom)))]
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(all(test, not(feedgate_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    #[derive(Default)]
    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn slots_are_reused_and_stale_ones_ignored() {
        let c = Arc::new(Counter::default());
        let w = Waker::from(c.clone());
        let mut slots = WakerSlots::default();
        let a = slots.put(None, &w);
        let b = slots.put(None, &w);
        assert_ne!(a, b);
        assert_eq!(slots.put(Some(a), &w), a, "a waiter keeps its slot");
        slots.remove(a);
        assert_eq!(slots.put(None, &w), a, "a freed slot is reused first");
        assert_eq!(slots.take().count(), 2);
        // Every slot is void now: removing one is harmless, and an empty
        // one passed back is a new slot.
        slots.remove(b);
        let again = slots.put(Some(b), &w);
        assert_eq!(slots.len(), 1);
        slots.remove(again);
        assert_eq!(slots.len(), 0);
        assert_eq!(c.0.load(Ordering::SeqCst), 0, "nobody was woken");
    }
}
