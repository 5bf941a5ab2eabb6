//! `feedgate bench` flags ([`BenchArgs`]) and the validated run they
//! describe ([`Plan`]), which is what the library API takes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::BenchError;
use super::payload::Kind;
use crate::client::{Link, Trust};
use crate::params::duration;
use crate::protocol::Transport;

/// `feedgate bench`: drive one publish schedule to clients of every
/// transport at once and print what each transport cost.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Subscriber transports to compare, comma-separated.
    #[arg(long, default_value = "poll,longpoll,sse,ws", value_delimiter = ',')]
    pub transports: Vec<String>,
    /// Subscribers per transport.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Publishes per second (one publisher).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Size of each published JSON value in bytes (at least 48: the
    /// bench's timestamp and counter live inside it).
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// What the payloads look like: random-free padding, a ticker like the
    /// demo's, chat messages, or JSON documents of about --payload bytes.
    #[arg(long, value_enum, default_value_t = Kind::Padding)]
    pub payload_kind: Kind,
    /// Subscribers ask for compression as browsers do: WebSockets offer
    /// permessage-deflate, polls send `Accept-Encoding: gzip`.
    #[arg(long)]
    pub deflate: bool,
    /// Event encoding subscribers ask for: json (v1) or lean.
    #[arg(long, default_value = "json")]
    pub encoding: String,
    /// How long to publish (e.g. 10s, 2m).
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub duration: Duration,
    /// Short-poll interval.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub poll_interval: Duration,
    /// Long-poll hold asked of the server.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub longpoll_timeout: Duration,
    /// Longest wait, after the last publish, for every subscriber to catch
    /// up; whatever has not arrived by then is lost.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub drain: Duration,
    /// Measure a running server at this base URL instead of starting one
    /// in-process on 127.0.0.1:0.
    #[arg(long)]
    pub url: Option<String>,
    /// Which gateway's URL shapes to speak.
    #[arg(long, value_enum, default_value_t = Target::Feedgate)]
    pub target: Target,
    /// Write the figures and the run's parameters as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw bytes/event and latency percentiles (or, with --sweep, the
    /// crossover chart) as SVG here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Run a series varying one parameter, e.g. `rate=1,10,100,1000` or
    /// `clients=10,100,1000`.
    #[arg(long)]
    pub sweep: Option<String>,
    /// Idle mode: open this many idle subscribers and report the server's
    /// memory per connection instead of running the comparison.
    #[arg(long)]
    pub idle: Option<usize>,
    /// Idle mode's transport: ws, sse or longpoll.
    #[arg(long, default_value = "ws")]
    pub transport: String,
    /// PID of the server measured with --url (for its RSS and CPU time).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Loopback source addresses to spread connections over (127.0.0.2,
    /// 127.0.0.3, …); 0 picks one per 20000 connections.
    #[arg(long, default_value_t = 0)]
    pub source_addrs: usize,
    /// Start the server as a child process (`feedgate serve`) instead of
    /// in-process: needed when both ends of every connection do not fit
    /// under one process's open-file limit.
    #[arg(long)]
    pub child_server: bool,
    /// Server worker threads of the in-process server.
    #[arg(long, default_value_t = 2)]
    pub server_threads: usize,
    /// Change log of the in-process server(s): `memory`, or
    /// `redis://host:port/db` (the report then counts Redis commands).
    #[arg(long, default_value = "memory")]
    pub log: String,
    /// In-process gateway nodes sharing the `--log redis://…` log: the
    /// publisher uses the first, subscribers are spread over all.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Redraw: read a report or sweep written by --json and print its
    /// table (and --svg its chart) without running anything.
    #[arg(long)]
    pub from_json: Option<PathBuf>,
    /// Topics each subscriber follows: the publisher spreads its events
    /// over them (event i to topic i mod K), and every subscriber gets
    /// them all. With K > 1 a subscriber follows them over one connection
    /// (`topics=LIST`), or with `--split-topics` over K connections.
    #[arg(long, default_value_t = 1)]
    pub topics: usize,
    /// With --topics K: one connection per topic instead of one for all.
    #[arg(long)]
    pub split_topics: bool,
    /// Speak HTTP/2: every subscriber's requests are streams of its one
    /// connection (with --split-topics, all its topics' streams share it),
    /// WebSockets are extended CONNECT streams (RFC 8441) where the server
    /// allows them; h2c in the clear, ALPN under --tls.
    #[arg(long)]
    pub http2: bool,
    /// Speak HTTPS: the bench's own server gets a self-signed certificate
    /// (trusted for the run); with --url, give an https:// URL.
    #[arg(long)]
    pub tls: bool,
    /// With an https:// --url: trust this PEM file's certificates (a CA,
    /// or the server's own) instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// With an https:// --url: accept any certificate (loopback benches
    /// against `serve --tls-self-signed`).
    #[arg(long)]
    pub tls_insecure: bool,
    /// Compare links: run each transport alone on each of these links —
    /// h1, h2, h1+tls, h2+tls, or `all` — and print one table of bytes per
    /// event, server CPU per delivery and latency (--svg draws it).
    #[arg(long, value_delimiter = ',')]
    pub links: Vec<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The gateway dialect the bench speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// feedgate's HTTP contract (docs/protocol.md).
    Feedgate,
    /// Nchan's: `POST /pub?id=C`, `GET /sub?id=C`, `GET /poll?id=C`.
    Nchan,
}

