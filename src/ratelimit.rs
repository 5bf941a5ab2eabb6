//! Per-client publish rate limiting: a token bucket per client IP address.
//!
//! The table of buckets is bounded: when it is full, buckets that have
//! refilled completely (clients that went quiet) are dropped; if every
//! bucket is busy the table is cleared, which errs on the side of serving.

use std::collections::HashMap;

use hyper::header::HeaderMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most clients tracked at once.
const MAX_CLIENTS: usize = 100_000;
/// The wait told to a client when the rate is too small for the wait to be
/// a `Duration` at all.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A token bucket per client.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `rate` requests per second with bursts of up to `burst`; `None` when
    /// `rate` is 0 (unlimited).
    pub fn new(rate: f64, burst: f64) -> Option<RateLimiter> {
        // NaN is not > 0: off, like 0. NaN.max(1.0) is 1.0.
        (rate > 0.0).then(|| RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token for `client`, or says how long until one is there.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + rate * now.duration_since(b.at).as_secs_f64() < burst);
            if buckets.len() >= MAX_CLIENTS {
                buckets.clear();
            }
        }
        let b = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = (b.tokens + self.rate * now.duration_since(b.at).as_secs_f64()).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            // `Config::validate` keeps the rate sane; a limiter built
            // directly with a tiny rate still gets an answer, not a panic.
            let wait = (1.0 - b.tokens) / self.rate;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(MAX_WAIT))
        }
    }
}

/// The client a request is from: the peer, or — when the peer is a trusted
/// proxy — the nearest `X-Forwarded-For` address that is not itself a
/// trusted proxy (addresses further left could be forged by the client).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.9".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 1.2.3.4".parse().unwrap());
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "5.5.5.5".parse().unwrap();
        assert_eq!(client_ip(stranger, &h, &[proxy]), stranger);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
        h.insert("x-forwarded-for", "1.2.3.4, 10.0.0.9".parse().unwrap());
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn allows_bursts_then_refills_at_the_rate() {
        let l = RateLimiter::new(10.0, 3.0).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at(ip, t0).is_ok());
        }
        let wait = l.check_at(ip, t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(l.check_at(other, t0).is_ok(), "clients are independent");
        assert!(l.check_at(ip, t0 + Duration::from_millis(100)).is_ok());
        assert!(RateLimiter::new(0.0, 1.0).is_none());
    }

    #[test]
    fn a_tiny_rate_gives_a_long_wait_not_a_panic() {
        let l = RateLimiter::new(1e-30, 1.0).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(l.check_at(ip, t0).is_ok());
        assert_eq!(l.check_at(ip, t0), Err(MAX_WAIT));
    }
}
