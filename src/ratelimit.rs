//! Who may ask how often: a rate per client for publishes, `/probe/*` and
//! telemetry reports (GCRA, from `governor`), the client's address behind
//! trusted proxies, and the probes' concurrency slots. Admission
//! (`admit.rs`) asks these and turns a refusal into the one 429 answer.
//!
//! **The table of clients is bounded, and filling it harms no one
//! else.** A client is its IPv4 address, or its IPv6 /64 (one subscriber
//! line gets a /64, so rotating addresses within it gains nothing). When
//! the table is full, clients whose bucket has refilled (indistinguishable
//! from a new one) are dropped; if every bucket is still busy, a new client
//! shares one overflow bucket with every other newcomer until room frees
//! up — the clients already tracked keep their own buckets. (The table used
//! to be cleared instead, so a client rotating through addresses could
//! wipe everyone's limits.)

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use hyper::header::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most clients tracked at once, per limiter.
const MAX_CLIENTS: usize = 100_000;
/// The wait told to a client when the rate is too small for the wait to be
/// a `Duration` at all.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Reports a client may send per second to `POST /telemetry/switch`, and
/// in a burst.
const TELEMETRY_RATE: f64 = 0.5;
const TELEMETRY_BURST: f64 = 10.0;
/// Probes a client may start per second, and in a burst: a doctor run
/// makes about a dozen requests.
const PROBE_RATE: f64 = 1.0;
const PROBE_BURST: f64 = 30.0;
/// Probes that may run at once, in all and per client.
const MAX_PROBES: usize = 64;
const MAX_PROBES_PER_CLIENT: usize = 8;

/// Whom a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    /// An IPv4 address, or the first 64 bits of an IPv6 one.
    Addr(IpAddr),
    /// Every client that arrived while the table was full.
    Overflow,
}

impl Client {
    fn of(ip: IpAddr) -> Client {
        Client::Addr(match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
        })
    }
}

/// The buckets: each client's theoretical arrival time, at most `max`.
#[derive(Debug)]
struct Table {
    buckets: Mutex<HashMap<Client, Nanos>>,
    max: usize,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, HashMap<Client, Nanos>> {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for Table {
    type Key = Client;

    fn measure_and_replace<T, F, E>(&self, key: &Client, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut buckets = self.lock();
        let len = buckets.len();
        let key = match buckets.entry(*key) {
            Entry::Occupied(_) => *key,
            Entry::Vacant(_) if len < self.max => *key,
            Entry::Vacant(_) => Client::Overflow,
        };
        let (t, next) = f(buckets.get(&key).copied())?;
        buckets.insert(key, next);
        Ok(t)
    }
}

impl ShrinkableKeyedStateStore<Client> for Table {
    fn retain_recent(&self, drop_below: Nanos) {
        self.lock()
            .retain(|_, at| at.as_u64() > drop_below.as_u64());
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// A rate per client: `rate` requests a second, bursts of `burst`.
pub struct RateLimiter<C: Clock = DefaultClock> {
    gcra: governor::RateLimiter<Client, Table, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    max_clients: usize,
}

impl RateLimiter {
    /// `rate` requests per second with bursts of up to `burst`; `None` when
    /// `rate` is 0 (unlimited) or not a number.
    pub fn new(rate: f64, burst: f64) -> Option<RateLimiter> {
        // NaN is not > 0: off, like 0.
        (rate > 0.0).then(|| Self::build(rate, burst, MAX_CLIENTS, DefaultClock::default()))
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// A limiter of a positive `rate`. `Config::validate` keeps the rate
    /// and burst sane; one built directly with a tiny rate or a huge burst
    /// still gets a limiter (its wait capped at [`MAX_WAIT`]), not a panic.
    fn build(rate: f64, burst: f64, max_clients: usize, clock: C) -> Self {
        let period = Duration::try_from_secs_f64(1.0 / rate)
            .unwrap_or(MAX_WAIT)
            .max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(burst.clamp(1.0, f64::from(u32::MAX)) as u32)
            .unwrap_or(NonZeroU32::MIN);
        // `with_period` refuses only a zero period.
        let quota = Quota::with_period(period)
            .unwrap_or(Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        let table = Table {
            buckets: Mutex::new(HashMap::new()),
            max: max_clients,
        };
        RateLimiter {
            gcra: governor::RateLimiter::new(quota, table, clock.clone()),
            clock,
            max_clients,
        }
    }

    /// Takes one request of `client`'s allowance, or says how long until
    /// one is there.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.gcra.len() >= self.max_clients {
            // Clients that went quiet make room.
            self.gcra.retain_recent();
        }
        self.gcra
            .check_key(&Client::of(client))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()).min(MAX_WAIT))
    }
}

/// The limiter of `POST /telemetry/switch` reports.
pub(crate) fn telemetry() -> RateLimiter {
    RateLimiter::build(
        TELEMETRY_RATE,
        TELEMETRY_BURST,
        MAX_CLIENTS,
        DefaultClock::default(),
    )
}

/// Why a probe may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeRefusal {
    /// Past the client's rate: retry after this long.
    Rate(Duration),
    /// Too many probes run already, in all or from this client.
    Slots,
}

/// Admission of `/probe/*`: a rate per client, and bounded concurrency.
pub(crate) struct ProbeGate {
    rate: RateLimiter,
    slots: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

impl Default for ProbeGate {
    fn default() -> Self {
        ProbeGate {
            rate: RateLimiter::build(
                PROBE_RATE,
                PROBE_BURST,
                MAX_CLIENTS,
                DefaultClock::default(),
            ),
            slots: Arc::new(Semaphore::new(MAX_PROBES)),
            per_client: Mutex::new(HashMap::new()),
        }
    }
}

/// A running probe's place; given back when dropped (the stream ends, the
/// socket closes, the long poll answers).
pub(crate) struct ProbeSlot {
    gate: Arc<ProbeGate>,
    client: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for ProbeSlot {
    fn drop(&mut self) {
        let mut per = self.gate.lock_clients();
        if let Some(n) = per.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.client);
            }
        }
    }
}