impl Target {
    /// Its name as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Feedgate => "feedgate",
            Target::Nchan => "nchan",
        }
    }
}

/// One comparison run, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Subscriber transports, each with `clients` subscribers.
    pub transports: Vec<Transport>,
    /// Subscribers per transport.
    pub clients: usize,
    /// Publishes per second.
    pub rate: f64,
    /// Bytes of each published JSON value.
    pub payload: usize,
    /// What the payloads look like.
    pub payload_kind: Kind,
    /// WebSocket subscribers offer permessage-deflate.
    pub deflate: bool,
    /// Subscribers ask for `encoding=lean`.
    pub lean: bool,
    /// Publishing time.
    pub duration: Duration,
    /// Short-poll interval.
    pub poll_interval: Duration,
    /// Long-poll hold.
    pub longpoll_timeout: Duration,
    /// Longest catch-up wait after the last publish.
    pub drain: Duration,
    /// A running server to measure; `None` starts one in-process.
    pub url: Option<String>,
    /// The dialect.
    pub target: Target,
    /// The measured server's PID, for CPU time (external servers).
    pub pid: Option<u32>,
    /// Loopback source addresses to spread connections over.
    pub source_addrs: usize,
    /// Start `feedgate serve` as a child process instead of in-process.
    pub child_server: bool,
    /// Worker threads of the in-process server.
    pub server_threads: usize,
    /// `redis://…` for a Redis-backed in-process server; `None` for memory.
    pub redis: Option<String>,
    /// In-process nodes (more than one needs `redis`).
    pub nodes: usize,
    /// Topics each subscriber follows (1: the single-topic paths).
    pub topics: usize,
    /// With `topics > 1`: one connection per topic instead of one for all
    /// (on HTTP/2: one stream per topic, all on the subscriber's one
    /// connection).
    pub split_topics: bool,
    /// HTTP/2 and/or TLS (a `--url` given as `https://` is TLS anyway).
    pub link: Link,
    /// The certificates an `https://` `--url` may present (the bench's own
    /// server is trusted without).
    pub trust: Trust,
    /// Draw a progress bar.
    pub progress: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            transports: Transport::SUBSCRIBERS.to_vec(),
            clients: 10,
            rate: 10.0,
            payload: 100,
            payload_kind: Kind::Padding,
            deflate: false,
            lean: false,
            duration: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            longpoll_timeout: Duration::from_secs(30),
            drain: Duration::from_secs(10),
            url: None,
            target: Target::Feedgate,
            pid: None,
            source_addrs: 0,
            child_server: false,
            server_threads: 2,
            redis: None,
            nodes: 1,
            topics: 1,
            split_topics: false,
            link: Link::default(),
            trust: Trust::System,
            progress: false,
        }
    }
}

/// The smallest payload: `{"n":…,"t":…,"pad":""}` with room for the digits.
pub const MIN_PAYLOAD: usize = 48;

/// Parses a transport list such as `poll,ws`.
///
/// # Errors
/// [`BenchError::Usage`] for a name that is not a subscriber transport.
pub fn transports(names: &[String]) -> Result<Vec<Transport>, BenchError> {
    let mut out = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let t = Transport::parse(name)
            .filter(|t| Transport::SUBSCRIBERS.contains(t))
            .ok_or_else(|| {
                BenchError::Usage(format!(
                    "--transports: {name:?} is not one of poll, longpoll, sse, ws"
                ))
            })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(BenchError::Usage("--transports: name at least one".into()));
    }
    Ok(out)
}

