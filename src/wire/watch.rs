//! A socket whose writes have been refused (the peer's receive window is
//! full) for too long: the connection's writer is not reading, and the
//! server drops the connection rather than hold it (`--write-timeout`).
//! Also holds the connection's place under `--max-connections`, released
//! when the socket is dropped — for an upgraded WebSocket, when its
//! session ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use super::Meter;

/// The write side of one socket, watched.
pub(crate) struct SocketWatch {
    /// Since when writes have been refused, in nanoseconds after `BASE`
    /// plus one (0: they are not), so a write clears it without a lock.
    blocked_since: AtomicU64,
    /// Signalled when writes start being blocked, so a watchdog sleeps
    /// until then instead of polling every connection.
    blocked: tokio::sync::Notify,
    /// The connection-limit permit.
    _permit: Option<OwnedSemaphorePermit>,
}

/// The instant `blocked_since` counts from.
static BASE: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

fn since_base(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(*BASE).as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

impl SocketWatch {
    /// A watch holding the connection's `permit`, if it has one.
    pub fn new(permit: Option<OwnedSemaphorePermit>) -> Self {
        SocketWatch {
            blocked_since: AtomicU64::new(0),
            blocked: tokio::sync::Notify::new(),
            _permit: permit,
        }
    }

    /// Resolves once writes have been blocked for `limit` without a byte
    /// getting through. Costs nothing while writes flow.
    pub async fn stuck_for(&self, limit: Duration) {
        loop {
            // Registered before the state is read: a block that starts in
            // between is not missed, and one that started before this
            // watchdog did (a second one, after a drain began) is seen.
            let notified = self.blocked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            loop {
                let blocked = match self.blocked_since.load(Ordering::Relaxed) {
                    0 => None,
                    at => Some(BASE.elapsed().saturating_sub(Duration::from_nanos(at - 1))),
                };
                match blocked {
                    None => break,
                    Some(d) if d >= limit => return,
                    Some(d) => tokio::time::sleep(limit - d).await,
                }
            }
            notified.await;
        }
    }
}

impl Meter for SocketWatch {
    fn on_read(&self, _: usize) {}

    fn on_write(&self, _: usize) {
        if self.blocked_since.load(Ordering::Relaxed) != 0 {
            self.blocked_since.store(0, Ordering::Relaxed);
        }
    }

    fn on_write_blocked(&self) {
        let now = since_base(Instant::now());
        let newly = self
            .blocked_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if newly {
            self.blocked.notify_waiters();
        }
    }
}
