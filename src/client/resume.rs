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
use tokio::time::Instant;

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

/// One reconnect, attempt after attempt: how long to wait before each, and
/// when to give up.
#[derive(Debug)]
pub(super) struct Reconnect {
    policy: Resume,
    /// Give up after this.
    until: Instant,
    /// Failed attempts in a row, from 1 (the cause counts).
    failures: u32,
    /// Before the next attempt.
    wait: Duration,
}

impl Reconnect {
    /// Starts after `cause`: a drain signal waits the server's (or a
    /// random) delay; a connection that just broke retries after a first
    /// backoff.
    pub fn after(policy: Resume, cause: &ClientError) -> Reconnect {
        let wait = match cause {
            ClientError::Restarting { retry } => policy.first_wait(*retry),
            _ => policy.backoff(1),
        };
        Reconnect {
            policy,
            until: Instant::now() + policy.give_up,
            failures: 1,
            wait,
        }
    }

    /// The wait before the next attempt.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// An attempt failed with `e`: backs off further.
    ///
    /// # Errors
    /// `e` itself when it is final, or when the give-up time has passed.
    pub fn failed(&mut self, e: ClientError) -> Result<(), ClientError> {
        if !retryable(&e) || Instant::now() >= self.until {
            return Err(e);
        }
        self.wait = match e {
            ClientError::Restarting { retry } => self.policy.first_wait(retry),
            _ => {
                let wait = self.policy.backoff(self.failures);
                self.failures += 1;
                wait
            }
        };
        Ok(())
    }
}

/// Whether reconnecting may cure `e`: the connection failed or ended, or
/// the server is draining or overloaded (`503`, `429`). A `4xx` refusal
/// (bad topic, auth) or a protocol error is final.
pub(super) fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Io(_)
        | ClientError::Http(_)
        | ClientError::Ws(_)
        | ClientError::Closed
        | ClientError::Restarting { .. } => true,
        ClientError::Status { status, .. } => {
            *status == StatusCode::SERVICE_UNAVAILABLE || *status == StatusCode::TOO_MANY_REQUESTS
        }
        ClientError::Protocol(_) | ClientError::Tls(_) | ClientError::Usage(_) => false,
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

    #[test]
    fn a_reconnect_backs_off_and_gives_up_on_final_errors_or_in_time() {
        let r = Resume {
            give_up: Duration::from_secs(600),
            ..Resume::default()
        };
        let hint = Some(Duration::from_millis(1234));
        let plan = Reconnect::after(r, &ClientError::Restarting { retry: hint });
        assert_eq!(plan.wait(), Duration::from_millis(1234));
        let mut plan = Reconnect::after(r, &ClientError::Closed);
        assert!(plan.wait() <= r.base);
        for n in 1..=4u32 {
            plan.failed(ClientError::Closed).unwrap();
            assert!(plan.wait() <= r.base * 2u32.pow(n - 1));
        }
        let refused = ClientError::Status {
            status: StatusCode::FORBIDDEN,
            body: String::new(),
        };
        assert!(matches!(
            plan.failed(refused),
            Err(ClientError::Status { .. })
        ));
        let now = Resume {
            give_up: Duration::ZERO,
            ..r
        };
        let mut plan = Reconnect::after(now, &ClientError::Closed);
        assert!(matches!(
            plan.failed(ClientError::Closed),
            Err(ClientError::Closed)
        ));
    }
}
