//! Publish throughput and latency per log backend, for docs/benchmarks.md:
//! starts one gateway in this process, runs N concurrent publishers (each
//! on its own keep-alive connection, one publish in flight each) against
//! one topic for a fixed time, and prints publishes per second and the
//! latency percentiles of one publish (request sent → `201` read).
//!
//! ```text
//! cargo run --release --example publish_load -- memory|file:always|file:batch|file:never|redis://HOST:PORT \
//!     [publishers=16] [seconds=5] [dir=/var/tmp]
//! cargo run --release --example publish_load -- fsync-probe [dir=/var/tmp]
//! ```
//!
//! `fsync-probe` measures the disk itself: 1000 × (append 100 bytes,
//! `fdatasync`) on one file in `dir`, the floor under `--fsync always`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use feedgate::client::{Endpoint, HttpConn};
use feedgate::log::Fsync;
use feedgate::wire::ByteCount;
use feedgate::{Config, LogBackend, RunningServer};
use hyper::{Method, StatusCode};

fn arg<T: std::str::FromStr>(args: &[String], key: &str, default: T) -> T {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("{key}="))?.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn scratch(dir: &str, tag: &str) -> PathBuf {
    PathBuf::from(dir).join(format!("feedgate-{tag}-{}", std::process::id()))
}

fn fsync_probe(dir: &str) {
    use std::io::Write;
    let path = scratch(dir, "fsync-probe");
    let mut f = std::fs::File::create(&path).unwrap();
    let mut lat = Vec::new();
    for _ in 0..1000 {
        let t = Instant::now();
        f.write_all(&[b'x'; 100]).unwrap();
        f.sync_data().unwrap();
        lat.push(t.elapsed());
    }
    std::fs::remove_file(&path).unwrap();
    lat.sort();
    println!(
        "fsync-probe {dir}: 1000 x (write 100 B + fdatasync): p50 {:?} p99 {:?} max {:?} → {:.0} fsyncs/s",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1],
        1000.0 / lat.iter().sum::<Duration>().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_else(|| "memory".into());
    let dir: String = arg(&args, "dir", "/var/tmp".to_owned());
    if mode == "fsync-probe" {
        fsync_probe(&dir);
        return;
    }
    let publishers: usize = arg(&args, "publishers", 16);
    let seconds: u64 = arg(&args, "seconds", 5);
    let data_dir = scratch(&dir, "publish-load");
    let log = match mode.strip_prefix("file:") {
        None if mode == "memory" => LogBackend::Memory,
        // A running redis-server (its persistence is its own settings).
        None if mode.starts_with("redis://") => LogBackend::Redis(mode.clone()),
        Some(fsync) => LogBackend::File {
            dir: data_dir.clone(),
            fsync: fsync.parse::<Fsync>().unwrap(),
        },
        None => panic!("mode: memory, file:always|batch|never, redis://… or fsync-probe"),
    };
    let config = Config {
        log,
        publish_rate: 0.0,
        retention: feedgate::log::Retention {
            max_events: 10_000,
            max_age: None,
        },
        ..Config::default()
    };
    let server = RunningServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let ep = Endpoint::parse(&server.url()).unwrap();
    let body = Bytes::from(format!(r#"{{"pad":"{}"}}"#, "x".repeat(100)));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..publishers)
        .map(|_| {
            let (ep, body) = (ep.clone(), body.clone());
            tokio::spawn(async move {
                let mut conn = HttpConn::connect(&ep, Arc::new(ByteCount::default()))
                    .await
                    .unwrap();
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let (status, _) = conn
                        .request(Method::POST, "/topics/load/events", Some(body.clone()))
                        .await
                        .unwrap();
                    assert_eq!(status, StatusCode::CREATED);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let started = Instant::now();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "{mode:<12} publishers {publishers}: {:>7.0} publishes/s  p50 {:>9.3?}  p99 {:>9.3?}  ({} in {elapsed:.1} s)",
        lat.len() as f64 / elapsed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len()
    );
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data_dir);
}
