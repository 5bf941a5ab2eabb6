//! Under TLS the socket carries ciphertext — records of plaintext plus a
//! header and a tag each, and handshakes — while transports are known only
//! for the plaintext above. The ledger of a connection shares the socket's
//! bytes out to the transports of the plaintext they carried, so that the
//! wire counters stay what crossed the socket, exactly:
//!
//! - bytes before any plaintext was attributed (the TLS handshake, an
//!   HTTP/2 preface) go to the first request's transport;
//! - after that, socket bytes pay for the attributed plaintext they
//!   carried, and what a record adds (header, content type, tag) is shared
//!   out in proportion to the plaintext of each transport since the last
//!   settling: written bytes settle as the plaintext is written (its
//!   records reached the socket within the same write), read bytes once
//!   the reader above has taken everything decrypted so far;
//! - what is left when the connection ends goes to the transport of the
//!   last plaintext (`other` if there was none).
//!
//! So the sum over transports equals the socket's bytes, and a connection
//! that carries one transport is attributed exactly. With several (HTTP/2
//! streams of different transports) a record's overhead is shared by the
//! plaintext that settled with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::Meter;
use super::account::Dir;
use crate::metrics::{Link, Metrics, Transport};

/// One connection's socket bytes, shared out to transports.
pub(crate) struct TlsLedger {
    metrics: Arc<Metrics>,
    /// HTTP/2 or not is known only once the handshake chose it by ALPN;
    /// nothing is counted before (the handshake waits for plaintext).
    h2: AtomicBool,
    state: Mutex<[Side; 2]>,
}

/// One direction's account.
#[derive(Default)]
struct Side {
    /// Socket bytes not yet attributed.
    cipher: u64,
    /// Plaintext attributed to each transport, not yet paid for.
    plain: [u64; Transport::ALL.len()],
    /// The transport of the latest plaintext.
    last: Option<Transport>,
}

impl Side {
    /// Shares `self.cipher` out to the unpaid plaintext; the shares, by
    /// transport.
    fn settle(&mut self) -> [u64; Transport::ALL.len()] {
        let mut out = [0; Transport::ALL.len()];
        let unpaid: u64 = self.plain.iter().fold(0, |n, p| n.saturating_add(*p));
        if unpaid == 0 || self.cipher == 0 {
            return out;
        }
        let paid = self.cipher.min(unpaid);
        // Socket bytes beyond the plaintext (record overhead, handshakes)
        // go with the plaintext in proportion to it; when the socket has
        // carried only part of the plaintext so far, that part is shared
        // the same way.
        let share = |n: u64, total: u64, of: u64| -> u64 {
            // n ≤ of, so the product fits in u128 and the share in u64.
            (u128::from(total) * u128::from(n) / u128::from(of)) as u64
        };
        let mut given = 0u64;
        for (i, p) in self.plain.iter().enumerate() {
            out[i] = share(*p, self.cipher, unpaid);
            given += out[i];
        }
        // The rounding remainder goes to the latest plaintext's transport
        // (or the largest share), so nothing is lost.
        let rest = self.cipher - given;
        let to = self
            .last
            .map(|t| t as usize)
            .filter(|&i| self.plain[i] > 0)
            .unwrap_or_else(|| argmax(&self.plain));
        out[to] += rest;
        if paid == unpaid {
            self.plain = [0; Transport::ALL.len()];
        } else {
            for (i, p) in self.plain.iter_mut().enumerate() {
                *p -= out[i].min(*p);
            }
        }
        self.cipher = 0;
        out
    }
}

fn argmax(xs: &[u64]) -> usize {
    xs.iter()
        .enumerate()
        .max_by_key(|(_, x)| **x)
        .map_or(0, |(i, _)| i)
}

impl TlsLedger {
    /// The ledger of a TLS connection on `link` (its protocol may be set
    /// later: [`TlsLedger::set_link`]).
    pub fn new(metrics: Arc<Metrics>, link: Link) -> Self {
        TlsLedger {
            metrics,
            h2: AtomicBool::new(link.h2),
            state: Mutex::new(Default::default()),
        }
    }

    /// The protocol ALPN chose.
    pub fn set_link(&self, link: Link) {
        self.h2.store(link.h2, Ordering::Relaxed);
    }

    fn link(&self) -> Link {
        Link {
            h2: self.h2.load(Ordering::Relaxed),
            tls: true,
        }
    }

