//! A topic's head and the subscribers waiting for it to move: what
//! `tokio::sync::watch` did here, cheaper per waiter.
//!
//! With 10 000 subscribers on a topic, every publish wakes all of them and
//! each one waits again right after its delivery. Through a `watch`, each
//! wait built a `Notified` that went into an intrusive list under the
//! channel's lock and came out of it under that lock again, and the
//! publisher walked the list node by node, one cold cache line per waiter:
//! 8–9 % of the server's CPU in `bench/profile.sh` (`notify_waiters`,
//! `changed`, `poll_notified`, `drop_notified`). Here a waiter puts its
//! waker in a slot of one vector, under the lock it also reads the head
//! with, at most once per publish; the publisher takes the whole vector
//! and wakes it front to back.

use std::future::poll_fn;
use std::sync::PoisonError;
use std::task::{Context, Poll};

use super::shim::{Arc, AtomicUsize, Mutex, MutexGuard, Ordering};
use super::waker_slots::WakerSlots;

/// The publishing side: one per topic.
pub(crate) struct HeadSender<H> {
    shared: Arc<Shared<H>>,
}

/// A subscriber's side. Cheap to clone; each clone waits on its own.
pub(crate) struct HeadReceiver<H> {
    shared: Arc<Shared<H>>,
    /// The slot this receiver's waker holds in the current waiter list:
    /// (the list's generation, index). Registering again before the next
    /// publish reuses it, so one receiver holds at most one slot.
    slot: Option<(u64, u32)>,
}

struct Shared<H> {
    state: Mutex<State<H>>,
    /// Live receivers, for a backend that lets a topic go with its last
    /// subscriber.
    receivers: AtomicUsize,
}

struct State<H> {
    head: H,
    /// Bumped by every publish that moves the head: the waiter list is new.
    generation: u64,
    /// Wakers of the receivers waiting since the last publish.
    waiters: WakerSlots,
}

impl<H> Shared<H> {
    fn lock(&self) -> MutexGuard<'_, State<H>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A sender and nothing waiting on it yet.
pub(crate) fn channel<H>(head: H) -> HeadSender<H> {
    HeadSender {
        shared: Arc::new(Shared {
            state: Mutex::new(State {
                head,
                generation: 0,
                waiters: WakerSlots::default(),
            }),
            receivers: AtomicUsize::new(0),
        }),
    }
}

impl<H: Copy> HeadSender<H> {
    /// The head as last published.
    pub fn head(&self) -> H {
        self.shared.lock().head
    }

    /// A new receiver.
    pub fn subscribe(&self) -> HeadReceiver<H> {
        self.shared.receivers.fetch_add(1, Ordering::AcqRel);
        HeadReceiver {
            shared: self.shared.clone(),
            slot: None,
        }
    }

    /// How many receivers are alive.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.load(Ordering::Acquire)
    }

    /// Lets `modify` change the head; when it says it did, wakes every
    /// receiver waiting. Returns what `modify` said.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut H) -> bool) -> bool {
        let woken = {
            let mut state = self.shared.lock();
            if !modify(&mut state.head) {
                return false;
            }
            state.generation = state.generation.wrapping_add(1);
            state.waiters.take()
        };
        // Outside the lock: a woken task on the other worker can register
        // for the next publish at once.
        for waker in woken {
            waker.wake();
        }
        true
    }
}

impl<H> Clone for HeadReceiver<H> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::AcqRel);
        HeadReceiver {
            shared: self.shared.clone(),
            slot: None,
        }
    }
}

