//! The Prometheus registry and metric families, one registry per server.
//!
//! Each server owns its own [`Registry`] (never the process-global default),
//! so tests that run many servers in one process see only their own counts.
//! Hot-path handles (per-transport counters) are resolved once here, so a
//! delivery never pays for a label lookup.

use std::sync::Mutex;
use std::time::Duration;

use crate::sync::sharded_counter::ShardedCounter;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The `from` / `to` label values of client-reported transport switches
/// (`POST /telemetry/switch`): the subscriber transports, and `other`.
pub const SWITCH_TRANSPORTS: [&str; 5] = ["ws", "sse", "longpoll", "poll", "other"];
/// Their `reason` label values (docs/protocol.md says what each means).
pub const SWITCH_REASONS: [&str; 9] = [
    "refused", "stalled", "buffered", "cut", "closed", "timeout", "error", "climb", "other",
];

pub use crate::protocol::Transport;

/// What only the metrics know of a transport: its slot in the per-transport
/// handles and the outcomes its requests can have.
impl Transport {
    fn index(self) -> usize {
        self as usize
    }

    /// The `result`s a request of this transport can end with: what
    /// [`Metrics::new`] creates at 0, so that a rate over them is 0, not
    /// "no data", before the first one happens. Every route can answer a
    /// CORS preflight (`ok`) and an error.
    pub fn outcomes(self) -> &'static [Outcome] {
        use Outcome::*;
        match self {
            Transport::Poll => &[Events, Empty, NotModified, Ok, Error],
            Transport::LongPoll => &[Events, Empty, Timeout, Ok, Error],
            Transport::Sse | Transport::Ws => &[Stream, Ok, Error],
            Transport::Publish => &[Published, Ok, Error],
            Transport::Other => &[Ok, Error],
        }
    }
}

/// How a request ended: the `result` label of `feedgate_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered with at least one event.
    Events,
    /// Answered at once with no event (short poll, or a long poll cut short
    /// by shutdown).
    Empty,
    /// `304 Not Modified` to a short poll with a current `If-None-Match`.
    NotModified,
    /// A long poll that held for its whole timeout and answered empty.
    Timeout,
    /// A stream (SSE or WebSocket) was opened.
    Stream,
    /// A publish was appended.
    Published,
    /// Any other successful request (metrics, page, health).
    Ok,
    /// Answered with a 4xx or 5xx.
    Error,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Events,
        Outcome::Empty,
        Outcome::NotModified,
        Outcome::Timeout,
        Outcome::Stream,
        Outcome::Published,
        Outcome::Ok,
        Outcome::Error,
    ];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Events => "events",
            Outcome::Empty => "empty",
            Outcome::NotModified => "not_modified",
            Outcome::Timeout => "timeout",
            Outcome::Stream => "stream",
            Outcome::Published => "published",
            Outcome::Ok => "ok",
            Outcome::Error => "error",
        }
    }
}

/// A limit whose refusals are counted in
/// `feedgate_limit_rejections_total{limit=…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `--max-connections`: a connection answered 503 and closed.
    MaxConnections,
    /// `--publish-rate`: a publish answered 429.
    PublishRate,
    /// `--write-timeout`: a subscriber that stopped reading was dropped.
    WriteTimeout,
    /// `--ws-pong-timeout`: a WebSocket peer that stopped answering pings
    /// was closed.
    PongTimeout,
    /// `--max-topics`: a publish to a new topic answered 503.
    MaxTopics,
    /// The per-client rate of `/probe/*` requests: answered 429.
    ProbeRate,
    /// Too many probes at once, in all or from one client: answered 503.
    ProbeSlots,
    /// The per-client rate of `POST /telemetry/switch`: answered 429.
    TelemetryRate,
}

impl Limit {
    /// Every limit, in label order; each series exists at 0 from start.
    pub const ALL: [Limit; 8] = [
        Limit::MaxConnections,
        Limit::PublishRate,
        Limit::WriteTimeout,
        Limit::PongTimeout,
        Limit::MaxTopics,
        Limit::ProbeRate,
        Limit::ProbeSlots,
        Limit::TelemetryRate,
    ];

    /// The `limit` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxConnections => "max_connections",
            Limit::PublishRate => "publish_rate",
            Limit::WriteTimeout => "write_timeout",
            Limit::PongTimeout => "pong_timeout",
            Limit::MaxTopics => "max_topics",
            Limit::ProbeRate => "probe_rate",
            Limit::ProbeSlots => "probe_slots",
            Limit::TelemetryRate => "telemetry_rate",
        }
    }
}

