//! Idle mode (`--idle N --transport ws|sse|longpoll`): hold N subscribers
//! that receive nothing, and report the server's resident memory growth
//! per connection and how many connections dropped while held. `--tls`
//! and `--http2` hold them on HTTPS and HTTP/2; with `--http2
//! --split-topics --topics K` each connection carries K streams (a
//! browser page with K `EventSource`s on one HTTP/2 connection).
//!
//! RSS is read from `/proc/PID/status`. The server must be its own process
//! for that to mean anything, so without `--url` the bench starts `feedgate
//! serve` as a child process (the same binary) on a free loopback port;
//! with `--url`, pass the server's `--pid`. Connections are spread over
//! 127.0.0.2, 127.0.0.3, … (about 28k ephemeral ports per source address),
//! and the open-file limit is raised to fit.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::args::BenchArgs;
use super::child::ChildServer;
use super::sys::{self, Machine};
use super::{BenchError, Target};
use crate::client::{
    ClientError, Endpoint, SubscribeOptions, Subscriber, Trust, Wire, open_websocket,
};
use crate::protocol::{Cursor, Transport};
use crate::wire::ByteCount;

/// The `schema` field of an idle report's JSON.
pub const SCHEMA: &str = "feedgate-bench-idle/1";
/// Connections opening at once.
const CONNECTS_IN_FLIGHT: usize = 512;
/// Time for the server to settle after the last connect before RSS is read.
const SETTLE: Duration = Duration::from_secs(3);

/// What an idle run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleReport {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The transport held.
    pub transport: String,
    /// Topics each subscriber followed over its one connection.
    #[serde(default)]
    pub topics: usize,
    /// The link asked for: `h1`, `h2`, `h1+tls` or `h2+tls`.
    #[serde(default)]
    pub link: String,
    /// Streams each connection carried: K with `--http2 --split-topics
    /// --topics K` (one subscription per topic), else 1.
    #[serde(default)]
    pub streams_per_connection: usize,
    /// Subscribers asked for.
    pub asked: usize,
    /// Subscribers that connected.
    pub connected: u64,
    /// Subscribers that failed to connect.
    pub failed: u64,
    /// Connected subscribers whose connection ended while held.
    pub dropped: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Seconds all connections were held after connecting.
    pub held_s: f64,
    /// Seconds it took to connect them all.
    pub connect_s: f64,
    /// Server RSS before the connections, bytes.
    pub rss_before: Option<u64>,
    /// Server RSS with every connection open (after settling), bytes.
    pub rss_after: Option<u64>,
    /// Server RSS at the end of the hold, bytes.
    pub rss_end: Option<u64>,
    /// (rss_after − rss_before) / connected.
    pub rss_per_connection: Option<f64>,
    /// Server CPU seconds over the hold (pings, timers), if known.
    pub server_cpu_s: Option<f64>,
    /// Source addresses used.
    pub source_addrs: usize,
    /// The open-file limit in force.
    pub nofile: u64,
    /// Where it ran.
    pub machine: Machine,
}

impl IdleReport {
    /// A human summary.
    pub fn text(&self) -> String {
        let mib =
            |b: Option<u64>| b.map_or("?".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "idle {} on {} × {} topic(s) in {} stream(s) per connection: {} of {} connected in {:.1}s ({} failed) over {} source address(es); held {:.0}s; dropped {}",
            self.transport,
            if self.link.is_empty() {
                "h1"
            } else {
                &self.link
            },
            self.topics.max(1),
            self.streams_per_connection.max(1),
            self.connected,
            self.asked,
            self.connect_s,
            self.failed,
            self.source_addrs.max(1),
            self.held_s,
            self.dropped
        );
        let _ = writeln!(
            out,
            "server RSS: {} before → {} connected → {} at the end",
            mib(self.rss_before),
            mib(self.rss_after),
            mib(self.rss_end)
        );
        match self.rss_per_connection {
            Some(b) => {
                let _ = writeln!(
                    out,
                    "server RSS per idle {} connection: {:.0} bytes ({:.2} KiB)",
                    self.transport,
                    b,
                    b / 1024.0
                );
            }
            None => {
                let _ = writeln!(out, "server RSS unknown: pass --pid with --url");
            }
        }
        if let Some(e) = &self.first_error {
            let _ = writeln!(out, "first error: {e}");
        }
        if let Some(cpu) = self.server_cpu_s {
            let _ = writeln!(out, "server CPU over the hold: {cpu:.2}s");
        }
        out
    }
}

