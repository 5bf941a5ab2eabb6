//! A Prometheus counter that the hot path increments without contention.
//!
//! Every WebSocket write adds to `feedgate_wire_bytes_total` and every
//! delivery to `feedgate_events_delivered_total` and
//! `feedgate_payload_bytes_total`. With one shared atomic per series, the
//! runtime's worker threads take turns owning its cache line on every
//! increment (`ConnMeter::on_write` was ~2 % of the server's CPU with 10 000
//! WebSocket subscribers: bench/profile.sh, docs/benchmarks.md). A
//! [`ShardedCounter`] adds to a cache-line-padded slot of the calling
//! thread and folds the slots into the exported counter when it is read
//! ([`ShardedCounter::get`], and before every scrape), so the exposition
//! stays the plain counter and every read sees every increment made before
//! it.

use std::sync::atomic::AtomicUsize;

use super::shim::{AtomicU64, Ordering};

use prometheus::IntCounter;

/// Slots per counter; threads beyond this share them (still correct).
const SLOTS: usize = 8;

/// One slot on its own cache line.
#[derive(Default)]
#[repr(align(128))]
struct Slot(AtomicU64);

/// A counter incremented per thread slot, exported as `total`.
pub struct ShardedCounter {
    total: IntCounter,
    slots: [Slot; SLOTS],
}

/// The calling thread's slot index. (Which slot a thread gets matters
/// for speed only: a std atomic, not modelled.)
fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|s| *s)
}

impl ShardedCounter {
    /// Counts into `total` (a registered counter, or a child of a vector).
    pub fn new(total: IntCounter) -> Self {
        ShardedCounter {
            total,
            slots: Default::default(),
        }
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.slots[slot()].0.fetch_add(n, Ordering::Release);
    }

    /// Adds 1.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Moves what the slots hold into the exported counter.
    pub fn fold(&self) {
        let n = self
            .slots
            .iter()
            .fold(0u64, |n, s| n.saturating_add(s.0.swap(0, Ordering::AcqRel)));
        if n > 0 {
            self.total.inc_by(n);
        }
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.fold();
        self.total.get()
    }
}

#[cfg(all(test, not(feedgate_loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_thread_counts_and_reads_fold_them_into_the_export() {
        let total = IntCounter::new("t", "test").unwrap();
        let c = std::sync::Arc::new(ShardedCounter::new(total.clone()));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.inc_by(3);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Not exported until folded, then exact.
        assert_eq!(total.get(), 0);
        assert_eq!(c.get(), 36_000);
        assert_eq!(total.get(), 36_000);
        c.inc();
        c.fold();
        assert_eq!(total.get(), 36_001);
    }
}
