//! The server's shutdown, the one signal everything long-lived waits on:
//! subscribers' feeds, connections, the demo publisher, probes. Registered
//! once per waiter, not once per wait.
//!
//! A feed waits on the log and on shutdown together, once per delivery.
//! Selecting on a `CancellationToken` each time took the token's lock to
//! ask whether it was cancelled, and put a `Notified` into its waiter list
//! and took it out again: 2–3 % of the server's CPU with 10 000 WebSocket
//! subscribers (bench/profile.sh). A [`StopWatch`] keeps its waker in a slot
//! of its shard for as long as it lives and replaces it only when the task's
//! waker changes; asking whether the server stops is one atomic load.
//! [`StopSignal::stop`] marks every shard and wakes what waits there.

use std::sync::PoisonError;
use std::task::{Context, Poll, Waker};

use super::shim::{Arc, AtomicBool, AtomicUsize, Mutex, MutexGuard, Ordering};
use super::waker_slots::WakerSlots;

/// Shards of waiters: the waiters of one shard share a lock. (Two in the
/// model tests: every shard's lock is a step loom explores.)
#[cfg(not(feedgate_loom))]
const SHARDS: usize = 32;
#[cfg(feedgate_loom)]
const SHARDS: usize = 2;

/// The server's shutdown.
pub(crate) struct StopSignal {
    shards: Vec<Arc<Shard>>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Shard {
    stopped: AtomicBool,
    waiters: Mutex<WakerSlots>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, WakerSlots> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the shard stopped and wakes every waiter.
    fn stop(&self) {
        // Under the lock: a watch that registers now either sees the mark
        // or has its waker taken below.
        let woken: Vec<Waker> = {
            let mut waiters = self.lock();
            self.stopped.store(true, Ordering::Release);
            waiters.take().collect()
        };
        for waker in woken {
            waker.wake();
        }
    }
}

/// One waiter's view of the signal. Every subscriber's session holds one:
/// 32 bytes.
pub(crate) struct StopWatch {
    shard: Arc<Shard>,
    /// This watch's slot in its shard, once it waited.
    slot: Option<u32>,
    /// The waker in that slot.
    waker: Option<Waker>,
}

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal {
            shards: (0..SHARDS).map(|_| Arc::new(Shard::default())).collect(),
            next: AtomicUsize::new(0),
        }
    }
}

impl StopSignal {
    /// Stops the server: every watch, made before or after, is stopped,
    /// and every waiting one is woken once.
    pub fn stop(&self) {
        for shard in &self.shards {
            shard.stop();
        }
    }

    /// Whether the server is stopping.
    pub fn is_stopped(&self) -> bool {
        // The last shard is marked last.
        self.shards
            .last()
            .is_some_and(|s| s.stopped.load(Ordering::Acquire))
    }

    /// A watch for one waiter, on the next shard round-robin.
    pub fn watch(&self) -> StopWatch {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % SHARDS;
        StopWatch {
            shard: self.shards[index].clone(),
            slot: None,
            waker: None,
        }
    }
}

impl StopWatch {
    /// Whether the server is stopping: one atomic load.
    pub fn is_stopped(&self) -> bool {
        self.shard.stopped.load(Ordering::Acquire)
    }

    /// `Ready` once the server is stopping; otherwise makes sure `cx`'s
    /// waker is the one woken then (free when it already is).
    pub fn poll_stopped(&mut self, cx: &Context<'_>) -> Poll<()> {
        if self.is_stopped() {
            return Poll::Ready(());
        }
        if self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        let waker = cx.waker().clone();
        let shard = &self.shard;
        let mut waiters = shard.lock();
        // Under the lock: a stop that took the wakers already is seen here.
        if shard.stopped.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.slot = Some(waiters.put(self.slot, &waker));
        drop(waiters);
        self.waker = Some(waker);
        Poll::Pending
    }

    /// Resolves once the server is stopping.
    pub async fn stopped(&mut self) {
        std::future::poll_fn(|cx| self.poll_stopped(cx)).await;
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let mut waiters = self.shard.lock();
            // Under the lock: once the stop took the wakers, the slots are
            // void and there is nothing to give back.
            if !self.shard.stopped.load(Ordering::Acquire) {
                waiters.remove(slot);
            }
        }
    }
}

#[cfg(all(test, not(feedgate_loom)))]
mod tests {
    use super::*;
    use std::task::Wake;

    #[derive(Default)]
    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_stop_wakes_and_stops_every_watch_once() {
        let signal = StopSignal::default();
        let counters: Vec<Arc<Counter>> = (0..40).map(|_| Arc::default()).collect();
        let mut watches: Vec<StopWatch> = (0..40).map(|_| signal.watch()).collect();
        for (w, c) in watches.iter_mut().zip(&counters) {
            let waker = Waker::from(c.clone());
            let cx = Context::from_waker(&waker);
            assert!(w.poll_stopped(&cx).is_pending());
            // Waiting again with the same waker takes no second slot.
            assert!(w.poll_stopped(&cx).is_pending());
            assert!(!w.is_stopped());
        }
        let slots: usize = signal.shards.iter().map(|s| s.lock().len()).sum();
        assert_eq!(slots, 40);
        assert!(!signal.is_stopped());
        signal.stop();
        assert!(signal.is_stopped());
        assert!(watches.iter().all(StopWatch::is_stopped));
        for c in &counters {
            assert_eq!(c.0.load(Ordering::SeqCst), 1, "woken exactly once");
        }
    }

    #[test]
    fn a_dropped_watch_gives_its_slot_back() {
        let signal = StopSignal::default();
        let waker = Waker::from(Arc::new(Counter::default()));
        let cx = Context::from_waker(&waker);
        for _ in 0..100 {
            let mut w = signal.watch();
            assert!(w.poll_stopped(&cx).is_pending());
        }
        let slots: usize = signal.shards.iter().map(|s| s.lock().len()).sum();
        assert!(
            slots <= SHARDS,
            "{slots} slots for one live watch at a time"
        );
    }

    #[tokio::test]
    async fn a_watch_made_after_the_stop_is_stopped() {
        let signal = StopSignal::default();
        signal.stop();
        let mut w = signal.watch();
        tokio::time::timeout(std::time::Duration::from_secs(5), w.stopped())
            .await
            .expect("stopped");
    }
}
