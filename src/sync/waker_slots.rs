//! The wakers of the tasks waiting on one thing, a slot each, kept until
//! that thing happens: a waiter puts its waker in once and keeps its slot
//! (replacing the waker only when its task's changes), the event takes
//! them all and wakes them in order. Used where `tokio::sync::Notify`
//! would put a node into an intrusive list and take it out again on every
//! wait: a topic's head signal (`log/head_signal.rs`) and the shutdown as
//! feeds wait on it (`stop_signal.rs`).

use std::task::Waker;

/// Waker slots, and the empty ones to reuse before the list grows, so that
/// waiters coming and going cannot grow it without bound.
#[derive(Default)]
pub(crate) struct WakerSlots {
    slots: Vec<Option<Waker>>,
    free: Vec<u32>,
}

impl WakerSlots {
    /// Puts `waker` in `slot`, the one this waiter holds (`None`: it holds
    /// none yet, and gets a free one); returns the slot. Keeps the waker
    /// already there when it wakes the same task.
    pub fn put(&mut self, slot: Option<u32>, waker: &Waker) -> u32 {
        if let Some(i) = slot {
            let held = &mut self.slots[i as usize];
            if !held.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *held = Some(waker.clone());
            }
            return i;
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                // A slot per waiting task: far fewer than 2^32.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.slots[i as usize] = Some(waker.clone());
        i
    }

    /// Empties `slot` (its waiter stopped waiting) for reuse.
    pub fn remove(&mut self, slot: u32) {
        self.slots[slot as usize] = None;
        self.free.push(slot);
    }

    /// Takes every waker, leaving no slot held: every slot handed out
    /// before is void from now on.
    pub fn take(&mut self) -> impl Iterator<Item = Waker> + use<> {
        self.free.clear();
        let capacity = self.slots.len();
        std::mem::replace(&mut self.slots, Vec::with_capacity(capacity))
            .into_iter()
            .flatten()
    }

    /// How many slots there are, held or empty.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The empty slots, next to reuse last.
    #[cfg(test)]
    pub fn free(&self) -> &[u32] {
        &self.free
    }
}
