//! Coming back after a restart without a reconnect storm.
//!
//! A draining server says so on every transport (docs/protocol.md,
//! "Restarts"): WebSocket close 1012, an SSE `restart` event (with a
//! `retry:`) before the stream ends, a long poll answered with
//! `Retry-After-Ms`. A subscriber with [`Resume`] options then waits — the
//! server's delay, which it drew at random per client, or a random share of
//! [`Resume::spread`] when it gave none (1012) — and reconnects from its
//! cursor. A refused or failed reconnect (the new process is not up yet)
//! backs off with "full jitter": a random delay in `[0, min(max, base·2ⁿ)]`.
//! Every delay is random, so thousands of subscribers of one node come
//! back spread out, never all at once.

use std::time::Duration;

use hyper::StatusCode;

use super::ClientError;

/// How a subscriber reconnects after its server drained or went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// A drain signal without a delay (WebSocket 1012): wait a random
    /// delay in `[0, spread]`.
    pub spread: Duration,
    /// First backoff after a failed reconnect, doubled per failure.
    pub base: Duration,
    /// Largest backoff.
    pub max: Duration,
    /// Give up (return the last error) after this long without a
    /// connection.
    pub give_up: Duration,
}

impl Default for Resume {
    fn default() -> Self {
        Resume {
            spread: Duration::from_secs(5),
            base: Duration::from_millis(250),
            max: Duration::from_secs(10),
            give_up: Duration::from_secs(120),
        }
    }
}

impl Resume {
    /// The wait before the first reconnect: the server's hint when it gave
    /// one (already drawn at random for this client), else full jitter over
    /// `spread`.
    pub fn first_wait(&self, hint: Option<Duration>) -> Duration {
        hint.unwrap_or_else(|| self.spread.mul_f64(rand::random::<f64>()))
    }

    /// The wait after the `n`th failed reconnect in a row (from 1): full
    /// jitter, a random delay in `[0, min(max, base·2ⁿ⁻¹)]`.
    pub fn backoff(&self, n: u32) -> Duration {
        let cap = self
            .base
            .saturating_mul(1 << n.saturating_sub(1).min(20))
            .min(self.max);
        cap.mul_f64(rand::random::<f64>())
    }
}

/// Whether reconnecting may cure `e`: the connection failed or ended, or
/// the server is draining or overloaded (`503`, `429`). A `4xx` refusal
/// (bad topic, auth) or a protocol error is final.
pub(crate) fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Io(_)
        | ClientError::Http(_)
        | ClientError::Ws(_)
        | ClientError::Closed
        | ClientError::Restarting { .. } => true,
        ClientError::Status { status, .. } => {
            *status == StatusCode::SERVICE_UNAVAILABLE || *status == StatusCode::TOO_MANY_REQUESTS
        }
        ClientError::Protocol(_) | ClientError::Usage(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_jittered_and_bounded() {
        let r = Resume::default();
        let waits: Vec<Duration> = (0..100).map(|_| r.first_wait(None)).collect();
        assert!(waits.iter().all(|w| *w <= r.spread));
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 90, "full jitter draws differ");
        assert_eq!(
            r.first_wait(Some(Duration::from_millis(7))),
            Duration::from_millis(7)
        );
        for n in 1..40 {
            let cap = (r.base * 2u32.pow((n - 1).min(20))).min(r.max);
            assert!(r.backoff(n) <= cap);
        }
    }
}