impl<H> Drop for HeadReceiver<H> {
    fn drop(&mut self) {
        if let Some((generation, index)) = self.slot {
            let mut state = self.shared.lock();
            if state.generation == generation {
                state.waiters.remove(index);
            }
        }
        self.shared.receivers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<H: Copy> HeadReceiver<H> {
    /// The head as last published.
    pub fn head(&self) -> H {
        self.shared.lock().head
    }

    /// Resolves with the head once `ready` holds for it: at once when it
    /// already does. Cancel-safe. Never resolves if the sender is dropped
    /// first and `ready` never held.
    pub async fn wait_for(&mut self, mut ready: impl FnMut(&H) -> bool) -> H {
        poll_fn(|cx| self.poll_ready(cx, &mut ready)).await
    }

    /// `Ready` with the head once `ready` holds for it; otherwise this
    /// receiver's waker is in the waiter list for the next publish.
    pub(crate) fn poll_ready(
        &mut self,
        cx: &Context<'_>,
        ready: &mut impl FnMut(&H) -> bool,
    ) -> Poll<H> {
        let mut state = self.shared.lock();
        if ready(&state.head) {
            return Poll::Ready(state.head);
        }
        // A slot from before the last publish is void.
        let held = self
            .slot
            .filter(|(generation, _)| *generation == state.generation)
            .map(|(_, index)| index);
        let index = state.waiters.put(held, cx.waker());
        self.slot = Some((state.generation, index));
        Poll::Pending
    }
}

#[cfg(all(test, not(feedgate_loom)))]
mod tests {
    use super::*;
    use std::task::{Wake, Waker};

    /// A head as the log's: where the newest event is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Head {
        seq: u64,
    }

    type HeadSender = super::HeadSender<Head>;
    type HeadReceiver = super::HeadReceiver<Head>;

    fn head(seq: u64) -> Head {
        Head { seq }
    }

    fn move_to(tx: &HeadSender, seq: u64) -> bool {
        tx.send_if_modified(|h| {
            let moved = h.seq != seq;
            h.seq = seq;
            moved
        })
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_beyond(rx: &mut HeadReceiver, waker: &Waker, after: u64) -> Poll<Head> {
        rx.poll_ready(&Context::from_waker(waker), &mut |h: &Head| h.seq > after)
    }

    #[test]
    fn a_publish_wakes_each_waiter_once_and_only_when_the_head_moved() {
        let tx = channel(head(0));
        let counters: Vec<Arc<Counter>> = (0..3).map(|_| Arc::default()).collect();
        let wakers: Vec<Waker> = counters.iter().map(|c| Waker::from(c.clone())).collect();
        let mut rxs: Vec<HeadReceiver> = (0..3).map(|_| tx.subscribe()).collect();
        for (rx, w) in rxs.iter_mut().zip(&wakers) {
            assert!(poll_beyond(rx, w, 0).is_pending());
            // Waiting again before a publish takes no second slot.
            assert!(poll_beyond(rx, w, 0).is_pending());
        }
        assert_eq!(tx.shared.lock().waiters.len(), 3);
        assert!(!move_to(&tx, 0), "an unmoved head wakes nobody");
        assert!(counters.iter().all(|c| c.0.load(Ordering::SeqCst) == 0));
        assert!(move_to(&tx, 1));
        assert!(counters.iter().all(|c| c.0.load(Ordering::SeqCst) == 1));
        for (rx, w) in rxs.iter_mut().zip(&wakers) {
            assert_eq!(poll_beyond(rx, w, 0), Poll::Ready(head(1)));
        }
        // Nobody waits now: the next publish wakes nobody again.
        assert!(move_to(&tx, 2));
        assert!(counters.iter().all(|c| c.0.load(Ordering::SeqCst) == 1));
    }

    #[test]
    fn the_latest_waker_is_the_one_woken() {
        let tx = channel(head(0));
        let mut rx = tx.subscribe();
        let (first, second) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
        assert!(poll_beyond(&mut rx, &Waker::from(first.clone()), 0).is_pending());
        assert!(poll_beyond(&mut rx, &Waker::from(second.clone()), 0).is_pending());
        move_to(&tx, 1);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_dropped_waiter_frees_its_slot_and_the_count() {
        let tx = channel(head(0));
        let waker = Waker::from(Arc::new(Counter::default()));
        let mut a = tx.subscribe();
        let mut b = a.clone();
        assert_eq!(tx.receiver_count(), 2);
        assert!(poll_beyond(&mut a, &waker, 0).is_pending());
        drop(a);
        assert_eq!(tx.receiver_count(), 1);
        assert_eq!(tx.shared.lock().waiters.len(), 0, "its slot is free");
        // The freed slot is reused rather than the list growing: churn on
        // a quiet topic cannot grow it without bound.
        for _ in 0..100 {
            let mut c = b.clone();
            assert!(poll_beyond(&mut c, &waker, 0).is_pending());
        }
        assert!(poll_beyond(&mut b, &waker, 0).is_pending());
        assert_eq!(tx.shared.lock().waiters.len(), 1, "b holds the one slot");
    }

    #[tokio::test]
    async fn wait_for_returns_at_once_or_after_the_publish() {
        let tx = Arc::new(channel(head(3)));
        let mut rx = tx.subscribe();
        assert_eq!(rx.wait_for(|h| h.seq >= 3).await, head(3));
        let waiter = tokio::spawn(async move { rx.wait_for(|h| h.seq >= 5).await });
        move_to(&tx, 4);
        move_to(&tx, 5);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken by the publish")
            .unwrap();
        assert_eq!(got, head(5));
    }
}
