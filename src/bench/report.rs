//! The figures of a run ([`Report`], which is also the `--json` schema; see
//! docs/benchmarks.md) and the table printed at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::model::Model;
use super::scrape::ServerCounts;
use super::sys::Machine;

/// The `schema` field of every JSON report.
pub const SCHEMA: &str = "feedgate-bench/1";

/// Everything one comparison run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// `feedgate` or `nchan`.
    pub target: String,
    /// The base URL measured.
    pub url: String,
    /// Whether the server ran inside the bench's process.
    pub in_process: bool,
    /// The server's process id, when it ran as a process of its own and
    /// its CPU time was read.
    pub pid: Option<u32>,
    /// The run's parameters.
    pub params: Params,
    /// Where it ran.
    pub machine: Machine,
    /// The publisher's side.
    pub publish: PublishFigures,
    /// One row per subscriber transport.
    pub transports: Vec<TransportFigures>,
    /// CPU time of the server and of the load generator.
    pub cpu: Cpu,
    /// Wall time from the first publish to the end of the drain, seconds.
    pub elapsed_s: f64,
    /// With `--log redis://…`: what Redis executed during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisFigures>,
}

/// Redis commands executed while publishing and draining (`INFO
/// commandstats` deltas), for runs with `--log redis://…`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisFigures {
    /// Gateway nodes sharing the log.
    pub nodes: usize,
    /// Commands Redis executed (scripts count once).
    pub commands: u64,
    /// Commands per published event.
    pub per_published_event: f64,
    /// Commands per delivered event.
    pub per_delivered_event: f64,
}

/// The parameters a run was asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    /// Subscriber transports.
    pub transports: Vec<String>,
    /// Topics each subscriber follows.
    #[serde(default = "one")]
    pub topics: usize,
    /// Whether each topic had a connection of its own.
    #[serde(default)]
    pub split_topics: bool,
    /// Subscribers per transport.
    pub clients: usize,
    /// Publishes per second asked.
    pub rate: f64,
    /// Payload bytes.
    pub payload: usize,
    /// What the payloads looked like.
    #[serde(default)]
    pub payload_kind: super::payload::Kind,
    /// WebSocket subscribers offered permessage-deflate.
    #[serde(default)]
    pub deflate: bool,
    /// The event encoding subscribers asked for.
    #[serde(default = "json_encoding")]
    pub encoding: String,
    /// The link asked for: `h1`, `h2`, `h1+tls` or `h2+tls`.
    #[serde(default = "h1")]
    pub link: String,
    /// Publishing time, seconds.
    pub duration_s: f64,
    /// Short-poll interval, seconds.
    pub poll_interval_s: f64,
    /// Long-poll hold, seconds.
    pub longpoll_timeout_s: f64,
}

fn json_encoding() -> String {
    "json".to_owned()
}

/// Reports written before `--http2` and `--tls`.
fn h1() -> String {
    "h1".to_owned()
}

/// What the publisher did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishFigures {
    /// Publishes acknowledged.
    pub published: u64,
    /// Publishes that failed.
    pub errors: u64,
    /// Publishes per second achieved.
    pub rate_achieved: f64,
    /// Bytes the publisher sent / received, at its socket.
    pub client_bytes_up: u64,
    /// Bytes it received.
    pub client_bytes_down: u64,
}

/// Latency percentiles, µs, publish (bench send time) → received.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl Latency {
    /// Summarizes an HDR histogram.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// One transport's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransportFigures {
    /// `poll`, `longpoll`, `sse` or `ws`.
    pub transport: String,
    /// Subscribers started.
    pub clients: usize,
    /// Subscribers that connected.
    pub connected: u64,
    /// Subscribers that failed or ended early.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Deliveries expected: publishes × subscribers.
    pub expected: u64,
    /// Distinct deliveries.
    pub delivered: u64,
    /// Expected but never delivered.
    pub lost: u64,
    /// Delivered again.
    pub dup: u64,
    /// Delivered after a later event.
    pub reordered: u64,
    /// Gap signals.
    pub gaps: u64,
    /// Reset signals.
    pub resets: u64,
    /// Distinct deliveries per second of publishing.
    pub deliveries_per_s: f64,
    /// Latency percentiles.
    pub latency: Latency,
    /// Bytes the subscribers received, at their sockets.
    pub client_bytes_down: u64,
    /// Bytes they sent.
    pub client_bytes_up: u64,
    /// Bytes of the payload-bearing messages (event JSON, Nchan message).
    pub message_bytes: u64,
    /// Wire bytes per delivered event, downstream.
    pub bytes_per_event_down: f64,
    /// Upstream.
    pub bytes_per_event_up: f64,
    /// (down + up) / payload size.
    pub overhead_x: f64,
    /// Requests made (polls, stream opens, handshakes).
    pub requests: u64,
    /// Responses that carried no event.
    pub empty_responses: u64,
    /// Events per non-empty response (polls), or per request.
    pub events_per_response: f64,
    /// Bytes per event the protocol model predicts (feedgate only).
    pub model: Option<Model>,
    /// measured (down + up) / model (down + up) − 1.
    pub model_deviation: Option<f64>,
    /// What the server counted (feedgate only).
    pub server: Option<ServerCounts>,
    /// Whether the server's wire bytes equal the clients' (feedgate only).
    pub bytes_agree: Option<bool>,
    /// Subscribers by the link their connection spoke (a WebSocket the
    /// server will not take over HTTP/2 goes over HTTP/1.1).
    #[serde(default)]
    pub links: BTreeMap<String, u64>,
}

