//! Measurements of the Redis backend at scale, for docs/redis.md,
//! docs/benchmarks.md and docs/scaling.md. Three modes:
//!
//! ```text
//! # Redis connections per Redis node as topics grow (one in-process node;
//! # the topics are followed over multiplexed SSE streams of 1000 each):
//! redis_scale connections REDIS_URL 10,1000,10000
//!
//! # Fan-out against running gateways (`feedgate serve`): TOPICS topics,
//! # SUBS WebSocket subscribers each spread over the gateways, one publish
//! # per topic per second for SECS seconds; then loss, delivery latency,
//! # Redis commands and CPU (all Redis nodes), and each gateway's CPU
//! # (PIDS: their process ids) and wire bytes:
//! redis_scale fanout GATEWAY_URL,… TOPICS SUBS SECS [REDIS_URL|-] [PID,…]
//!
//! # Publish throughput and its cost per event (one in-process node;
//! # PUBLISHERS keep-alive connections over 64 topics, as fast as answered):
//! redis_scale publish REDIS_URL PUBLISHERS SECS [WAIT_REPLICAS]
//! ```
//!
//! REDIS_URL is `redis://host:port/db` or `redis+cluster://host:port,…`.
//! Use a Redis nobody else uses during the run: its counters are read
//! before and after.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use feedgate::client::{Delivery, Endpoint, HttpConn, SubscribeOptions, Subscriber};
use feedgate::log::{Cursor, RedisOptions, unix_micros};
use feedgate::metrics::Transport;
use feedgate::wire::ByteCount;
use feedgate::{Config, LogBackend, RunningServer};
use hyper::{Method, StatusCode};
use redis::aio::MultiplexedConnection;
use tokio::io::AsyncWriteExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| -> Result<usize, Error> {
        arg(i)
            .parse()
            .map_err(|_| format!("argument {i}: not a number: {:?}", arg(i)).into())
    };
    match arg(0) {
        "connections" => {
            let counts: Vec<usize> = arg(2)
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            connections(arg(1), &counts).await
        }
        "fanout" => {
            let gateways: Vec<String> = arg(1).split(',').map(str::to_owned).collect();
            let pids: Vec<u32> = match arg(6) {
                "" => Vec::new(),
                p => p.split(',').map(str::parse).collect::<Result<_, _>>()?,
            };
            let redis = match arg(5) {
                "" | "-" => None,
                url => Some(url),
            };
            fanout(&gateways, num(2)?, num(3)?, num(4)? as u64, redis, &pids).await
        }
        "publish" => {
            let wait = if arg(4).is_empty() { 0 } else { num(4)? };
            publish(arg(1), num(2)?, num(3)? as u64, wait).await
        }
        _ => Err("usage: redis_scale connections|fanout|publish … (see the file's doc)".into()),
    }
}

// ---- The Redis nodes of a URL, and their counters ----------------------------

/// Every node of a single Redis or a cluster, and which are masters.
struct RedisNodes {
    all: Vec<String>,
    masters: Vec<String>,
}