/// The connection a byte, a delivery or a connection count travelled on:
/// HTTP/1.1 or HTTP/2, in the clear or over TLS — the `protocol` and `tls`
/// labels. Every combination is exported from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Link {
    /// HTTP/2 (`protocol="h2"`); else HTTP/1.1 (`"h1"`).
    pub h2: bool,
    /// Over TLS (`tls="true"`).
    pub tls: bool,
}

impl Link {
    /// Cleartext HTTP/1.1.
    pub const H1: Link = Link {
        h2: false,
        tls: false,
    };

    /// Every link, in label order.
    pub const ALL: [Link; 4] = [
        Link::H1,
        Link {
            h2: true,
            tls: false,
        },
        Link {
            h2: false,
            tls: true,
        },
        Link {
            h2: true,
            tls: true,
        },
    ];

    /// The `protocol` label value.
    pub fn protocol(self) -> &'static str {
        if self.h2 { "h2" } else { "h1" }
    }

    /// The `tls` label value.
    pub fn tls_label(self) -> &'static str {
        if self.tls { "true" } else { "false" }
    }

    fn index(self) -> usize {
        usize::from(self.h2) | usize::from(self.tls) << 1
    }
}

/// The hot-path handles of one transport on one [`Link`].
pub struct LinkMetrics {
    /// Bytes read from sockets attributed to this transport.
    pub wire_in: ShardedCounter,
    /// Bytes written to sockets attributed to this transport.
    pub wire_out: ShardedCounter,
    /// Bytes of event JSON delivered.
    pub payload: ShardedCounter,
    /// Events delivered.
    pub delivered: ShardedCounter,
    /// Publish → handed to the socket, seconds.
    pub latency: Histogram,
    /// Connections whose latest request used this transport.
    pub connections: IntGauge,
}

/// Per-transport handles for the hot path.
pub struct TransportMetrics {
    links: [LinkMetrics; 4],
    /// Topics followed by this transport's open subscribers (a
    /// multiplexed subscriber counts each of its topics).
    pub subscriptions: IntGauge,
    /// Readers told about a gap.
    pub gaps: IntCounter,
    /// Readers told to reset.
    pub resets: IntCounter,
}

impl TransportMetrics {
    /// The handles of this transport on `link`.
    pub fn on(&self, link: Link) -> &LinkMetrics {
        &self.links[link.index()]
    }

    /// Every link's handles.
    pub fn links(&self) -> impl Iterator<Item = &LinkMetrics> {
        self.links.iter()
    }
}

/// Every metric family of one server.
pub struct Metrics {
    registry: Registry,
    per_transport: Vec<TransportMetrics>,
    requests: IntCounterVec,
    /// `feedgate_requests_total` children by transport then outcome,
    /// resolved at start for every pair [`Transport::outcomes`] names, so
    /// they are counted without hashing labels.
    request_children: [[Option<IntCounter>; Outcome::ALL.len()]; Transport::ALL.len()],
    /// Events appended to the log through this server.
    pub published: IntCounter,
    /// Requests or connections refused by a limit, by limit name.
    pub limit_rejections: IntCounterVec,
    limit_children: [IntCounter; Limit::ALL.len()],
    /// Topics known to this node.
    pub topics: IntGauge,
    /// Events retained across all topics.
    pub log_events: IntGauge,
    /// Bytes of events' cached wire forms (`--encoding-cache` bounds it).
    pub encoding_cache_bytes: IntGauge,
    /// Entries of a shared log that were not valid events, skipped and
    /// told to readers as a gap. The log counts them; this follows.
    log_corrupt_entries: IntCounter,
    /// Serializes [`Metrics::observe_corrupt_entries`], so two scrapes at
    /// once cannot both add the same difference.
    corrupt_sync: Mutex<()>,
    /// Transport switches clients reported (`POST /telemetry/switch`).
    client_switches: IntCounterVec,
    /// How long streams lived before clients saw them cut, by transport.
    client_cut_after: HistogramVec,
    /// The WebSocket fast path (`transport/fanout.rs`).
    pub fanout: FanoutMetrics,
    /// The SSE fast path (the same, for streams served off hyper).
    pub sse_fanout: FanoutMetrics,
    /// The long-poll fast path (held polls answered by the pass).
    pub longpoll_fanout: FanoutMetrics,
    /// Held long polls the fast path answered itself.
    pub longpoll_fanout_answers: IntCounter,
}

