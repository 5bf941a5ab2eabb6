//! Where one connection's attributed bytes are counted: straight into the
//! transport's wire counters on its link, or — under TLS — into the
//! connection's ledger, which counts the ciphertext that carried them. And
//! which transport the connection is counted under in
//! `feedgate_connections` (that of its latest request or stream).

use std::sync::{Arc, Mutex, PoisonError};

use super::tls_ledger::TlsLedger;
use crate::metrics::{Link, Metrics, Transport};

/// A direction on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Read from the peer.
    In,
    /// Written to the peer.
    Out,
}

/// The counting side of one connection.
pub(crate) struct Account {
    metrics: Arc<Metrics>,
    link: Link,
    /// Under TLS: the ciphertext ledger the classified plaintext goes to.
    ledger: Option<Arc<TlsLedger>>,
    /// The transport the connection is counted under now.
    gauge: Mutex<Transport>,
}

impl Account {
    /// A connection on `link`, counted under `other` until a request says
    /// otherwise. `ledger`: the TLS ledger of a TLS connection.
    pub fn new(metrics: Arc<Metrics>, link: Link, ledger: Option<Arc<TlsLedger>>) -> Self {
        metrics
            .transport(Transport::Other)
            .on(link)
            .connections
            .inc();
        Account {
            metrics,
            link,
            ledger,
            gauge: Mutex::new(Transport::Other),
        }
    }

    /// `n` bytes going `dir` served transport `t` (plaintext under TLS).
    pub fn add(&self, dir: Dir, t: Transport, n: u64) {
        if n == 0 {
            return;
        }
        match &self.ledger {
            Some(ledger) => ledger.plain(dir, t, n),
            None => {
                let lm = self.metrics.transport(t).on(self.link);
                match dir {
                    Dir::In => lm.wire_in.inc_by(n),
                    Dir::Out => lm.wire_out.inc_by(n),
                }
            }
        }
    }

    /// Everything read so far has been attributed (the reader waits for
    /// more): under TLS, the ciphertext that carried it can be settled.
    pub fn read_idle(&self) {
        if let Some(ledger) = &self.ledger {
            ledger.settle(Dir::In);
        }
    }

    /// The connection is counted under `t` from now.
    pub fn count_under(&self, t: Transport) {
        let mut gauge = self.gauge.lock().unwrap_or_else(PoisonError::into_inner);
        if *gauge != t {
            self.metrics
                .transport(*gauge)
                .on(self.link)
                .connections
                .dec();
            self.metrics.transport(t).on(self.link).connections.inc();
            *gauge = t;
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let gauge = *self.gauge.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.metrics
            .transport(gauge)
            .on(self.link)
            .connections
            .dec();
    }
}