    fn side<R>(&self, dir: Dir, f: impl FnOnce(&mut Side) -> R) -> R {
        let mut sides = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut sides[dir as usize])
    }

    /// `n` plaintext bytes going `dir` served `t`.
    /// Written plaintext is settled at once: TLS hands a write's records
    /// to the socket before the write returns, so they are here already
    /// (or follow, and settle as they come). Read plaintext settles once
    /// the reader above waits for more ([`TlsLedger::settle`]): the records
    /// it came in may hold other streams' bytes too.
    pub fn plain(&self, dir: Dir, t: Transport, n: u64) {
        let shares = self.side(dir, |s| {
            s.plain[t as usize] = s.plain[t as usize].saturating_add(n);
            s.last = Some(t);
            (dir == Dir::Out).then(|| s.settle())
        });
        if let Some(shares) = shares {
            self.count(dir, shares);
        }
    }

    /// Settles `dir` now: the plaintext above has taken everything the
    /// socket brought so far.
    pub fn settle(&self, dir: Dir) {
        let shares = self.side(dir, Side::settle);
        self.count(dir, shares);
    }

    fn count(&self, dir: Dir, shares: [u64; Transport::ALL.len()]) {
        for (i, n) in shares.into_iter().enumerate() {
            if n > 0 {
                let lm = self.metrics.transport(Transport::ALL[i]).on(self.link());
                match dir {
                    Dir::In => lm.wire_in.inc_by(n),
                    Dir::Out => lm.wire_out.inc_by(n),
                }
            }
        }
    }

    fn cipher(&self, dir: Dir, n: usize) {
        let shares = self.side(dir, |s| {
            s.cipher = s.cipher.saturating_add(n as u64);
            (dir == Dir::Out).then(|| s.settle())
        });
        if let Some(shares) = shares {
            self.count(dir, shares);
        }
    }
}

/// The socket's bytes, as they cross it.
impl Meter for TlsLedger {
    fn on_read(&self, n: usize) {
        self.cipher(Dir::In, n);
    }

    fn on_write(&self, n: usize) {
        self.cipher(Dir::Out, n);
    }
}

impl Drop for TlsLedger {
    fn drop(&mut self) {
        let sides = std::mem::take(self.state.get_mut().unwrap_or_else(PoisonError::into_inner));
        for (dir, mut side) in [Dir::In, Dir::Out].into_iter().zip(sides) {
            let mut shares = side.settle();
            // Never-settled socket bytes (a handshake that led nowhere, the
            // close_notify after the last request): the last transport's.
            let last = side.last.unwrap_or(Transport::Other);
            shares[last as usize] += side.cipher;
            self.count(dir, shares);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TLS: Link = Link {
        h2: false,
        tls: true,
    };

    fn wire(m: &Metrics, t: Transport) -> (u64, u64) {
        let lm = m.transport(t).on(TLS);
        (lm.wire_in.get(), lm.wire_out.get())
    }

    #[test]
    fn one_transport_gets_every_socket_byte() {
        let m = Arc::new(Metrics::new());
        let l = TlsLedger::new(m.clone(), TLS);
        // Handshake both ways, then a request and its answer.
        l.on_read(517);
        l.on_write(3000);
        l.on_read(64);
        l.on_read(522);
        l.plain(Dir::In, Transport::Poll, 500);
        l.settle(Dir::In);
        // TLS writes a write's records before the write returns.
        l.on_write(322);
        l.plain(Dir::Out, Transport::Poll, 300);
        assert_eq!(wire(&m, Transport::Poll), (517 + 64 + 522, 3000 + 322));
        drop(l);
        assert_eq!(wire(&m, Transport::Poll), (517 + 64 + 522, 3000 + 322));
    }

    #[test]
    fn overhead_goes_with_its_plaintext_and_the_sum_is_exact() {
        let m = Arc::new(Metrics::new());
        let l = TlsLedger::new(m.clone(), TLS);
        // Records of two transports' plaintext, then the plaintext.
        l.on_write(444); // 400 of plaintext, 44 of overhead
        l.plain(Dir::Out, Transport::Sse, 300);
        assert_eq!(wire(&m, Transport::Sse).1, 444, "all it carried so far");
        l.plain(Dir::Out, Transport::Ws, 100);
        l.on_write(111);
        assert_eq!(wire(&m, Transport::Ws).1, 111);
        // A socket write that carries only part of the next plaintext
        // (the socket was full), then the rest.
        l.on_write(500);
        l.plain(Dir::Out, Transport::Sse, 1000);
        l.on_write(522);
        drop(l);
        let total: u64 = Transport::ALL.iter().map(|t| wire(&m, *t).1).sum();
        assert_eq!(total, 444 + 111 + 500 + 522);
        assert_eq!(wire(&m, Transport::Sse).1, 444 + 1022);
        // Read records of two transports settle together, in proportion.
        let m = Arc::new(Metrics::new());
        let l = TlsLedger::new(m.clone(), TLS);
        l.on_read(444);
        l.plain(Dir::In, Transport::Sse, 300);
        l.plain(Dir::In, Transport::Ws, 100);
        l.settle(Dir::In);
        assert_eq!(
            (wire(&m, Transport::Sse).0, wire(&m, Transport::Ws).0),
            (333, 111)
        );
    }

    #[test]
    fn bytes_that_carried_nothing_go_to_the_last_transport_or_other() {
        let m = Arc::new(Metrics::new());
        let l = TlsLedger::new(m.clone(), TLS);
        l.on_read(300); // a handshake that led nowhere
        drop(l);
        assert_eq!(wire(&m, Transport::Other).0, 300);
    }
}