/// What the WebSocket fast path counts.
pub struct FanoutMetrics {
    /// Sockets parked on it now.
    pub parked: IntGauge,
    /// Sockets it gave back to their sessions, by [`Handback`] reason in
    /// [`Handback::ALL`] order.
    handbacks: [IntCounter; Handback::ALL.len()],
}

/// Why the fast path gave a socket back to its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handback {
    /// The socket would not take all of a pass's frames.
    Blocked,
    /// A gap, a reset, a new epoch or a failed read: the session tells it.
    Behind,
    /// The server drains, the token expired, or a demo fault was injected.
    Ended,
    /// The socket failed.
    Gone,
}

impl Handback {
    /// Every reason, in label order.
    pub const ALL: [Handback; 4] = [
        Handback::Blocked,
        Handback::Behind,
        Handback::Ended,
        Handback::Gone,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Handback::Blocked => "blocked",
            Handback::Behind => "behind",
            Handback::Ended => "ended",
            Handback::Gone => "gone",
        }
    }
}

impl FanoutMetrics {
    /// The fast path's series for `transport` (`ws`, `sse`), whose
    /// subscribers the gauge calls `what`, and their collectors.
    fn new(
        transport: &str,
        what: &str,
        help: &str,
    ) -> (FanoutMetrics, [Box<dyn prometheus::core::Collector>; 2]) {
        let parked = IntGauge::new(format!("feedgate_{transport}_fanout_{what}"), help)
            .expect("valid metric");
        let handbacks = IntCounterVec::new(
            Opts::new(
                format!("feedgate_{transport}_fanout_handbacks_total"),
                "Subscribers the fast path gave back to their own task, by reason: blocked \
                 (the socket would not take a pass's frames), behind (a gap, reset or failed \
                 read to tell), ended (drain, token expiry, demo fault), gone.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let metrics = FanoutMetrics {
            parked: parked.clone(),
            handbacks: Handback::ALL.map(|h| handbacks.with_label_values(&[h.as_str()])),
        };
        (metrics, [Box::new(parked), Box::new(handbacks)])
    }

    /// Counts a socket given back for `why`.
    pub fn handed_back(&self, why: Handback) {
        self.handbacks[why as usize].inc();
    }
}

/// Latency buckets from 100 µs (loopback WebSocket) to a minute (a short
/// poll with a long interval).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Buckets of `feedgate_client_stream_cut_after_seconds`: around the idle
/// timeouts proxies and load balancers ship with (nginx 60 s, AWS ALB 60 s,
/// Cloudflare 100 s).
const CUT_AFTER_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 15.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0, 600.0, 1800.0,
];

