//! A [`Gate`] lets a task that waits on several things at once poll each
//! one only after that one's own waker fired.
//!
//! `tokio::select!` polls every branch whenever the task wakes. A WebSocket
//! session is woken about once per event by its feed, and each time it would
//! also poll the socket's read side (through tokio-tungstenite's waker
//! proxies, down to the socket's readiness) and its keep-alive timer, which
//! had nothing new: 5–6 % of the server's CPU with 10 000 subscribers
//! (bench/profile.sh, docs/benchmarks.md). Behind a gate each of them is
//! polled with a waker of its own, which marks the gate open and wakes the
//! task; until it fires, polling the gate costs one atomic load, and the
//! flags of all of a task's gates share one cache line.

use std::mem::ManuallyDrop;
use std::sync::PoisonError;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::shim::{Arc, AtomicBool, Mutex, Ordering};

/// How many gates one task may have: a gate's index rides in the low bits
/// of its waker's pointer to the shared state (aligned to 8).
const MAX_GATES: usize = 4;
const INDEX_BITS: usize = MAX_GATES - 1;

/// The gates of one task: which are open, and the task to wake, in one
/// allocation (the only one: a gate's waker is that allocation's pointer
/// tagged with the gate's index), so that the hot path — a poll that finds
/// every gate shut — touches one cache line, and an idle session pays for
/// one small block.
pub(crate) struct Gates {
    shared: Arc<Shared>,
    /// The waker last given to `shared.task`, kept in the task's own state
    /// so that re-registering the same waker costs a comparison.
    last: Option<Waker>,
    made: usize,
}

#[repr(align(8))]
struct Shared {
    /// Gate `i` is open: its branch's waker fired (or it was armed) since
    /// its last poll.
    open: [AtomicBool; MAX_GATES],
    /// The task to wake when a branch's waker fires. Waking borrows it, so
    /// it stays registered until the task's waker changes.
    task: Mutex<Option<Waker>>,
}

impl Shared {
    fn fire(&self, index: usize) {
        self.open[index].store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = task.as_ref() {
            w.wake_by_ref();
        }
    }
}

/// One branch of a task's wait, polled only when woken (or armed).
pub(crate) struct Gate {
    shared: Arc<Shared>,
    index: usize,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            shared: Arc::new(Shared {
                open: Default::default(),
                task: Mutex::new(None),
            }),
            last: None,
            made: 0,
        }
    }
}

impl Gates {
    /// A new gate of this set, open: its first poll goes through.
    ///
    /// # Panics
    /// When the set already has `MAX_GATES` gates (a programming error).
    pub fn gate(&mut self) -> Gate {
        assert!(self.made < MAX_GATES, "at most {MAX_GATES} gates per task");
        let index = self.made;
        self.made += 1;
        self.shared.open[index].store(true, Ordering::Release);
        Gate {
            shared: self.shared.clone(),
            index,
        }
    }

    /// Makes `cx`'s waker the one the gates wake; call it in every poll
    /// of the task, before polling its gates. Free when it is the same
    /// waker as last time (a task's waker rarely changes).
    pub fn register(&mut self, cx: &Context<'_>) {
        if self.last.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return;
        }
        let w = cx.waker().clone();
        *self
            .shared
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(w.clone());
        self.last = Some(w);
    }
}

impl Gate {
    /// Polls the branch with `poll` — with the gate's waker in place of
    /// the task's — if the gate is open, closing it first; `Pending`
    /// without polling otherwise. The task registered with its [`Gates`]
    /// is woken when the branch's waker fires.
    pub fn poll<T>(&self, poll: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        let open = &self.shared.open[self.index];
        if !open.load(Ordering::Acquire) || !open.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        // The index in the pointer's low bits, its provenance kept.
        let tagged = Arc::as_ptr(&self.shared)
            .map_addr(|a| a | self.index)
            .cast::<()>();
        // SAFETY: `tagged` is this gate's `Arc<Shared>` pointer (aligned to
        // 8, so the index fits in its low bits) as `VTABLE` expects. The
        // waker borrows the gate's reference — it is never dropped
        // (`ManuallyDrop`) and the gate outlives it — while every clone
        // the branch keeps takes a reference of its own.
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(tagged, &VTABLE)) });
        poll(&mut Context::from_waker(&waker))
    }

    /// Opens the gate: the next poll goes through. For a branch that just
    /// yielded (a stream may hold more without waking anyone) or whose
    /// state changed outside a poll (a timer that was reset).
    pub fn arm(&self) {
        self.shared.open[self.index].store(true, Ordering::Release);
    }
}