impl BenchArgs {
    /// Whether to draw progress on stderr.
    pub fn progress_enabled(&self) -> bool {
        !self.quiet
    }

    /// The comparison run these flags describe.
    ///
    /// # Errors
    /// [`BenchError::Usage`] for out-of-range values.
    pub fn plan(&self) -> Result<Plan, BenchError> {
        let plan = Plan {
            transports: transports(&self.transports)?,
            clients: self.clients,
            rate: self.rate,
            payload: self.payload,
            payload_kind: self.payload_kind,
            deflate: self.deflate,
            lean: match self.encoding.as_str() {
                "json" => false,
                "lean" => true,
                other => {
                    return Err(BenchError::Usage(format!(
                        "--encoding {other:?}: expected json or lean"
                    )));
                }
            },
            duration: self.duration,
            poll_interval: self.poll_interval,
            longpoll_timeout: self.longpoll_timeout,
            drain: self.drain,
            url: self.url.clone(),
            target: self.target,
            pid: self.pid,
            source_addrs: self.source_addrs,
            child_server: self.child_server,
            server_threads: self.server_threads.max(1),
            redis: match self.log.as_str() {
                "memory" => None,
                url if url.starts_with("redis://") => Some(url.to_owned()),
                other => {
                    return Err(BenchError::Usage(format!(
                        "--log {other:?}: expected memory or redis://host:port/db"
                    )));
                }
            },
            nodes: self.nodes,
            topics: self.topics,
            split_topics: self.split_topics,
            link: Link {
                http2: self.http2,
                tls: self.tls
                    || self
                        .url
                        .as_deref()
                        .is_some_and(|u| u.starts_with("https://")),
            },
            trust: Trust::from_flags(self.tls_ca.as_deref(), self.tls_insecure),
            progress: !self.quiet,
        };
        plan.validate()?;
        Ok(plan)
    }
}

impl Plan {
    /// Checks the ranges a run needs.
    ///
    /// # Errors
    /// [`BenchError::Usage`] naming the bad value.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: String| Err(BenchError::Usage(m));
        if self.clients == 0 {
            return bad("--clients must be at least 1".into());
        }
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 1_000_000.0) {
            return bad(format!("--rate {}: expected 0 < rate ≤ 1000000", self.rate));
        }
        if self.payload < MIN_PAYLOAD || self.payload > 1 << 20 {
            return bad(format!(
                "--payload {}: expected {MIN_PAYLOAD} ≤ bytes ≤ 1048576",
                self.payload
            ));
        }
        if self.duration.is_zero() {
            return bad("--duration must be > 0".into());
        }
        if self.poll_interval.is_zero() {
            return bad("--poll-interval must be > 0".into());
        }
        if self.target == Target::Nchan && self.url.is_none() {
            return bad("--target nchan needs --url (see scripts/nchan-bench.sh)".into());
        }
        if self.nodes == 0 || (self.nodes > 1 && self.redis.is_none()) {
            return bad(
                "--nodes N > 1 needs --log redis://… (nodes share the log through Redis)".into(),
            );
        }
        if self.topics == 0 || self.topics > 1000 {
            return bad(format!("--topics {}: expected 1 to 1000", self.topics));
        }
        if self.lean && self.target == Target::Nchan {
            return bad("--encoding lean is feedgate's".into());
        }
        if (self.lean || self.deflate) && self.topics > 1 && !self.split_topics {
            return bad(
                "--encoding lean / --deflate with --topics K > 1 need --split-topics".into(),
            );
        }
        if self.topics > 1 && self.target == Target::Nchan {
            return bad("--topics K > 1 speaks feedgate's topics=LIST only".into());
        }
        if let Some(url) = &self.url
            && self.link.tls != url.starts_with("https://")
        {
            return bad(format!("--tls needs an https:// --url (got {url})"));
        }
        if (self.redis.is_some() || self.nodes > 1) && (self.url.is_some() || self.child_server) {
            return bad("--log and --nodes apply to the in-process server; with --url, start the server with its own --log".into());
        }
        Ok(())
    }

    /// The base URL of the server's in-process or child listener at
    /// `addr`, in this plan's scheme.
    pub fn url_of(&self, addr: impl std::fmt::Display) -> String {
        match self.link.tls {
            true => format!("https://{addr}"),
            false => format!("http://{addr}"),
        }
    }

    /// Every subscriber of the run.
    pub fn total_clients(&self) -> usize {
        self.clients * self.transports.len()
    }

    /// Events the publisher will send.
    pub fn events(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round().max(1.0) as u64
    }
}