impl ProbeGate {
    fn lock_clients(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one probe from `client`.
    ///
    /// # Errors
    /// Past the client's rate, or when too many probes run already.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<ProbeSlot, ProbeRefusal> {
        self.rate.check(client).map_err(ProbeRefusal::Rate)?;
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ProbeRefusal::Slots)?;
        let mut per = self.lock_clients();
        let n = per.entry(client).or_insert(0);
        if *n >= MAX_PROBES_PER_CLIENT {
            return Err(ProbeRefusal::Slots);
        }
        *n += 1;
        Ok(ProbeSlot {
            gate: self.clone(),
            client,
            _permit: permit,
        })
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
    use governor::clock::FakeRelativeClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(
        rate: f64,
        burst: f64,
        max: usize,
    ) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (RateLimiter::build(rate, burst, max, clock.clone()), clock)
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.9");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 1.2.3.4".parse().unwrap());
        assert_eq!(client_ip(proxy, &h, &[proxy]), ip("1.2.3.4"));
        let stranger = ip("5.5.5.5");
        assert_eq!(client_ip(stranger, &h, &[proxy]), stranger);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
        h.insert("x-forwarded-for", "1.2.3.4, 10.0.0.9".parse().unwrap());
        assert_eq!(client_ip(proxy, &h, &[proxy]), ip("1.2.3.4"));
    }

    #[test]
    fn allows_bursts_then_refills_at_the_rate() {
        let (l, clock) = limiter(10.0, 3.0, 100);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(l.check(b).is_ok(), "clients are independent");
        clock.advance(Duration::from_millis(100));
        assert!(l.check(a).is_ok());
        assert!(RateLimiter::new(0.0, 1.0).is_none());
        assert!(RateLimiter::new(f64::NAN, 1.0).is_none());
    }

    #[test]
    fn a_tiny_rate_gives_a_long_wait_not_a_panic() {
        let (l, _) = limiter(1e-30, 1.0, 100);
        assert!(l.check(ip("10.0.0.1")).is_ok());
        assert_eq!(l.check(ip("10.0.0.1")), Err(MAX_WAIT));
        let (l, _) = limiter(1e12, 1e30, 100);
        assert!(l.check(ip("10.0.0.1")).is_ok());
    }

    /// A client rotating through addresses fills the table; it used to be
    /// cleared then, wiping every other client's limit. Now the clients
    /// tracked keep their buckets, and the newcomers share one.
    #[test]
    fn a_client_rotating_addresses_cannot_wipe_the_others_limits() {
        let (l, _) = limiter(1.0, 2.0, 4);
        let victim = ip("192.0.2.1");
        while l.check(victim).is_ok() {}
        for i in 0..1000u16 {
            // A new /64 each time.
            let _ = l.check(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 1)));
        }
        assert!(
            l.check(victim).is_err(),
            "the limited client is still limited"
        );
        // The rotating client got no more than the burst of the one bucket
        // newcomers share (plus the three free places it took first).
        let mut through = 0;
        for i in 1000..2000u16 {
            through += l
                .check(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 1)))
                .is_ok() as u32;
        }
        assert_eq!(through, 0, "newcomers share the exhausted overflow bucket");
        assert!(l.gcra.len() <= 5, "the table stays bounded");
    }

    #[test]
    fn addresses_of_one_ipv6_64_share_a_bucket() {
        let (l, _) = limiter(1.0, 1.0, 100);
        assert!(l.check(ip("2001:db8:1:2::1")).is_ok());
        assert!(l.check(ip("2001:db8:1:2:ffff::9")).is_err(), "same /64");
        assert!(l.check(ip("2001:db8:1:3::1")).is_ok(), "another /64");
        assert!(l.check(ip("::ffff:192.0.2.7")).is_ok());
        assert!(
            l.check(ip("192.0.2.7")).is_err(),
            "an IPv4-mapped address is its IPv4"
        );
    }

    #[test]
    fn quiet_clients_make_room() {
        let (l, clock) = limiter(10.0, 1.0, 2);
        assert!(l.check(ip("10.0.0.1")).is_ok());
        assert!(l.check(ip("10.0.0.2")).is_ok());
        clock.advance(Duration::from_secs(1));
        // Both refilled: a third client gets its own bucket, not overflow.
        assert!(l.check(ip("10.0.0.3")).is_ok());
        assert!(l.check(ip("10.0.0.4")).is_ok());
        assert!(l.check(ip("10.0.0.3")).is_err(), "its own bucket, spent");
    }

    #[test]
    fn probes_are_bounded_per_client() {
        let gate = Arc::new(ProbeGate::default());
        let a = ip("10.0.0.1");
        let slots: Vec<_> = (0..MAX_PROBES_PER_CLIENT)
            .map(|_| gate.admit(a).unwrap())
            .collect();
        assert!(matches!(gate.admit(a), Err(ProbeRefusal::Slots)));
        drop(slots);
        assert!(gate.admit(a).is_ok());
    }
}