impl RedisNodes {
    async fn of(url: &str) -> Result<RedisNodes, Error> {
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let seed = rest.split(',').next().ok_or("no node in the URL")?;
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut conn(seed).await?)
                .await?;
            let (mut all, mut masters) = (Vec::new(), Vec::new());
            for line in nodes.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                if f.len() < 3 || f[2].contains("fail") {
                    continue;
                }
                let addr = f[1].split('@').next().unwrap_or_default().to_owned();
                if f[2].contains("master") {
                    masters.push(addr.clone());
                }
                all.push(addr);
            }
            all.sort();
            masters.sort();
            Ok(RedisNodes { all, masters })
        } else {
            let info = redis::IntoConnectionInfo::into_connection_info(url)?;
            let addr = match info.addr() {
                redis::ConnectionAddr::Tcp(h, p) => format!("{h}:{p}"),
                other => return Err(format!("not a TCP address: {other:?}").into()),
            };
            Ok(RedisNodes {
                all: vec![addr.clone()],
                masters: vec![addr],
            })
        }
    }

    /// Commands executed (`INFO commandstats` calls), summed over masters.
    async fn commands(&self) -> Result<BTreeMap<String, u64>, Error> {
        let mut sum = BTreeMap::new();
        for m in &self.masters {
            let info = info(m, "commandstats").await?;
            for l in info.lines() {
                let Some((name, rest)) = l.strip_prefix("cmdstat_").and_then(|l| l.split_once(':'))
                else {
                    continue;
                };
                let calls: u64 = rest
                    .strip_prefix("calls=")
                    .and_then(|r| r.split(',').next())
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                *sum.entry(name.to_owned()).or_default() += calls;
            }
        }
        Ok(sum)
    }

    /// CPU seconds (user + system) of every node, replicas included.
    async fn cpu(&self) -> Result<f64, Error> {
        Ok(self.cpu_by_role().await?.iter().sum())
    }

    /// CPU seconds of the masters and of the other nodes (replicas).
    async fn cpu_by_role(&self) -> Result<[f64; 2], Error> {
        let mut sum = [0.0; 2];
        for n in &self.all {
            let role = usize::from(!self.masters.contains(n));
            let info = info(n, "cpu").await?;
            for l in info.lines() {
                if let Some(v) = l
                    .strip_prefix("used_cpu_sys:")
                    .or_else(|| l.strip_prefix("used_cpu_user:"))
                {
                    sum[role] += v.trim().parse::<f64>().unwrap_or(0.0);
                }
            }
        }
        Ok(sum)
    }

    /// Bytes every node sent (`total_net_output_bytes`).
    async fn bytes_out(&self) -> Result<u64, Error> {
        let mut sum = 0;
        for n in &self.all {
            let info = info(n, "stats").await?;
            sum += info
                .lines()
                .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        Ok(sum)
    }

    /// `CLIENT LIST` count per node.
    async fn clients(&self) -> Result<BTreeMap<String, usize>, Error> {
        let mut out = BTreeMap::new();
        for n in &self.all {
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut conn(n).await?)
                .await?;
            out.insert(n.clone(), list.lines().count());
        }
        Ok(out)
    }

    /// Channels subscribed, plain and sharded, over the masters.
    async fn channels(&self) -> Result<usize, Error> {
        let mut n = 0;
        for m in &self.masters {
            let mut c = conn(m).await?;
            for kind in ["CHANNELS", "SHARDCHANNELS"] {
                let names: Vec<String> = redis::cmd("PUBSUB").arg(kind).query_async(&mut c).await?;
                n += names.len();
            }
        }
        Ok(n)
    }
}

async fn conn(addr: &str) -> Result<MultiplexedConnection, Error> {
    Ok(redis::Client::open(format!("redis://{addr}"))?
        .get_multiplexed_async_connection()
        .await?)
}

async fn info(addr: &str, section: &str) -> Result<String, Error> {
    Ok(redis::cmd("INFO")
        .arg(section)
        .query_async(&mut conn(addr).await?)
        .await?)
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(k, v)| *v > 0 && !k.starts_with("info") && !k.starts_with("client|"))
        .collect()
}

/// CPU seconds (user + system) a process has used, from /proc.
fn process_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn start_node(
    url: &str,
    options: RedisOptions,
    per_connection: usize,
) -> Result<RunningServer, Error> {
    let config = Config {
        log: if url == "memory" {
            LogBackend::Memory
        } else {
            LogBackend::Redis(url.to_owned())
        },
        redis: options,
        max_topics: 1_000_000,
        max_topics_per_connection: per_connection,
        ..Config::default()
    };
    Ok(RunningServer::start("127.0.0.1:0".parse()?, config).await?)
}