/// Runs idle mode with `n` subscribers.
///
/// # Errors
/// For a bad transport, a server that does not start, or `n` = 0.
pub async fn run(args: &BenchArgs, n: usize) -> Result<IdleReport, BenchError> {
    let transport = Transport::parse(&args.transport)
        .filter(|t| matches!(t, Transport::Ws | Transport::Sse | Transport::LongPoll))
        .ok_or_else(|| {
            BenchError::Usage("--transport: idle mode takes ws, sse or longpoll".into())
        })?;
    if n == 0 {
        return Err(BenchError::Usage("--idle must be at least 1".into()));
    }
    if args.target != Target::Feedgate {
        return Err(BenchError::Usage("idle mode speaks feedgate only".into()));
    }
    let plan = args.plan()?;
    let split = plan.split_topics && plan.topics > 1;
    if split && !(plan.link.http2 && transport != Transport::Ws) {
        return Err(BenchError::Usage(
            "idle --split-topics holds K streams on one HTTP/2 connection: it needs --http2, and sse or longpoll (over HTTP/1.1 it is --idle N×K)".into(),
        ));
    }
    let mut machine = Machine::now();
    let nofile = sys::raise_nofile(n as u64 + 4_096);
    let (child, url, pid) = match &args.url {
        Some(u) => (None, u.clone(), args.pid),
        None => {
            let child = ChildServer::spawn(n, Duration::from_secs(60), plan.link.tls)?;
            let (url, pid) = (child.url().to_owned(), child.pid());
            (Some(child), url, Some(pid))
        }
    };
    // The server of the bench's own has a certificate made for this run.
    let trust = match args.url {
        Some(_) => plan.trust.clone(),
        None => Trust::Insecure,
    };
    let ep = Endpoint::parse_with(&url, trust)?.with_http2(plan.link.http2);
    super::child::wait_healthy(&ep).await?;
    let topic = format!("idle-{:016x}", rand::random::<u64>());
    // With --topics K, every subscriber follows the same K topics over its
    // one connection (`topics=LIST`).
    let topics: Vec<String> = match args.topics {
        0 | 1 => vec![topic],
        k => (0..k).map(|i| format!("{topic}-{i}")).collect(),
    };
    let sources = sys::source_addrs(n, args.source_addrs);
    // Let the server finish starting (allocator arenas, runtime threads).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = pid.and_then(|p| sys::rss_bytes(Some(p)));

    let stop = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let ep = match sources.get(i % sources.len().max(1)) {
            Some(ip) => ep.clone().with_local_addr(*ip),
            None => ep.clone(),
        };
        let held = Held {
            ep,
            topics: topics.clone(),
            split,
            transport,
            longpoll_timeout: args.longpoll_timeout,
        };
        tasks.spawn(held.hold(permits.clone(), counts.clone(), stop.clone()));
    }
    while counts.settled() < n as u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if args.progress_enabled() {
            eprint!(
                "\ridle: {} connected, {} failed",
                counts.connected.load(Ordering::Relaxed),
                counts.failed.load(Ordering::Relaxed)
            );
        }
    }
    if args.progress_enabled() {
        eprintln!();
    }
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let rss_after = pid.and_then(|p| sys::rss_bytes(Some(p)));
    let cpu_before = pid.and_then(|p| sys::process_cpu(Some(p)));
    let held = Instant::now();
    tokio::time::sleep(args.duration).await;
    let held_s = held.elapsed().as_secs_f64();
    let rss_end = pid.and_then(|p| sys::rss_bytes(Some(p)));
    let cpu_after = pid.and_then(|p| sys::process_cpu(Some(p)));
    let dropped = counts.dropped.load(Ordering::Relaxed);
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    drop(child);
    machine.load_after = sys::load_average();
    let connected = counts.connected.load(Ordering::Relaxed);
    Ok(IdleReport {
        schema: SCHEMA.to_owned(),
        transport: transport.as_str().to_owned(),
        topics: topics.len(),
        link: plan.link.name().to_owned(),
        streams_per_connection: if split { topics.len() } else { 1 },
        asked: n,
        connected,
        failed: counts.failed.load(Ordering::Relaxed),
        dropped,
        first_error: counts
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        held_s,
        connect_s,
        rss_before,
        rss_after,
        rss_end,
        rss_per_connection: match (rss_before, rss_after) {
            (Some(b), Some(a)) if connected > 0 => Some((a as f64 - b as f64) / connected as f64),
            _ => None,
        },
        server_cpu_s: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
        source_addrs: sources.len(),
        nofile,
        machine,
    })
}

