//! Counting what arrived: each subscriber's [`Sequence`] classifies every
//! stamp as new, duplicate or reordered; each transport's [`Tally`] sums
//! its subscribers and holds the latency histogram.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Latencies are recorded in µs, up to an hour, to 3 significant figures.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// A subscriber hands its latencies to the shared histogram in batches, so
/// the lock is taken once per this many deliveries, not once per delivery.
const FLUSH_EVERY: usize = 256;

/// One subscriber's view of the publish counter.
#[derive(Debug, Default)]
pub struct Sequence {
    /// Highest counter seen.
    highest: Option<u64>,
    /// Counters below `highest` not seen yet: start → end (exclusive).
    holes: BTreeMap<u64, u64>,
    /// Distinct counters received.
    pub received: u64,
    /// Counters received again.
    pub dup: u64,
    /// Counters received after a higher one.
    pub reordered: u64,
}

/// How one received counter was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The first time, in order.
    New,
    /// The first time, but after a higher counter.
    Reordered,
    /// Seen before.
    Dup,
}

impl Sequence {
    /// Classifies counter `n`.
    pub fn on(&mut self, n: u64) -> Arrival {
        let arrival = match self.highest {
            Some(h) if n <= h => {
                if self.take_hole(n) {
                    self.reordered += 1;
                    Arrival::Reordered
                } else {
                    self.dup += 1;
                    return Arrival::Dup;
                }
            }
            prev => {
                let from = prev.map_or(0, |h| h + 1);
                if n > from {
                    self.holes.insert(from, n);
                }
                self.highest = Some(n);
                Arrival::New
            }
        };
        self.received += 1;
        arrival
    }

    /// Removes `n` from the holes; `false` if it was not missing.
    fn take_hole(&mut self, n: u64) -> bool {
        let Some((&start, &end)) = self.holes.range(..=n).next_back() else {
            return false;
        };
        if n >= end {
            return false;
        }
        self.holes.remove(&start);
        if start < n {
            self.holes.insert(start, n);
        }
        if n + 1 < end {
            self.holes.insert(n + 1, end);
        }
        true
    }
}

/// One transport's totals, shared by its subscribers.
pub struct Tally {
    /// Distinct events delivered, across subscribers (read live for the
    /// progress bar and the drain check).
    pub delivered: AtomicU64,
    /// Duplicates.
    pub dup: AtomicU64,
    /// Reordered.
    pub reordered: AtomicU64,
    /// Gap signals received.
    pub gaps: AtomicU64,
    /// Reset signals received.
    pub resets: AtomicU64,
    /// Subscribers whose connection failed or ended early.
    pub errors: AtomicU64,
    /// Subscribers that connected.
    pub connected: AtomicU64,
    /// Wire bytes received by the subscribers (counted at their sockets).
    pub bytes_down: AtomicU64,
    /// Wire bytes sent by the subscribers.
    pub bytes_up: AtomicU64,
    /// Requests (polls, stream opens, handshakes).
    pub requests: AtomicU64,
    /// Responses without an event.
    pub empty: AtomicU64,
    /// Bytes of payload-bearing messages received (event JSON or raw message).
    pub message_bytes: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    /// The first error seen, for the report.
    pub first_error: Mutex<Option<String>>,
    /// Subscribers by the link their connection spoke (`h2+tls`, …).
    links: Mutex<BTreeMap<String, u64>>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            delivered: AtomicU64::new(0),
            dup: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            empty: AtomicU64::new(0),
            message_bytes: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
            first_error: Mutex::new(None),
            links: Mutex::new(BTreeMap::new()),
        }
    }
}

/// An empty latency histogram (µs).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

impl Tally {
    /// A copy of the latency histogram.
    pub fn histogram(&self) -> Histogram<u64> {
        self.latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Notes the link a subscriber's connection spoke.
    pub fn used(&self, link: crate::client::Link) {
        *self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(link.name().to_owned())
            .or_insert(0) += 1;
    }

    /// Subscribers by link.
    pub fn links(&self) -> BTreeMap<String, u64> {
        self.links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Notes a subscriber's failure (the first message is kept).
    pub fn error(&self, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            *first = Some(e.to_string());
        }
    }
}

/// What one subscriber records while it runs; flushed into its [`Tally`].
pub struct Recorder<'a> {
    tally: &'a Tally,
    /// The subscriber's sequence.
    pub seq: Sequence,
    pending: Vec<u64>,
}

impl<'a> Recorder<'a> {
    /// A recorder reporting to `tally`.
    pub fn new(tally: &'a Tally) -> Self {
        Recorder {
            tally,
            seq: Sequence::default(),
            pending: Vec::with_capacity(FLUSH_EVERY),
        }
    }

    /// Records a received stamp at `now_us`.
    pub fn on(&mut self, n: u64, sent_us: u64, now_us: u64) {
        match self.seq.on(n) {
            Arrival::Dup => {
                self.tally.dup.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Arrival::Reordered => {
                self.tally.reordered.fetch_add(1, Ordering::Relaxed);
            }
            Arrival::New => {}
        }
        self.tally.delivered.fetch_add(1, Ordering::Relaxed);
        self.pending.push(now_us.saturating_sub(sent_us).max(1));
        if self.pending.len() >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// Hands buffered latencies to the shared histogram.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut h = self
            .tally
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for v in self.pending.drain(..) {
            let _ = h.record(v.min(MAX_LATENCY_US));
        }
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_arrivals() {
        let mut s = Sequence::default();
        assert_eq!(s.on(0), Arrival::New);
        assert_eq!(s.on(1), Arrival::New);
        assert_eq!(s.on(4), Arrival::New); // 2, 3 missing
        assert_eq!(s.on(3), Arrival::Reordered);
        assert_eq!(s.on(3), Arrival::Dup);
        assert_eq!(s.on(1), Arrival::Dup);
        assert_eq!(s.on(2), Arrival::Reordered);
        assert_eq!(s.on(2), Arrival::Dup);
        assert_eq!((s.received, s.dup, s.reordered), (5, 3, 2));
        assert!(s.holes.is_empty());
        let mut late = Sequence::default();
        assert_eq!(late.on(3), Arrival::New); // 0..3 missing
        assert_eq!(late.on(1), Arrival::Reordered);
        assert_eq!(late.holes.len(), 2);
    }
}