/// Publishes one event to each of `topics` over a few keep-alive
/// connections.
async fn create(ep: &Endpoint, topics: &[String]) -> Result<(), Error> {
    let chunks: Vec<Vec<String>> = topics
        .chunks(topics.len().div_ceil(8).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let ep = ep.clone();
        tasks.push(tokio::spawn(async move {
            let mut http = HttpConn::connect(&ep, Arc::default()).await?;
            for t in chunk {
                let path = ep.path(&format!("topics/{t}/events"));
                let (status, body) = http
                    .request(Method::POST, &path, Some(Bytes::from_static(b"0")))
                    .await?;
                if status != StatusCode::CREATED {
                    return Err(format!("publish answered {status}: {body:?}").into());
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

// ---- connections -------------------------------------------------------------

async fn connections(url: &str, counts: &[usize]) -> Result<(), Error> {
    let redis = RedisNodes::of(url).await?;
    let baseline = redis.clients().await?;
    let node = start_node(url, RedisOptions::default(), 1000).await?;
    let ep = Endpoint::parse(&node.url())?;
    let mut streams = Vec::new();
    let mut followed = 0;
    println!("load average {}", uptime());
    println!(
        "| active topics | Redis connections of the node, per Redis node | total | one more topic: subscribe to first event |"
    );
    println!("|---|---|---|---|");
    for &n in counts {
        let topics: Vec<String> = (followed..n).map(|i| format!("scale{i}")).collect();
        create(&ep, &topics).await?;
        for chunk in topics.chunks(1000) {
            let mut sock = tokio::net::TcpStream::connect(node.addr()).await?;
            let req = format!(
                "GET /sse?topics={} HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n",
                chunk.join(",")
            );
            sock.write_all(req.as_bytes()).await?;
            streams.push(sock);
        }
        followed = n;
        let deadline = Instant::now() + Duration::from_secs(120);
        while redis.channels().await? < n {
            if Instant::now() > deadline {
                return Err(format!(
                    "only {} of {n} channels subscribed",
                    redis.channels().await?
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let now = redis.clients().await?;
        let added: BTreeMap<&String, usize> = now
            .iter()
            .map(|(k, v)| (k, v.saturating_sub(baseline.get(k).copied().unwrap_or(0))))
            .collect();
        let per: Vec<String> = added.values().map(usize::to_string).collect();
        // One more topic, followed while `n` are: subscribing to it waits
        // for its channel's SUBSCRIBE and one read, not for other topics.
        let extra = format!("extra{n}");
        create(&ep, std::slice::from_ref(&extra)).await?;
        let t0 = Instant::now();
        let mut sub = Subscriber::connect(
            &ep,
            &extra,
            Transport::Ws,
            Cursor {
                after: Some(0),
                epoch: None,
            },
            SubscribeOptions::default(),
        )
        .await?;
        let first = sub.next().await?;
        let took = t0.elapsed();
        if !matches!(first, Delivery::Event(_)) {
            return Err(format!("unexpected {first:?}").into());
        }
        sub.close().await;
        println!(
            "| {n} | {} | {} | {:.1} ms |",
            per.join(" + "),
            added.values().sum::<usize>(),
            took.as_secs_f64() * 1000.0
        );
    }
    drop(streams);
    node.shutdown().await?;
    Ok(())
}

// ---- fanout ------------------------------------------------------------------

async fn fanout(
    gateways: &[String],
    topics: usize,
    subs: usize,
    secs: u64,
    redis_url: Option<&str>,
    pids: &[u32],
) -> Result<(), Error> {
    let eps: Vec<Endpoint> = gateways
        .iter()
        .map(|g| Endpoint::parse(g))
        .collect::<Result<_, _>>()?;
    let run = format!("{:x}", unix_micros() % 0xffff_ffff);
    let names: Vec<String> = (0..topics).map(|t| format!("f{run}-{t}")).collect();
    create(&eps[0], &names).await?;
    println!("load average at start {}", uptime());

    // Subscribers: WebSocket, from seq 1 (the creating event), spread over
    // the gateways.
    let expected: Arc<Vec<AtomicU64>> = Arc::new((0..topics).map(|_| AtomicU64::new(1)).collect());
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let mut readers = Vec::new();
    let connect_started = Instant::now();
    for t in 0..topics {
        for k in 0..subs {
            let ep = eps[(t * subs + k) % eps.len()].clone();
            let cursor = Cursor {
                after: Some(1),
                epoch: None,
            };
            let sub = Subscriber::connect(
                &ep,
                &names[t],
                Transport::Ws,
                cursor,
                SubscribeOptions::default(),
            )
            .await?;
            readers.push(tokio::spawn(receive(
                sub,
                t,
                expected.clone(),
                done_rx.clone(),
            )));
        }
    }
    println!(
        "{} subscribers connected in {:.1} s",
        topics * subs,
        connect_started.elapsed().as_secs_f64()
    );
    let redis = match redis_url {
        Some(u) => Some(RedisNodes::of(u).await?),
        None => None,
    };
    let (cmd0, rcpu0, rbytes0) = match &redis {
        Some(r) => (
            r.commands().await?,
            r.cpu_by_role().await?,
            r.bytes_out().await?,
        ),
        None => (BTreeMap::new(), [0.0; 2], 0),
    };
    let gcpu0: Vec<f64> = pids.iter().map(|p| process_cpu(*p)).collect();
    let wire0 = wire_bytes(gateways).await?;

    // Publishers: each topic once a second, spread over 16 connections
    // and over the gateways.
    let started = Instant::now();
    let conns = 16.min(topics);
    let mut pubs = Vec::new();
    for c in 0..conns {
        let ep = eps[c % eps.len()].clone();
        let mine: Vec<usize> = (c..topics).step_by(conns).collect();
        let names = names.clone();
        let expected = expected.clone();
        pubs.push(tokio::spawn(async move {
            let mut http = HttpConn::connect(&ep, Arc::default()).await?;
            let interval = Duration::from_secs(1).div_f64(mine.len() as f64);
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let end = Instant::now() + Duration::from_secs(secs);
            let mut i = 0;
            while Instant::now() < end {
                tick.tick().await;
                let t = mine[i % mine.len()];
                i += 1;
                let path = ep.path(&format!("topics/{}/events", names[t]));
                let body = Bytes::from(format!(r#"{{"i":{i},"pad":"{:064}"}}"#, 0));
                let (status, body) = http.request(Method::POST, &path, Some(body)).await?;
                if status != StatusCode::CREATED {
                    return Err(format!("publish answered {status}: {body:?}").into());
                }
                expected[t].fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, Error>(i)
        }));
    }
    let mut published = 0;
    for p in pubs {
        published += p.await?? as u64;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    done_tx.send(true)?;
    let mut latencies = Vec::new();
    let (mut lost, mut dup) = (0u64, 0u64);
    for r in readers {
        let got = r.await??;
        lost += got.lost;
        dup += got.dup;
        latencies.extend(got.latencies);
    }
    let delivered = latencies.len() as u64;
    let gcpu: Vec<f64> = pids
        .iter()
        .zip(&gcpu0)
        .map(|(p, c0)| process_cpu(*p) - c0)
        .collect();
    let wire = wire_bytes(gateways).await? - wire0;
    println!("load average at end {}", uptime());
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    println!(
        "gateways {} topics {topics} subscribers/topic {subs}: published {published} in {publish_secs:.1} s \
         ({:.0}/s), delivered {delivered}, lost {lost}, duplicated {dup}",
        gateways.len(),
        published as f64 / publish_secs
    );
    println!(
        "delivery latency (publish -> client): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "gateway wire bytes out: {wire} = {:.1} per delivered event",
        wire as f64 / delivered.max(1) as f64
    );
    if !gcpu.is_empty() {
        let total: f64 = gcpu.iter().sum();
        println!(
            "gateway CPU: {:?} s, total {total:.2} s = {:.2} us per delivered event",
            gcpu.iter()
                .map(|c| (c * 100.0).round() / 100.0)
                .collect::<Vec<_>>(),
            total * 1e6 / delivered.max(1) as f64
        );
    }
    if let Some(r) = &redis {
        let cmds = delta(&cmd0, &r.commands().await?);
        let [m1, o1] = r.cpu_by_role().await?;
        let (masters, others) = (m1 - rcpu0[0], o1 - rcpu0[1]);
        let rcpu = masters + others;
        let rbytes = r.bytes_out().await? - rbytes0;
        let all: u64 = cmds.values().sum();
        let sent: u64 = [
            "evalsha",
            "ping",
            "subscribe",
            "ssubscribe",
            "script|load",
            "cluster|slots",
        ]
        .iter()
        .filter_map(|k| cmds.get(*k))
        .sum();
        println!("redis commands (INFO commandstats delta, masters): {cmds:?}");
        println!(
            "redis CPU: masters {masters:.2} s = {:.1} us/published, replicas {others:.2} s = {:.1} us/published",
            masters * 1e6 / published as f64,
            others * 1e6 / published as f64
        );
        println!(
            "redis: {all} executed = {:.2}/published, {:.4}/delivered; {sent} sent by gateways = {:.2}/published; \
             CPU {rcpu:.2} s = {:.1} us/published; bytes out {rbytes} = {:.0}/published",
            all as f64 / published as f64,
            all as f64 / delivered.max(1) as f64,
            sent as f64 / published as f64,
            rcpu * 1e6 / published as f64,
            rbytes as f64 / published as f64
        );
    }
    Ok(())
}

struct Received {
    latencies: Vec<u32>,
    lost: u64,
    dup: u64,
}

/// Reads events until `done` and then until the topic's expected head
/// (or 30 s of silence); counts what is missing or repeated.
async fn receive(
    mut sub: Subscriber,
    topic: usize,
    expected: Arc<Vec<AtomicU64>>,
    mut done: tokio::sync::watch::Receiver<bool>,
) -> Result<Received, Error> {
    let mut out = Received {
        latencies: Vec::new(),
        lost: 0,
        dup: 0,
    };
    let mut last = 1;
    loop {
        let finished = *done.borrow();
        let want = expected[topic].load(Ordering::Relaxed);
        if finished && last >= want {
            return Ok(out);
        }
        let next = tokio::select! {
            n = tokio::time::timeout(Duration::from_secs(30), sub.next()) => n,
            _ = done.changed(), if !finished => continue,
        };
        match next {
            Ok(Ok(Delivery::Event(e))) => {
                if e.seq <= last {
                    out.dup += 1;
                    continue;
                }
                out.lost += e.seq - last - 1;
                last = e.seq;
                let us = unix_micros().saturating_sub(e.time_us);
                out.latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Ok(Ok(other)) => return Err(format!("unexpected {other:?}").into()),
            Ok(Err(e)) => return Err(e.to_string().into()),
            Err(_) => {
                out.lost += want.saturating_sub(last);
                return Ok(out);
            }
        }
    }
}

/// `feedgate_wire_bytes_total{direction="out"}` summed over the gateways.
async fn wire_bytes(gateways: &[String]) -> Result<u64, Error> {
    let mut sum = 0.0;
    for g in gateways {
        let ep = Endpoint::parse(g)?;
        let mut http = HttpConn::connect(&ep, Arc::default()).await?;
        let (_, body) = http.request(Method::GET, &ep.path("metrics"), None).await?;
        for l in String::from_utf8_lossy(&body).lines() {
            if l.starts_with("feedgate_wire_bytes_total{") && l.contains(r#"direction="out""#) {
                sum += l
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
        }
    }
    Ok(sum as u64)
}

// ---- publish -----------------------------------------------------------------

async fn publish(url: &str, publishers: usize, secs: u64, wait: usize) -> Result<(), Error> {
    let redis = RedisNodes::of(url).await?;
    let options = RedisOptions {
        wait,
        ..RedisOptions::default()
    };
    let node = start_node(url, options, 100).await?;
    let ep = Endpoint::parse(&node.url())?;
    let topics: Vec<String> = (0..64)
        .map(|t| format!("tp{:x}-{t}", unix_micros() % 0xffff))
        .collect();
    create(&ep, &topics).await?;
    let cmd0 = redis.commands().await?;
    let rcpu0 = redis.cpu().await?;
    let self0 = process_cpu(std::process::id());
    println!("load average at start {}", uptime());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let ep = ep.clone();
        let topics = topics.clone();
        tasks.push(tokio::spawn(async move {
            let mut http = HttpConn::connect(&ep, Arc::new(ByteCount::default())).await?;
            let end = Instant::now() + Duration::from_secs(secs);
            let mut took = Vec::new();
            let mut i = p;
            while Instant::now() < end {
                let path = ep.path(&format!("topics/{}/events", topics[i % topics.len()]));
                i += publishers;
                let body = Bytes::from(format!(r#"{{"p":{p},"pad":"{:064}"}}"#, 0));
                let t0 = Instant::now();
                let (status, body) = http.request(Method::POST, &path, Some(body)).await?;
                if status != StatusCode::CREATED {
                    return Err(format!("publish answered {status}: {body:?}").into());
                }
                took.push(t0.elapsed().as_micros() as u32);
            }
            Ok::<_, Error>(took)
        }));
    }
    let mut took = Vec::new();
    for t in tasks {
        took.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = took.len() as f64;
    let cmds = delta(&cmd0, &redis.commands().await?);
    let rcpu = redis.cpu().await? - rcpu0;
    let own = process_cpu(std::process::id()) - self0;
    println!("load average at end {}", uptime());
    took.sort_unstable();
    let pct = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)] as f64 / 1000.0;
    let all: u64 = cmds.values().sum();
    println!(
        "{url} publishers {publishers} wait {wait}: {n} publishes in {elapsed:.1} s = {:.0}/s; \
         publish round trip p50 {:.2} ms, p99 {:.2} ms",
        n / elapsed,
        pct(0.5),
        pct(0.99)
    );
    println!(
        "per publish: redis CPU {:.1} us (all {} nodes), gateway+clients CPU {:.1} us, {:.2} commands executed",
        rcpu * 1e6 / n,
        redis.all.len(),
        own * 1e6 / n,
        all as f64 / n
    );
    println!("redis commands: {cmds:?}");
    node.shutdown().await?;
    Ok(())
}
