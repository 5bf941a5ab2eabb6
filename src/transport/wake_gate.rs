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
//! task; until it fires, polling the gate costs one atomic swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::{ArcWake, AtomicWaker, waker_ref};

/// The task a set of gates wakes: registered once per poll of the task,
/// for all of its gates.
#[derive(Default)]
pub(crate) struct Gates {
    task: Arc<AtomicWaker>,
}

impl Gates {
    /// A new gate of this set, open: its first poll goes through.
    pub fn gate(&self) -> Gate {
        Gate {
            flag: Arc::new(Flag {
                open: AtomicBool::new(true),
                task: self.task.clone(),
            }),
        }
    }

    /// Makes `cx`'s waker the one the gates wake; call it in every poll
    /// of the task, before polling its gates.
    pub fn register(&self, cx: &Context<'_>) {
        self.task.register(cx.waker());
    }
}

/// One branch of a task's wait, polled only when woken (or armed).
pub(crate) struct Gate {
    flag: Arc<Flag>,
}

struct Flag {
    /// The branch's waker fired (or the gate was armed) since its last poll.
    open: AtomicBool,
    /// The task to wake when it fires.
    task: Arc<AtomicWaker>,
}

impl ArcWake for Flag {
    fn wake_by_ref(flag: &Arc<Self>) {
        flag.open.store(true, Ordering::Release);
        flag.task.wake();
    }
}

impl Gate {
    /// Polls the branch with `poll` — with the gate's waker in place of
    /// the task's — if the gate is open, closing it first; `Pending`
    /// without polling otherwise. The task registered with its [`Gates`]
    /// is woken when the branch's waker fires.
    pub fn poll<T>(&self, poll: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        if !self.flag.open.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = waker_ref(&self.flag);
        poll(&mut Context::from_waker(&waker))
    }

    /// Opens the gate: the next poll goes through. For a branch that just
    /// yielded (a stream may hold more without waking anyone) or whose
    /// state changed outside a poll (a timer that was reset).
    pub fn arm(&self) {
        self.flag.open.store(true, Ordering::Release);
    }
}

#[cfg(test)]
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
        let gates = Gates::default();
        let gate = gates.gate();
        let branch = Branch {
            polls: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
            waker: std::sync::Mutex::new(None),
        };
        let poll = |cx: &mut Context<'_>| {
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
    }

    #[tokio::test]
    async fn the_branch_waker_wakes_the_task() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let task = tokio::spawn(async move {
            let gates = Gates::default();
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
