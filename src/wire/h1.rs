//! HTTP/1.1: which transport each byte of a connection served, told by the
//! router as it classifies each request.
//!
//! The rules, for a connection that does not pipeline requests:
//! - bytes read before a request is routed are held as *pending*, and go to
//!   the request's transport once the router classifies it (or to `other`
//!   if it never is: a malformed request, a timeout, a refused connection);
//! - while a routed request is active (until its response body ends), reads
//!   and writes go to its transport;
//! - after the response body ends, writes still go to that transport (hyper
//!   writes the final chunk after the body reports its end), until the next
//!   request's first byte arrives;
//! - after a WebSocket upgrade every byte is `ws`, for good.
//!
//! The connection is counted in `feedgate_connections` under the transport
//! of its latest request. In the clear the meter sits on the socket itself;
//! under TLS it sits above TLS and the plaintext it attributes is settled
//! against the ciphertext by the connection's ledger.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

use super::Meter;
use super::account::{Account, Dir};
use crate::metrics::Transport;

/// Attributes one HTTP/1.1 connection's bytes to transports.
pub struct H1Meter {
    account: Account,
    state: Mutex<State>,
    /// Where writes go now, as a [`Transport`] index: read on every write,
    /// so kept out of the lock (the connection's own task is the only
    /// writer of every field here; the lock and the atomic only make the
    /// meter `Sync`).
    writing: AtomicU8,
}

struct State {
    /// Where reads go now; `None` means pending.
    reading: Option<Transport>,
    pending_in: u64,
    upgraded: bool,
}

impl H1Meter {
    /// A meter for a freshly accepted connection, counted under `other`.
    pub(crate) fn new(account: Account) -> Self {
        H1Meter {
            account,
            writing: AtomicU8::new(Transport::Other as u8),
            state: Mutex::new(State {
                reading: None,
                pending_in: 0,
                upgraded: false,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The router classified the current request as `t`.
    pub fn route(&self, t: Transport) {
        self.with(|s| {
            if s.upgraded {
                return;
            }
            self.account
                .add(Dir::In, t, std::mem::take(&mut s.pending_in));
            // One request at a time: what was read so far is all its own.
            self.account.read_idle();
            s.reading = Some(t);
            self.writing.store(t as u8, Ordering::Relaxed);
            self.account.count_under(t);
        });
    }

    /// The current response's body has ended (or was dropped).
    pub fn response_ended(&self) {
        self.with(|s| {
            if !s.upgraded {
                s.reading = None;
            }
        });
    }

    /// The connection was upgraded to WebSocket: every byte from now is `ws`.
    pub fn upgraded(&self) {
        self.route(Transport::Ws);
        self.with(|s| s.upgraded = true);
    }
}

impl Meter for H1Meter {
    fn on_read(&self, n: usize) {
        self.with(|s| match s.reading {
            Some(t) => self.account.add(Dir::In, t, n as u64),
            None => {
                s.pending_in = s.pending_in.saturating_add(n as u64);
                // The next request has begun: whatever it provokes before
                // it is routed (hyper's own 400, say) is `other`.
                self.writing
                    .store(Transport::Other as u8, Ordering::Relaxed);
            }
        });
        self.account.read_idle();
    }

    fn on_write(&self, n: usize) {
        let t = Transport::ALL[usize::from(self.writing.load(Ordering::Relaxed))];
        self.account.add(Dir::Out, t, n as u64);
    }
}

impl Drop for H1Meter {
    fn drop(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.account
            .add(Dir::In, Transport::Other, std::mem::take(&mut s.pending_in));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metrics::{Link, Metrics};

    fn wire(m: &Metrics, t: Transport) -> (u64, u64) {
        let lm = m.transport(t).on(Link::H1);
        (lm.wire_in.get(), lm.wire_out.get())
    }

    fn meter(m: &Arc<Metrics>) -> H1Meter {
        H1Meter::new(Account::new(m.clone(), Link::H1, None))
    }

    #[test]
    fn attributes_pending_reads_to_the_routed_transport() {
        let m = Arc::new(Metrics::new());
        let meter = meter(&m);
        meter.on_read(100); // request head, before routing
        meter.route(Transport::Poll);
        meter.on_write(50);
        meter.response_ended();
        meter.on_write(5); // final chunk after the body's end
        meter.on_read(80); // the next request
        meter.route(Transport::Sse);
        meter.on_write(30);
        meter.response_ended();
        meter.on_read(7); // never routed: a malformed third request
        meter.on_write(3); // hyper's 400
        drop(meter);
        assert_eq!(wire(&m, Transport::Poll), (100, 55));
        assert_eq!(wire(&m, Transport::Sse), (80, 30));
        assert_eq!(wire(&m, Transport::Other), (7, 3));
        for t in Transport::ALL {
            assert_eq!(m.transport(t).on(Link::H1).connections.get(), 0);
        }
    }

    #[test]
    fn upgrade_keeps_everything_on_ws() {
        let m = Arc::new(Metrics::new());
        let meter = meter(&m);
        meter.on_read(200);
        meter.upgraded();
        meter.response_ended();
        meter.on_write(129);
        meter.on_read(10);
        assert_eq!(m.transport(Transport::Ws).on(Link::H1).connections.get(), 1);
        drop(meter);
        assert_eq!(wire(&m, Transport::Ws), (210, 129));
        assert_eq!(m.transport(Transport::Ws).on(Link::H1).connections.get(), 0);
    }
}
