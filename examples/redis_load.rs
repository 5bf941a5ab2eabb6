//! A bounded load against the Redis Streams backend, for docs/redis.md:
//! starts 1 or 2 gateway nodes in this process on one Redis, spreads
//! subscribers over them, publishes a fixed number of events through
//! keep-alive connections round-robin over the nodes, and prints publish
//! throughput, delivery latency and Redis commands per delivered event
//! (from `INFO commandstats` deltas).
//!
//! ```text
//! cargo run --release --example redis_load -- redis://127.0.0.1:6379/0 \
//!     [nodes=2] [publishers=8] [events=5000] [subscribers=200]
//! ```
//!
//! `memory` in place of the URL runs one in-memory node as a baseline.
//!
//! Use a Redis nobody else uses during the run (the deltas count every
//! client); the topic is new each run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use feedgate::client::{Delivery, Endpoint, HttpConn, SubscribeOptions, Subscriber};
use feedgate::log::{Cursor, unix_micros};
use feedgate::metrics::Transport;
use feedgate::wire::ByteCount;
use feedgate::{Config, LogBackend, RunningServer};
use hyper::{Method, StatusCode};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .cloned()
        .ok_or("usage: redis_load REDIS_URL [nodes] [publishers] [events] [subscribers]")?;
    let num = |i: usize, default: usize| -> Result<usize, String> {
        args.get(i).map_or(Ok(default), |a| {
            a.parse().map_err(|_| format!("bad number {a:?}"))
        })
    };
    // `memory` instead of a URL runs one in-memory node, as a baseline.
    let memory = url == "memory";
    let nodes = if memory { 1 } else { num(1, 2)?.clamp(1, 8) };
    let publishers = num(2, 8)?.max(1);
    let events = num(3, 5_000)?.max(1);
    let subscribers = num(4, 200)?;
    let topic = format!("load-{:x}", unix_micros());

    let mut servers = Vec::new();
    for _ in 0..nodes {
        let config = Config {
            log: if memory {
                LogBackend::Memory
            } else {
                LogBackend::Redis(url.clone())
            },
            ..Config::default()
        };
        servers.push(RunningServer::start("127.0.0.1:0".parse()?, config).await?);
    }
    let eps: Vec<Endpoint> = servers
        .iter()
        .map(|s| Endpoint::parse(&s.url()))
        .collect::<Result<_, _>>()?;

    // Subscribers: WebSocket, SSE and long poll in turn, spread over nodes,
    // all from seq 0 of the new topic.
    let mix = [Transport::Ws, Transport::Sse, Transport::LongPoll];
    let mut readers = Vec::new();
    for k in 0..subscribers {
        let opts = SubscribeOptions::default();
        let start = Cursor {
            after: Some(0),
            epoch: None,
        };
        let sub =
            Subscriber::connect(&eps[k % nodes], &topic, mix[k % mix.len()], start, opts).await?;
        readers.push(tokio::spawn(collect(sub, events)));
    }

    let mut redis = match memory {
        true => None,
        false => Some(
            redis::Client::open(url.as_str())?
                .get_multiplexed_async_connection()
                .await?,
        ),
    };
    let before = command_calls(redis.as_mut()).await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    let per = events.div_ceil(publishers);
    for p in 0..publishers {
        let n = per.min(events.saturating_sub(p * per));
        let ep = eps[p % nodes].clone();
        let path = ep.path(&format!("topics/{topic}/events"));
        tasks.push(tokio::spawn(async move {
            let mut http = HttpConn::connect(&ep, Arc::new(ByteCount::default())).await?;
            for i in 0..n {
                let body = Bytes::from(format!(r#"{{"p":{p},"i":{i},"pad":"{:064}"}}"#, 0));
                let (status, body) = http.request(Method::POST, &path, Some(body)).await?;
                if status != StatusCode::CREATED {
                    return Err(format!("publish answered {status}: {body:?}").into());
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for t in tasks {
        t.await?.map_err(|e| e.to_string())?;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for r in readers {
        latencies.extend(r.await?.map_err(|e| e.to_string())?);
    }
    let total_secs = started.elapsed().as_secs_f64();
    let after = command_calls(redis.as_mut()).await?;

    let delivered = latencies.len() as f64;
    latencies.sort_unstable();
    let pct = |q: f64| -> f64 {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    println!("nodes={nodes} publishers={publishers} events={events} subscribers={subscribers}");
    println!(
        "publish: {:.0} events/s ({events} in {publish_secs:.2} s); all delivered after {total_secs:.2} s",
        events as f64 / publish_secs
    );
    if !latencies.is_empty() {
        println!(
            "delivery latency (publish -> client): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(0.50),
            pct(0.99),
            pct(1.0)
        );
    }
    let mut rows: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(k, v)| *v > 0 && k != "info")
        .collect();
    rows.sort();
    let client_issued = [
        "evalsha",
        "eval",
        "xread",
        "ping",
        "script|load",
        "client|setinfo",
    ];
    let issued: u64 = rows
        .iter()
        .filter(|(k, _)| client_issued.contains(&k.as_str()))
        .map(|(_, v)| v)
        .sum();
    let all: u64 = rows.iter().map(|(_, v)| v).sum();
    println!("redis commands during the run (INFO commandstats delta):");
    for (k, v) in &rows {
        println!("  {k:<16} {v:>9}");
    }
    println!(
        "sent by feedgate: {issued} = {:.3}/published event{}",
        issued as f64 / events as f64,
        if delivered > 0.0 {
            format!(", {:.4}/delivered event", issued as f64 / delivered)
        } else {
            String::new()
        }
    );
    println!(
        "executed by redis (incl. inside scripts): {all} = {:.3}/published event",
        all as f64 / events as f64
    );
    for s in servers {
        s.shutdown().await?;
    }
    Ok(())
}

/// Reads `n` events; returns each one's latency in µs.
async fn collect(mut sub: Subscriber, n: usize) -> Result<Vec<u64>, String> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(60), sub.next()).await {
            Ok(Ok(Delivery::Event(e))) => out.push(unix_micros().saturating_sub(e.time_us)),
            Ok(Ok(other)) => return Err(format!("unexpected {other:?}")),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no event for 60 s".into()),
        }
    }
    Ok(out)
}

/// `INFO commandstats` as command → calls (empty without Redis).
async fn command_calls(
    conn: Option<&mut redis::aio::MultiplexedConnection>,
) -> Result<HashMap<String, u64>, redis::RedisError> {
    let Some(conn) = conn else {
        return Ok(HashMap::new());
    };
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect())
}