/// Parses `--links`: link names, or `all`.
///
/// # Errors
/// [`BenchError::Usage`] for a name that is not a link.
pub fn links(names: &[String]) -> Result<Vec<Link>, BenchError> {
    let mut out = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let add: Vec<Link> = match name {
            "all" => Link::ALL.to_vec(),
            _ => vec![Link::parse(name).ok_or_else(|| {
                BenchError::Usage(format!(
                    "--links: {name:?} is not one of h1, h2, h1+tls, h2+tls, all"
                ))
            })?],
        };
        for l in add {
            if !out.contains(&l) {
                out.push(l);
            }
        }
    }
    Ok(out)
}

/// Which parameter a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepParam {
    /// Publishes per second.
    Rate,
    /// Subscribers per transport.
    Clients,
    /// Payload bytes.
    Payload,
}

impl SweepParam {
    /// Its name, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SweepParam::Rate => "rate",
            SweepParam::Clients => "clients",
            SweepParam::Payload => "payload",
        }
    }
}

/// Parses `rate=1,10,100`.
///
/// # Errors
/// [`BenchError::Usage`] for anything else.
pub fn sweep(spec: &str) -> Result<(SweepParam, Vec<f64>), BenchError> {
    let usage = || {
        BenchError::Usage(format!(
            "--sweep {spec:?}: expected rate=…, clients=… or payload=… with comma-separated numbers"
        ))
    };
    let (name, values) = spec.split_once('=').ok_or_else(usage)?;
    let param = match name.trim() {
        "rate" => SweepParam::Rate,
        "clients" => SweepParam::Clients,
        "payload" => SweepParam::Payload,
        _ => return Err(usage()),
    };
    let values = values
        .split(',')
        .map(|v| v.trim().parse::<f64>().ok().filter(|v| *v > 0.0))
        .collect::<Option<Vec<f64>>>()
        .filter(|v| !v.is_empty())
        .ok_or_else(usage)?;
    Ok((param, values))
}

impl SweepParam {
    /// `plan` with this parameter set to `value`.
    pub fn apply(self, plan: &Plan, value: f64) -> Plan {
        let mut p = plan.clone();
        match self {
            SweepParam::Rate => p.rate = value,
            SweepParam::Clients => p.clients = value.round().max(1.0) as usize,
            SweepParam::Payload => p.payload = value.round() as usize,
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports_and_sweeps() {
        let t = transports(&["ws".into(), "poll".into(), "ws".into()]).unwrap();
        assert_eq!(t, vec![Transport::Ws, Transport::Poll]);
        assert!(transports(&["publish".into()]).is_err());
        let (p, v) = sweep("rate=1,10,100").unwrap();
        assert_eq!(p, SweepParam::Rate);
        assert_eq!(v, vec![1.0, 10.0, 100.0]);
        assert!(sweep("rate=").is_err());
        assert!(sweep("speed=1").is_err());
        assert_eq!(links(&["all".into()]).unwrap(), Link::ALL.to_vec());
        let two = links(&["h2+tls".into(), "h1".into(), "h1".into()]).unwrap();
        assert_eq!(
            two.iter().map(|l| l.name()).collect::<Vec<_>>(),
            ["h2+tls", "h1"]
        );
        assert!(links(&["h3".into()]).is_err());
    }

    #[test]
    fn validates_ranges() {
        let p = Plan {
            payload: 10,
            ..Plan::default()
        };
        assert!(p.validate().is_err());
        assert!(Plan::default().validate().is_ok());
        let p = Plan {
            target: Target::Nchan,
            ..Plan::default()
        };
        assert!(p.validate().is_err());
        let p = Plan {
            url: Some("http://127.0.0.1:1".into()),
            link: Link {
                http2: false,
                tls: true,
            },
            ..Plan::default()
        };
        assert!(p.validate().is_err(), "--tls with an http:// URL");
    }
}