#[derive(Default)]
struct Counts {
    connected: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Counts {
    fn settled(&self) -> u64 {
        self.connected.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    fn note(&self, counter: &AtomicU64, e: impl std::fmt::Display) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        first.get_or_insert_with(|| e.to_string());
    }
}

/// One idle subscriber (a simulated browser): what it follows, and how.
struct Held {
    ep: Endpoint,
    topics: Vec<String>,
    /// One subscription per topic, all on the endpoint's one HTTP/2
    /// connection.
    split: bool,
    transport: Transport,
    longpoll_timeout: Duration,
}

impl Held {
    /// Connects, then reads (answering pings) until stopped.
    async fn hold(self, permits: Arc<Semaphore>, counts: Arc<Counts>, stop: CancellationToken) {
        let permit = permits.acquire().await;
        let connected = match self.transport {
            Transport::Ws => self
                .websocket()
                .await
                .map(|ws| vec![Holder::Ws(Box::new(ws))]),
            _ => self.subscriptions().await,
        };
        let holders = match connected {
            Ok(h) => h,
            Err(e) => return counts.note(&counts.failed, e),
        };
        drop(permit);
        counts.connected.fetch_add(1, Ordering::Relaxed);
        let mut reads: JoinSet<Result<(), ClientError>> = JoinSet::new();
        for h in holders {
            reads.spawn(h.read());
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            ended = reads.join_next() => {
                let why = match ended {
                    Some(Ok(Err(e))) => e.to_string(),
                    _ => "a held stream ended".to_owned(),
                };
                counts.note(&counts.dropped, why);
            }
        }
    }

    /// The WebSocket: over HTTP/2 where the server takes it.
    async fn websocket(&self) -> Result<crate::client::WsStream, ClientError> {
        let path = match self.topics.as_slice() {
            [topic] => format!("topics/{topic}/ws"),
            many => format!("ws?topics={}", many.join(",")),
        };
        let bytes = Arc::new(ByteCount::default());
        open_websocket(&self.ep, &bytes, &self.ep.path(&path)).await
    }

    /// The subscriptions: one for every topic (split, on HTTP/2 streams of
    /// one connection), or one for all.
    async fn subscriptions(&self) -> Result<Vec<Holder>, ClientError> {
        let opts = SubscribeOptions {
            longpoll_timeout: self.longpoll_timeout,
            ..SubscribeOptions::default()
        };
        let list: Vec<(String, Cursor)> = self
            .topics
            .iter()
            .map(|t| (t.clone(), Cursor::default()))
            .collect();
        let (ep, groups): (Endpoint, Vec<&[(String, Cursor)]>) = match self.split {
            true => (self.ep.clone().shared(), list.chunks(1).collect()),
            false => (self.ep.clone(), vec![&list[..]]),
        };
        let mut held = Vec::with_capacity(groups.len());
        for group in groups {
            let sub =
                Subscriber::connect_list(&ep, group, self.transport, opts.clone(), Wire::default())
                    .await?;
            held.push(Holder::Sub(Box::new(sub)));
        }
        Ok(held)
    }
}

/// One held stream.
enum Holder {
    Ws(Box<crate::client::WsStream>),
    Sub(Box<Subscriber>),
}

impl Holder {
    /// Reads until the stream ends (which an idle one should not).
    async fn read(self) -> Result<(), ClientError> {
        match self {
            Holder::Ws(mut ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(_)) => {}
                }
            },
            Holder::Sub(mut sub) => loop {
                sub.next().await?;
            },
        }
    }
}