impl Metrics {
    /// Builds and registers every family on a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let wire = IntCounterVec::new(
            Opts::new(
                "feedgate_wire_bytes_total",
                "Bytes on the wire, counted at the socket (headers, framing and handshakes included).",
            ),
            &["transport", "direction", "protocol", "tls"],
        )
        .expect("valid metric");
        let payload = IntCounterVec::new(
            Opts::new(
                "feedgate_payload_bytes_total",
                "Bytes of event JSON delivered to subscribers.",
            ),
            &["transport", "protocol", "tls"],
        )
        .expect("valid metric");
        let delivered = IntCounterVec::new(
            Opts::new(
                "feedgate_events_delivered_total",
                "Events delivered to subscribers.",
            ),
            &["transport", "protocol", "tls"],
        )
        .expect("valid metric");
        let requests = IntCounterVec::new(
            Opts::new(
                "feedgate_requests_total",
                "Requests answered, by transport and result.",
            ),
            &["transport", "result"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "feedgate_delivery_latency_seconds",
                "Time from publish (append) to the event's bytes being handed to the socket.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["transport", "protocol", "tls"],
        )
        .expect("valid metric");
        let connections = IntGaugeVec::new(
            Opts::new(
                "feedgate_connections",
                "Open connections, by the transport of their latest request (HTTP/2: \
                 their latest stream), the protocol and TLS.",
            ),
            &["transport", "protocol", "tls"],
        )
        .expect("valid metric");
        let subscriptions = IntGaugeVec::new(
            Opts::new(
                "feedgate_subscriptions",
                "Topics followed by open subscribers (held long polls, SSE streams, \
                 WebSockets), by transport.",
            ),
            &["transport"],
        )
        .expect("valid metric");
        let gaps = IntCounterVec::new(
            Opts::new(
                "feedgate_gaps_total",
                "Readers told that their cursor is older than retention.",
            ),
            &["transport"],
        )
        .expect("valid metric");
        let resets = IntCounterVec::new(
            Opts::new(
                "feedgate_resets_total",
                "Readers told to reset (cursor from another epoch or past the head).",
            ),
            &["transport"],
        )
        .expect("valid metric");
        let published = IntCounter::new(
            "feedgate_events_published_total",
            "Events appended to the log through this server.",
        )
        .expect("valid metric");
        let limit_rejections = IntCounterVec::new(
            Opts::new(
                "feedgate_limit_rejections_total",
                "Requests or connections refused because a limit was crossed.",
            ),
            &["limit"],
        )
        .expect("valid metric");
        let topics = IntGauge::new("feedgate_topics", "Topics known to this node.").expect("valid");
        let log_events = IntGauge::new(
            "feedgate_log_events",
            "Events retained in the log across all topics.",
        )
        .expect("valid metric");
        let encoding_cache_bytes = IntGauge::new(
            "feedgate_encoding_cache_bytes",
            "Bytes of cached event encodings (permessage-deflate payloads, lean forms, SSE \
             blocks), made once and shared by every subscriber; --encoding-cache bounds it.",
        )
        .expect("valid metric");
        let log_corrupt_entries = IntCounter::new(
            "feedgate_log_corrupt_entries_total",
            "Entries of the shared log (Redis) that were not valid events: never sent, \
             told to readers as a gap. Each is counted once per node.",
        )
        .expect("valid metric");

        let client_switches = IntCounterVec::new(
            Opts::new(
                "feedgate_client_transport_switches_total",
                "Transport switches reported by clients (POST /telemetry/switch): fallbacks \
                 and climbs back, with the reason the client observed.",
            ),
            &["from", "to", "reason"],
        )
        .expect("valid metric");
        let client_cut_after = HistogramVec::new(
            HistogramOpts::new(
                "feedgate_client_stream_cut_after_seconds",
                "How long a stream lived before a client reported it cut: a path's idle \
                 timeout shows as a peak at its value.",
            )
            .buckets(CUT_AFTER_BUCKETS.to_vec()),
            &["transport"],
        )
        .expect("valid metric");
        let (fanout, fanout_collectors) = FanoutMetrics::new(
            "ws",
            "sockets",
            "WebSockets parked on the fast path: written by one loop per topic rather than \
             by a task each (--ws-fanout, --fanout-spread).",
        );
        let (sse_fanout, sse_fanout_collectors) = FanoutMetrics::new(
            "sse",
            "streams",
            "SSE streams parked on the fast path: written by one loop per topic rather than \
             by a task each (--sse-fanout, --fanout-spread).",
        );
        let (longpoll_fanout, longpoll_fanout_collectors) = FanoutMetrics::new(
            "longpoll",
            "polls",
            "Long polls held on the fast path: answered by one loop per topic and worker \
             thread, one answer made per topic and encoding (--longpoll-fanout, \
             --fanout-spread).",
        );
        let longpoll_fanout_answers = IntCounter::new(
            "feedgate_longpoll_fanout_answers_total",
            "Held long polls the fast path answered itself (head and body in one send).",
        )
        .expect("valid metric");

        for c in [
            Box::new(wire.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(client_switches.clone()),
            Box::new(client_cut_after.clone()),
            Box::new(payload.clone()),
            Box::new(delivered.clone()),
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(connections.clone()),
            Box::new(subscriptions.clone()),
            Box::new(gaps.clone()),
            Box::new(resets.clone()),
            Box::new(published.clone()),
            Box::new(limit_rejections.clone()),
            Box::new(topics.clone()),
            Box::new(log_events.clone()),
            Box::new(encoding_cache_bytes.clone()),
            Box::new(log_corrupt_entries.clone()),
        ]
        .into_iter()
        .chain(fanout_collectors)
        .chain(sse_fanout_collectors)
        .chain(longpoll_fanout_collectors)
        .chain([Box::new(longpoll_fanout_answers.clone()) as Box<dyn prometheus::core::Collector>])
        {
            registry.register(c).expect("metric names are unique");
        }

        // Resolve every per-transport child now: the series exist from the
        // first scrape (dashboards show 0, not "no data"), and the hot path
        // never hashes a label.
        let per_transport = Transport::ALL
            .iter()
            .map(|t| {
                let l = t.as_str();
                let links = Link::ALL.map(|link| {
                    let (p, tls) = (link.protocol(), link.tls_label());
                    LinkMetrics {
                        wire_in: ShardedCounter::new(wire.with_label_values(&[l, "in", p, tls])),
                        wire_out: ShardedCounter::new(wire.with_label_values(&[l, "out", p, tls])),
                        payload: ShardedCounter::new(payload.with_label_values(&[l, p, tls])),
                        delivered: ShardedCounter::new(delivered.with_label_values(&[l, p, tls])),
                        latency: latency.with_label_values(&[l, p, tls]),
                        connections: connections.with_label_values(&[l, p, tls]),
                    }
                });
                TransportMetrics {
                    links,
                    subscriptions: subscriptions.with_label_values(&[l]),
                    gaps: gaps.with_label_values(&[l]),
                    resets: resets.with_label_values(&[l]),
                }
            })
            .collect();
        // Likewise every labelled series that can happen exists at 0 from
        // the first scrape: an alert on `increase(…)` fires on the first
        // refusal, and a dashboard shows 0 rather than "no data".
        let request_children = std::array::from_fn(|t| {
            let t = Transport::ALL[t];
            std::array::from_fn(|o| {
                let o = Outcome::ALL[o];
                t.outcomes()
                    .contains(&o)
                    .then(|| requests.with_label_values(&[t.as_str(), o.as_str()]))
            })
        });
        let limit_children =
            std::array::from_fn(|l| limit_rejections.with_label_values(&[Limit::ALL[l].as_str()]));
        // And what clients can report (bounded label values, see
        // telemetry.rs): the fallback panel shows 0 on a fresh server.
        for from in SWITCH_TRANSPORTS {
            client_cut_after.with_label_values(&[from]);
            for to in SWITCH_TRANSPORTS {
                for reason in SWITCH_REASONS {
                    client_switches.with_label_values(&[from, to, reason]);
                }
            }
        }

        Metrics {
            registry,
            per_transport,
            requests,
            request_children,
            published,
            limit_rejections,
            limit_children,
            topics,
            log_events,
            encoding_cache_bytes,
            log_corrupt_entries,
            corrupt_sync: Mutex::new(()),
            client_switches,
            client_cut_after,
            fanout,
            sse_fanout,
            longpoll_fanout,
            longpoll_fanout_answers,
        }
    }

    /// The hot-path handles of one transport.
    pub fn transport(&self, t: Transport) -> &TransportMetrics {
        &self.per_transport[t.index()]
    }

    /// Counts one answered request.
    pub fn request(&self, t: Transport, outcome: Outcome) {
        match &self.request_children[t.index()][outcome as usize] {
            Some(c) => c.inc(),
            // A pair `Transport::outcomes` does not list: still counted.
            None => self
                .requests
                .with_label_values(&[t.as_str(), outcome.as_str()])
                .inc(),
        }
    }

    /// Counts one refusal by `limit`.
    pub fn limit_hit(&self, limit: Limit) {
        self.limit_children[limit as usize].inc();
    }

    /// Counts one transport switch a client reported. The label values
    /// must be bounded (see `telemetry.rs`); `cut_after_s` is observed for
    /// a `cut`.
    pub fn client_switch(&self, from: &str, to: &str, reason: &str, cut_after_s: Option<f64>) {
        self.client_switches
            .with_label_values(&[from, to, reason])
            .inc();
        if let (Some(s), "cut") = (cut_after_s, reason) {
            self.client_cut_after.with_label_values(&[from]).observe(s);
        }
    }

    /// Brings `feedgate_log_corrupt_entries_total` up to `total`, the count
    /// the log keeps (see [`crate::log::Log::corrupt_entries`]); called at
    /// each scrape.
    pub fn observe_corrupt_entries(&self, total: u64) {
        let _serial = self
            .corrupt_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = &self.log_corrupt_entries;
        c.inc_by(total.saturating_sub(c.get()));
    }

    /// Moves the hot-path counters' per-thread counts into the exported
    /// series ([`ShardedCounter`]).
    pub fn fold(&self) {
        for lm in self.per_transport.iter().flat_map(TransportMetrics::links) {
            for c in [&lm.wire_in, &lm.wire_out, &lm.payload, &lm.delivered] {
                c.fold();
            }
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> Vec<u8> {
        self.fold();
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }

    /// The registry, for embedding feedgate's families elsewhere, with
    /// every count made so far folded in (call [`Metrics::fold`] before
    /// each later gather).
    pub fn registry(&self) -> &Registry {
        self.fold();
        &self.registry
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl LinkMetrics {
    /// Records one delivered event: its payload size and its latency from
    /// publish (`time_us`) to now.
    pub fn delivered(&self, payload_len: usize, time_us: u64) {
        self.delivered.inc();
        self.payload.inc_by(payload_len as u64);
        self.latency
            .observe(seconds_between(time_us, crate::log::unix_micros()));
    }

    /// A tally of deliveries on this link that touches no shared atomic
    /// until it is flushed: for a loop that delivers to many subscribers
    /// at once (the fan-out pass), where [`LinkMetrics::delivered`]'s
    /// histogram update — four atomics on lines every worker thread
    /// writes — would be paid per subscriber, and contended when passes
    /// run on both threads.
    pub fn tally(&self) -> DeliveryTally<'_> {
        DeliveryTally {
            link: self,
            delivered: 0,
            payload: 0,
            latency: self.latency.local(),
        }
    }
}

/// Seconds from `from_us` to `to_us` (Unix microseconds), 0 if backwards.
fn seconds_between(from_us: u64, to_us: u64) -> f64 {
    Duration::from_micros(to_us.saturating_sub(from_us)).as_secs_f64()
}

/// Deliveries counted locally and folded into their [`LinkMetrics`] when
/// dropped: the same counts and latencies [`LinkMetrics::delivered`]
/// records, each latency measured at its send.
pub struct DeliveryTally<'a> {
    link: &'a LinkMetrics,
    delivered: u64,
    payload: u64,
    latency: prometheus::local::LocalHistogram,
}

impl DeliveryTally<'_> {
    /// Records events handed to a socket in one send, now: `payload`
    /// bytes of event JSON in all, one per publish time in `published_us`
    /// (what [`LinkMetrics::delivered`] records for each, with one clock
    /// read for the send).
    pub fn sent(&mut self, payload: u64, published_us: impl IntoIterator<Item = u64>) {
        let now = crate::log::unix_micros();
        for time_us in published_us {
            self.delivered = self.delivered.saturating_add(1);
            self.latency.observe(seconds_between(time_us, now));
        }
        self.payload = self.payload.saturating_add(payload);
    }
}

impl Drop for DeliveryTally<'_> {
    fn drop(&mut self) {
        if self.delivered > 0 {
            self.link.delivered.inc_by(self.delivered);
            self.link.payload.inc_by(self.payload);
        }
        // The local histogram folds itself in when it is dropped, next.
    }
}

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    /// The cumulative bucket counts and sample count of `h`.
    fn buckets(h: &Histogram) -> (Vec<u64>, u64) {
        use prometheus::core::Metric;
        let m = h.metric();
        let h = m.get_histogram();
        let counts = h
            .get_bucket()
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        (counts, h.get_sample_count())
    }

    /// A pass's tally, once dropped, leaves the same counts, payload and
    /// latency buckets as recording each delivery on its own.
    #[test]
    fn a_tally_folds_in_what_each_delivery_would_record() {
        let (one_by_one, tallied) = (Metrics::new(), Metrics::new());
        let now = crate::log::unix_micros();
        // Payload length, publish time: latencies of 0, 2 ms and 3 s.
        let deliveries = [(0, now), (100, now - 2_000), (7, now - 3_000_000)];
        let a = one_by_one.transport(Transport::Sse).on(Link::H1);
        let b = tallied.transport(Transport::Sse).on(Link::H1);
        let mut tally = b.tally();
        for (len, at) in deliveries {
            a.delivered(len, at);
            tally.sent(len as u64, [at]);
        }
        assert_eq!(
            b.delivered.get(),
            0,
            "the tally wrote the shared counter early"
        );
        drop(tally);
        assert_eq!(b.delivered.get(), 3);
        assert_eq!(a.delivered.get(), b.delivered.get());
        assert_eq!(b.payload.get(), 107);
        assert_eq!(a.payload.get(), b.payload.get());
        let (counts, n) = buckets(&b.latency);
        assert_eq!(n, 3);
        assert_eq!(buckets(&a.latency), (counts, n));
    }
}
