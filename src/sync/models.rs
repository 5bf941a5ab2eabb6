//! Model tests of the primitives in this folder: loom runs each closure
//! under every interleaving of its threads' atomic and lock operations (see
//! `shim.rs`), so a property that holds here holds for every schedule, not
//! just the ones a stress test happened to hit.
//!
//! ```sh
//! RUSTFLAGS="--cfg feedgate_loom" cargo test --release --lib sync::models
//! ```
//!
//! What each proves: no wake-up is lost when the event races the wait (the
//! waiter either sees the event or is woken, exactly once), no increment is
//! lost when counting races folding, and the wake gate's raw wakers keep
//! their shared state alive exactly as long as any of them lives (loom
//! fails a model that leaks or double-frees an `Arc`).

use std::sync::atomic::{AtomicUsize as StdCount, Ordering as StdOrdering};
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::Arc;
use loom::thread;

use super::head_signal;
use super::sharded_counter::ShardedCounter;
use super::stop_signal::StopSignal;
use super::wake_gate::Gates;

/// A waker that counts its wake-ups (a plain std atomic: read after the
/// model's threads are joined, so it needs no modelling).
#[derive(Default)]
struct Counted(StdCount);

impl Wake for Counted {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, StdOrdering::SeqCst);
    }
}

fn counted() -> (std::sync::Arc<Counted>, Waker) {
    let c = std::sync::Arc::new(Counted::default());
    let w = Waker::from(c.clone());
    (c, w)
}

/// A watch that waits while the server stops is either stopped when it
/// looks, or woken exactly once; and it is stopped afterwards.
#[test]
fn a_stop_racing_a_wait_is_never_missed() {
    loom::model(|| {
        let signal = Arc::new(StopSignal::default());
        let mut watch = signal.watch();
        let stopper = {
            let signal = signal.clone();
            thread::spawn(move || signal.stop())
        };
        let (count, waker) = counted();
        let pending = watch
            .poll_stopped(&Context::from_waker(&waker))
            .is_pending();
        stopper.join().unwrap();
        let woken = count.0.load(StdOrdering::SeqCst);
        assert!(!pending || woken == 1, "pending and woken {woken} times");
        assert!(pending || woken == 0, "ready, yet woken");
        assert!(watch.is_stopped());
        drop(watch);
    });
}

/// A reader waiting beyond the head while a publish moves it: it sees the
/// new head, or is woken exactly once.
#[test]
fn a_publish_racing_a_wait_is_never_missed() {
    loom::model(|| {
        let tx = Arc::new(head_signal::channel(0u64));
        let mut rx = tx.subscribe();
        let publisher = {
            let tx = tx.clone();
            thread::spawn(move || {
                tx.send_if_modified(|h| {
                    *h = 1;
                    true
                });
            })
        };
        let (count, waker) = counted();
        let cx = Context::from_waker(&waker);
        let poll = rx.poll_ready(&cx, &mut |h: &u64| *h > 0);
        publisher.join().unwrap();
        let woken = count.0.load(StdOrdering::SeqCst);
        match poll {
            Poll::Ready(h) => assert_eq!((h, woken), (1, 0)),
            Poll::Pending => {
                assert_eq!(woken, 1, "a waiter the publish did not wake");
                assert_eq!(rx.poll_ready(&cx, &mut |h: &u64| *h > 0), Poll::Ready(1));
            }
        }
    });
}

/// Increments racing a fold are all counted, once.
#[test]
fn increments_racing_a_fold_are_all_counted() {
    loom::model(|| {
        let total = prometheus::IntCounter::new("t", "t").unwrap();
        let counter = Arc::new(ShardedCounter::new(total.clone()));
        let adders: Vec<_> = (0..2)
            .map(|_| {
                let counter = counter.clone();
                thread::spawn(move || {
                    counter.inc_by(2);
                    counter.inc();
                })
            })
            .collect();
        counter.fold();
        for a in adders {
            a.join().unwrap();
        }
        assert_eq!(counter.get(), 6);
    });
}

/// A gate's branch waker fired from another thread while the task polls
/// the gate: the firing is seen by that poll, or leaves the gate open and
/// the task woken. Every raw waker's reference is given back (loom checks
/// the `Arc` for leaks and double frees).
#[test]
fn a_branch_firing_while_the_task_polls_is_never_lost() {
    loom::model(|| {
        let mut gates = Gates::default();
        let gate = gates.gate();
        let (task, task_waker) = counted();
        let cx = Context::from_waker(&task_waker);
        gates.register(&cx);
        // The first poll goes through (a new gate is open): the branch
        // keeps a clone of the gate's waker, as a socket would.
        let mut kept = None;
        let first: Poll<()> = gate.poll(|cx| {
            kept = Some(cx.waker().clone());
            Poll::Pending
        });
        assert!(first.is_pending());
        let branch = kept.take().unwrap();
        let firer = thread::spawn(move || branch.wake());
        let mut seen = false;
        let _: Poll<()> = gate.poll(|_| {
            seen = true;
            Poll::Pending
        });
        firer.join().unwrap();
        if !seen {
            assert!(
                task.0.load(StdOrdering::SeqCst) >= 1,
                "the task was not woken"
            );
            let mut now = false;
            let _: Poll<()> = gate.poll(|_| {
                now = true;
                Poll::Pending
            });
            assert!(now, "the firing left the gate shut");
        }
        drop(gate);
        drop(gates);
    });
}