/// A gate's waker: a strong reference to its `Shared`, tagged with the
/// gate's index.
static VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

fn untag(tagged: *const ()) -> (*const Shared, usize) {
    let index = tagged.addr() & INDEX_BITS;
    (tagged.map_addr(|a| a & !INDEX_BITS).cast::<Shared>(), index)
}

unsafe fn waker_clone(tagged: *const ()) -> RawWaker {
    // SAFETY: `tagged` holds (or borrows from its gate) a strong reference.
    unsafe { Arc::increment_strong_count(untag(tagged).0) };
    RawWaker::new(tagged, &VTABLE)
}

unsafe fn waker_wake(tagged: *const ()) {
    // SAFETY: as in `waker_wake_by_ref`; then the reference is given up.
    unsafe {
        waker_wake_by_ref(tagged);
        waker_drop(tagged);
    }
}

unsafe fn waker_wake_by_ref(tagged: *const ()) {
    let (shared, index) = untag(tagged);
    // SAFETY: the waker holds a strong reference, so `Shared` is alive.
    unsafe { &*shared }.fire(index);
}

unsafe fn waker_drop(tagged: *const ()) {
    // SAFETY: gives up the strong reference this waker held.
    unsafe { Arc::decrement_strong_count(untag(tagged).0) };
}

#[cfg(all(test, not(feedgate_loom)))]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::sync::atomic::AtomicUsize;

    /// A branch that counts its polls and is ready once `ready` is set.
    struct Branch {
        polls: AtomicUsize,
        ready: AtomicBool,
        waker: std::sync::Mutex<Option<std::task::Waker>>,
    }

    #[tokio::test]
    async fn polls_a_branch_only_after_its_waker_fired() {
        let mut gates = Gates::default();
        let gate = gates.gate();
        let branch = Branch {
            polls: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
            waker: std::sync::Mutex::new(None),
        };
        let mut poll = |cx: &mut Context<'_>| {
            gates.register(cx);
            gate.poll(|cx| {
                branch.polls.fetch_add(1, Ordering::SeqCst);
                *branch.waker.lock().unwrap() = Some(cx.waker().clone());
                match branch.ready.load(Ordering::SeqCst) {
                    true => Poll::Ready(()),
                    false => Poll::Pending,
                }
            })
        };
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        // Open at first: polled once; then closed, however often the task polls.
        assert!(poll(&mut cx).is_pending());
        assert!(poll(&mut cx).is_pending());
        assert!(poll(&mut cx).is_pending());
        assert_eq!(branch.polls.load(Ordering::SeqCst), 1);
        // Its own waker fires: polled again, and ready.
        branch.ready.store(true, Ordering::SeqCst);
        let fired = branch.waker.lock().unwrap().take().unwrap();
        fired.wake();
        assert!(poll(&mut cx).is_ready());
        assert_eq!(branch.polls.load(Ordering::SeqCst), 2);
        // Armed by hand: polled once more.
        assert!(poll(&mut cx).is_pending());
        gate.arm();
        assert!(poll(&mut cx).is_ready());
        assert_eq!(branch.polls.load(Ordering::SeqCst), 3);
        // Every waker the branch kept holds its own reference, and gives it
        // back: only the set and its gate remain.
        let kept = branch.waker.lock().unwrap().take().unwrap();
        let copy = kept.clone();
        assert_eq!(Arc::strong_count(&gates.shared), 4);
        drop((kept, copy));
        assert_eq!(Arc::strong_count(&gates.shared), 2);
    }

    #[tokio::test]
    async fn the_branch_waker_wakes_the_task() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let task = tokio::spawn(async move {
            let mut gates = Gates::default();
            let gate = gates.gate();
            poll_fn(|cx| {
                gates.register(cx);
                gate.poll(|cx| rx.poll_recv(cx))
            })
            .await
        });
        tokio::task::yield_now().await;
        tx.send(()).await.unwrap();
        // The receiver's wake-up reaches the task through the gate.
        assert_eq!(task.await.unwrap(), Some(()));
    }
}