/// CPU seconds, so a reader can tell which side saturated.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Cpu {
    /// Server CPU seconds during the run (in-process server threads, or
    /// `--pid`), if known.
    pub server_s: Option<f64>,
    /// Load-generator CPU seconds (the bench process minus the in-process
    /// server's threads).
    pub bench_s: f64,
    /// Wall seconds the CPU times are over.
    pub wall_s: f64,
}

impl Cpu {
    /// Which side used more of the machine, in words.
    pub fn verdict(&self, cpus: usize) -> String {
        let cores = |s: f64| s / self.wall_s.max(1e-9);
        let bench = cores(self.bench_s);
        match self.server_s {
            Some(server) => {
                let server = cores(server);
                let total = server + bench;
                let busy = if total > 0.9 * cpus as f64 {
                    "the machine was saturated; "
                } else {
                    ""
                };
                let side = if server >= bench {
                    "server"
                } else {
                    "load generator"
                };
                format!(
                    "CPU: server {server:.2} cores, load generator {bench:.2} cores of {cpus} — {busy}the {side} used more"
                )
            }
            None => format!("CPU: load generator {bench:.2} cores of {cpus}; server unknown"),
        }
    }
}

/// Reports written before `--topics` followed one topic.
fn one() -> usize {
    1
}

fn ms(us: u64) -> String {
    if us >= 100_000 {
        format!("{:.0}ms", us as f64 / 1000.0)
    } else {
        format!("{:.2}ms", us as f64 / 1000.0)
    }
}

/// The table printed on stdout.
pub fn table(r: &Report) -> String {
    let head = [
        "transport",
        "clients",
        "delivered",
        "lost",
        "dup",
        "reordered",
        "p50",
        "p99",
        "p999",
        "max",
        "B/event down",
        "up",
        "overhead×payload",
        "requests",
        "empty",
    ];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for t in &r.transports {
        rows.push(vec![
            t.transport.clone(),
            t.clients.to_string(),
            t.delivered.to_string(),
            t.lost.to_string(),
            t.dup.to_string(),
            t.reordered.to_string(),
            ms(t.latency.p50_us),
            ms(t.latency.p99_us),
            ms(t.latency.p999_us),
            ms(t.latency.max_us),
            format!("{:.1}", t.bytes_per_event_down),
            format!("{:.1}", t.bytes_per_event_up),
            format!("{:.2}", t.overhead_x),
            t.requests.to_string(),
            t.empty_responses.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · {} ({}) · {} clients/transport · {} ev/s × {} B {} · encoding {}{} for {:.1}s · published {} ({:.1}/s)",
        r.target,
        r.url,
        r.params.link,
        r.params.clients,
        r.params.rate,
        r.params.payload,
        r.params.payload_kind.as_str(),
        r.params.encoding,
        if r.params.deflate { " + deflate" } else { "" },
        r.params.duration_s,
        r.publish.published,
        r.publish.rate_achieved
    );
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| {
                if c == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("-|-"));
        }
    }
    for t in &r.transports {
        let _ = write!(
            out,
            "{:<8} {:>10.0} deliveries/s · {:.2} events/response",
            t.transport, t.deliveries_per_s, t.events_per_response
        );
        if let (Some(m), Some(dev)) = (&t.model, t.model_deviation) {
            let _ = write!(
                out,
                " · model {:.1}+{:.1} B/event ({:+.2}%)",
                m.down,
                m.up,
                dev * 100.0
            );
        }
        if let Some(s) = &t.server {
            let _ = write!(
                out,
                " · server: out {} in {} delivered {} requests {} latency p50 {} p99 {} · client: down {} up {} · {}",
                s.wire_out,
                s.wire_in,
                s.delivered,
                s.requests,
                s.latency_p50_us.map_or("?".into(), ms),
                s.latency_p99_us.map_or("?".into(), ms),
                t.client_bytes_down,
                t.client_bytes_up,
                if t.bytes_agree == Some(true) {
                    "bytes agree"
                } else {
                    "BYTES DISAGREE"
                }
            );
        }
        if t.links.keys().any(|l| *l != r.params.link) {
            let used: Vec<String> = t.links.iter().map(|(l, n)| format!("{n} on {l}")).collect();
            let _ = write!(out, " · links: {}", used.join(", "));
        }
        if let Some(e) = &t.first_error {
            let _ = write!(out, " · {} errors, first: {e}", t.errors);
        }
        let _ = writeln!(out);
    }
    if let Some(redis) = &r.redis {
        let _ = writeln!(
            out,
            "redis: {} node(s) · {} commands · {:.2} per published event · {:.4} per delivered event",
            redis.nodes, redis.commands, redis.per_published_event, redis.per_delivered_event
        );
    }
    let _ = writeln!(out, "{}", r.cpu.verdict(r.machine.cpus));
    let deliveries: u64 = r.transports.iter().map(|t| t.delivered).sum();
    if let Some(server) = r.cpu.server_s.filter(|_| deliveries > 0) {
        let _ = writeln!(
            out,
            "server CPU per delivery: {:.2} µs ({deliveries} deliveries, all transports of the run)",
            server * 1e6 / deliveries as f64
        );
    }
    let _ = writeln!(
        out,
        "machine: {} × {} · load {:.2} → {:.2}",
        r.machine.cpus, r.machine.cpu_model, r.machine.load_before, r.machine.load_after
    );
    out
}
