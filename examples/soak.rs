//! Soak test driver (run by `scripts/soak.sh`): for a bounded time, clients
//! of all four transports connect, disconnect at random, switch transports
//! and resume by cursor while events are published. At the end every client
//! must have seen every event exactly once, in order, and the server's RSS
//! and open file descriptors must be back near their baseline.
//!
//! Usage: soak --url http://127.0.0.1:PORT --pid PID --seconds 30

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use feedgate::client::{self, Delivery, Endpoint, SubscribeOptions, Subscriber};
use feedgate::log::Cursor;
use feedgate::metrics::Transport;

struct Args {
    url: String,
    pid: u32,
    seconds: u64,
    clients: usize,
    rate: f64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        pid: 0,
        seconds: 30,
        clients: 24,
        rate: 100.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--url" => a.url = value.clone(),
            "--pid" => a.pid = value.parse().map_err(|_| bad())?,
            "--seconds" => a.seconds = value.parse().map_err(|_| bad())?,
            "--clients" => a.clients = value.parse().map_err(|_| bad())?,
            "--rate" => a.rate = value.parse().map_err(|_| bad())?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.url.is_empty() || a.pid == 0 {
        return Err(
            "usage: soak --url URL --pid PID [--seconds N] [--clients N] [--rate R]".into(),
        );
    }
    Ok(a)
}

/// RSS (KiB) and open descriptors of a process.
fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

const TOPIC: &str = "soak";

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let ep = Endpoint::parse(&args.url).expect("valid --url");
    let (rss0, fds0) = footprint(args.pid);
    eprintln!(
        "soak: baseline RSS {rss0} KiB, {fds0} fds; {} clients for {} s at {} ev/s",
        args.clients, args.seconds, args.rate
    );

    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let first = client::publish(&ep, TOPIC, b"{\"n\":0}".to_vec())
        .await
        .expect("publish");
    published.store(first, Ordering::SeqCst);
    let publisher = {
        let (ep, stop, published) = (ep.clone(), stop.clone(), published.clone());
        let interval = Duration::from_secs_f64(1.0 / args.rate);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            let mut n = 1u64;
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                let seq = client::publish(&ep, TOPIC, format!("{{\"n\":{n}}}").into_bytes())
                    .await
                    .expect("publish during soak");
                published.store(seq, Ordering::SeqCst);
                n += 1;
            }
        })
    };
    let mut workers = Vec::new();
    for id in 0..args.clients {
        let (ep, stop) = (ep.clone(), stop.clone());
        workers.push(tokio::spawn(
            async move { churn(id, ep, first, stop).await },
        ));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::SeqCst);
    publisher.await.expect("publisher");
    let last = published.load(Ordering::SeqCst);

    let mut failures = 0;
    let mut total_reconnects = 0;
    let mut per_transport = [0u64; 4];
    for w in workers {
        let mut c = w.await.expect("worker");
        // Final catch-up to the last published event.
        let outcome = c.catch_up(&ep, last).await;
        total_reconnects += c.sessions;
        for (i, n) in c.by_transport.iter().enumerate() {
            per_transport[i] += n;
        }
        if let Err(e) = outcome {
            failures += 1;
            eprintln!("soak: client {}: {e}", c.id);
        }
    }
    // Let the server notice the closed sockets, then compare footprints.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut rss1, mut fds1) = footprint(args.pid);
    while fds1 > fds0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        (rss1, fds1) = footprint(args.pid);
    }
    eprintln!(
        "soak: {last} events published; {} clients × every event exactly once in order: {}; {total_reconnects} sessions (poll {}, longpoll {}, sse {}, ws {}); RSS {rss0} → {rss1} KiB, fds {fds0} → {fds1}",
        args.clients,
        if failures == 0 { "yes" } else { "NO" },
        per_transport[0],
        per_transport[1],
        per_transport[2],
        per_transport[3]
    );
    let fds_ok = fds1 <= fds0;
    // Allocators keep some freed memory; growth beyond this is a leak.
    let rss_ok = rss1 <= rss0 + rss0 / 2 + 16 * 1024;
    if failures > 0 || !fds_ok || !rss_ok {
        eprintln!(
            "soak: FAILED (client failures {failures}, fds back: {fds_ok}, RSS back: {rss_ok})"
        );
        std::process::exit(1);
    }
    eprintln!("soak: OK");
}

/// One churning client's record.
struct Client {
    id: usize,
    cursor: Cursor,
    sessions: u64,
    by_transport: [u64; 4],
    error: Option<String>,
}

impl Client {
    /// Records an event: it must be exactly the next one.
    fn see(&mut self, d: Delivery) -> Result<(), String> {
        match d {
            Delivery::Event(e) => {
                let want = self.cursor.after.unwrap_or(0) + 1;
                if e.seq != want {
                    return Err(format!("expected seq {want}, got {}", e.seq));
                }
                self.cursor.after = Some(e.seq);
                Ok(())
            }
            other => Err(format!(
                "unexpected {other:?} (retention is ample; nothing may be missed)"
            )),
        }
    }

    async fn catch_up(&mut self, ep: &Endpoint, last: u64) -> Result<(), String> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut sub = Subscriber::connect(ep, TOPIC, Transport::Ws, self.cursor, opts())
            .await
            .map_err(|e| e.to_string())?;
        while self.cursor.after.unwrap_or(0) < last {
            let d = tokio::time::timeout(Duration::from_secs(10), sub.next())
                .await
                .map_err(|_| "catch-up stalled".to_owned())?
                .map_err(|e| e.to_string())?;
            self.see(d)?;
        }
        sub.close().await;
        Ok(())
    }
}

fn opts() -> SubscribeOptions {
    SubscribeOptions {
        poll_interval: Duration::from_millis(50),
        longpoll_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Connects on a random transport, reads for a random while, disconnects
/// (cleanly or abruptly), and again, until told to stop.
async fn churn(id: usize, ep: Endpoint, first: u64, stop: Arc<AtomicBool>) -> Client {
    let mut c = Client {
        id,
        cursor: Cursor {
            after: Some(first),
            epoch: None,
        },
        sessions: 0,
        by_transport: [0; 4],
        error: None,
    };
    while !stop.load(Ordering::SeqCst) {
        let pick = rand::random_range(0..4usize);
        let t = Transport::SUBSCRIBERS[pick];
        let stay = Duration::from_millis(rand::random_range(50..1500));
        let sub = Subscriber::connect(&ep, TOPIC, t, c.cursor, opts()).await;
        let mut sub = match sub {
            Ok(s) => s,
            Err(e) => {
                c.error = Some(format!("connect {t:?}: {e}"));
                break;
            }
        };
        c.sessions += 1;
        c.by_transport[pick] += 1;
        let until = tokio::time::Instant::now() + stay;
        loop {
            match tokio::time::timeout_at(until, sub.next()).await {
                Err(_) => break,
                Ok(Ok(d)) => {
                    if let Err(e) = c.see(d) {
                        c.error = Some(format!("{t:?}: {e}"));
                        return c;
                    }
                }
                Ok(Err(e)) => {
                    c.error = Some(format!("{t:?}: {e}"));
                    return c;
                }
            }
        }
        // Half the time a clean close, half the time just drop the socket.
        if rand::random_bool(0.5) {
            sub.close().await;
        }
    }
    c
}
