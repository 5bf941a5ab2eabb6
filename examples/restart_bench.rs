//! Restart measurement (issue 14): N subscribers follow one topic on a
//! `feedgate serve --log file:DIR` child process; the server is drained
//! (SIGTERM) and started again on the same port; the subscribers
//! (`SubscribeOptions::resume`) come back by themselves. Prints the time
//! from SIGTERM until the new process listens and until 50 / 99 / 100 % of
//! subscribers have resumed (received the first event published after the
//! restart), the new process's peak CPU, the failed reconnect attempts
//! (refused, 503, cut), resets and losses.
//!
//! ```text
//! cargo build --release --bin feedgate --example restart_bench
//! target/release/examples/restart_bench target/release/feedgate clients=2000 jitter=on
//! target/release/examples/restart_bench target/release/feedgate clients=2000 jitter=off
//! ```
//!
//! `jitter=on`: the server runs `--sse-retry 0s --reconnect-spread S` and
//! clients draw their delay after a 1012 from `[0, S]` (`spread=5s`
//! default). `jitter=off`: `--reconnect-spread 0s` and a client spread of
//! 0: every subscriber reconnects the moment it is told (failed attempts
//! still back off with the client's full-jitter backoff, from 250 ms).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use feedgate::bench::sys::{process_cpu, raise_nofile};
use feedgate::client::{self, Delivery, Endpoint, Resume, SubscribeOptions, Subscriber};
use feedgate::log::Cursor;
use feedgate::metrics::Transport;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::args()
        .skip(2)
        .find_map(|a| {
            a.strip_prefix(&format!("{name}="))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(default)
}

fn serve(bin: &str, listen: &str, dir: &str, clients: usize, spread: Duration) -> Child {
    Command::new(bin)
        .args(["serve", "--listen", listen, "--log", &format!("file:{dir}")])
        .args(["--max-connections", &(clients + 1000).to_string()])
        .args(["--sse-retry", "0s"])
        .args(["--reconnect-spread", &format!("{}ms", spread.as_millis())])
        .args(["--drain-timeout", "30s"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn feedgate serve")
}

async fn healthy(ep: &Endpoint) -> bool {
    match client::HttpConn::connect(ep, Default::default()).await {
        Ok(mut c) => {
            matches!(c.request(hyper::Method::GET, "/healthz", None).await, Ok((s, _)) if s == 200)
        }
        Err(_) => false,
    }
}

#[tokio::main]
async fn main() {
    let bin: String = std::env::args().nth(1).expect("usage: restart_bench FEEDGATE_BIN [clients=N] [jitter=on|off] [spread=5s] [transports=ws,sse]");
    let clients: usize = arg("clients", 2000);
    let jitter = arg::<String>("jitter", "on".into()) == "on";
    let spread_s: f64 = arg("spread", 5.0);
    let spread = if jitter {
        Duration::from_secs_f64(spread_s)
    } else {
        Duration::ZERO
    };
    let transports: Vec<Transport> = arg::<String>("transports", "ws,sse".into())
        .split(',')
        .map(|t| Transport::parse(t).expect("transport"))
        .collect();
    raise_nofile(clients as u64 + 1000);
    let dir = std::env::temp_dir().join(format!("feedgate-restart-bench-{}", std::process::id()));
    let dir_s = dir.to_str().unwrap().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let ep = Endpoint::parse(&format!("http://{listen}")).unwrap();
    let mut server = serve(&bin, &listen, &dir_s, clients, spread);
    while !healthy(&ep).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client::publish(&ep, "r", b"1".to_vec()).await.unwrap();

    let opts = SubscribeOptions {
        longpoll_timeout: Duration::from_secs(30),
        resume: Some(Resume {
            spread,
            give_up: Duration::from_secs(300),
            ..Default::default()
        }),
        ..Default::default()
    };
    let got_first = Arc::new(AtomicUsize::new(0));
    let t0 = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let t = transports[i % transports.len()];
        let sub = loop {
            match Subscriber::connect(
                &ep,
                "r",
                t,
                Cursor {
                    after: Some(0),
                    epoch: None,
                },
                opts.clone(),
            )
            .await
            {
                Ok(s) => break s,
                Err(e) => {
                    eprintln!("connect {i}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let (got_first, t0) = (got_first.clone(), t0.clone());
        tasks.push(tokio::spawn(async move {
            let mut sub = sub;
            let mut seqs = Vec::new();
            let mut resets = 0;
            while seqs.last() != Some(&2) {
                match sub.next().await {
                    Ok(Delivery::Event(e)) => {
                        if e.seq == 1 {
                            got_first.fetch_add(1, Ordering::Relaxed);
                        }
                        seqs.push(e.seq);
                    }
                    Ok(_) => resets += 1,
                    Err(e) => panic!("subscriber {i} ({t:?}) gave up: {e}"),
                }
            }
            let resumed = t0.get().map(|t| t.elapsed());
            (seqs, resets, sub.failed_reconnects(), resumed)
        }));
    }
    while got_first.load(Ordering::Relaxed) < clients {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{clients} subscribers on {transports:?} have event 1; restarting");

    // Drain the old process and start the new one on the same port.
    let began = Instant::now();
    t0.set(began).unwrap();
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let _ = server.wait();
    let drained = began.elapsed();
    server = serve(&bin, &listen, &dir_s, clients, spread);
    let pid = server.id();
    let mut listening = None;
    let mut published = false;
    let mut peak_cpu = 0.0f64;
    let (mut last_cpu, mut last_t) = (0.0, Instant::now());
    let done = Arc::new(AtomicUsize::new(0));
    let mut handles = tasks.into_iter();
    let mut results = Vec::new();
    // Sample the new process's CPU every 250 ms until everyone resumed.
    let collector = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            for h in handles.by_ref() {
                out.push(h.await.unwrap());
                done.fetch_add(1, Ordering::Relaxed);
            }
            out
        })
    };
    while done.load(Ordering::Relaxed) < clients {
        if listening.is_none() && healthy(&ep).await {
            listening = Some(began.elapsed());
        }
        if listening.is_some() && !published {
            published = client::publish(&ep, "r", b"2".to_vec()).await.is_ok();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(cpu) = process_cpu(Some(pid)) {
            let now = Instant::now();
            peak_cpu = peak_cpu.max((cpu - last_cpu) / (now - last_t).as_secs_f64());
            (last_cpu, last_t) = (cpu, now);
        }
    }
    results.extend(collector.await.unwrap());
    let total_cpu = process_cpu(Some(pid)).unwrap_or(0.0);
    let mut resumed: Vec<Duration> = results.iter().filter_map(|r| r.3).collect();
    resumed.sort();
    let pct =
        |p: f64| resumed[((resumed.len() as f64 * p).ceil() as usize).clamp(1, resumed.len()) - 1];
    let lost_or_dup = results.iter().filter(|r| r.0 != [1, 2]).count();
    let resets: usize = results.iter().map(|r| r.1).sum();
    let failed: u64 = results.iter().map(|r| r.2).sum();
    let clients_failed = results.iter().filter(|r| r.2 > 0).count();
    println!(
        "clients={clients} transports={} jitter={} spread={}s | drain {:.2}s, listening {:.2}s | resumed p50 {:.2}s p99 {:.2}s all {:.2}s | new server CPU peak {:.2} cores, {:.2} s total | failed reconnect attempts {failed} ({clients_failed} clients) | resets {resets} | lost/dup {lost_or_dup}",
        transports
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(","),
        if jitter { "on" } else { "off" },
        spread.as_secs_f64(),
        drained.as_secs_f64(),
        listening.unwrap_or_default().as_secs_f64(),
        pct(0.5).as_secs_f64(),
        pct(0.99).as_secs_f64(),
        pct(1.0).as_secs_f64(),
        peak_cpu,
        total_cpu,
    );
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
