//! Helpers shared by the integration tests: a real server on 127.0.0.1:0,
//! raw-socket HTTP, and a Prometheus text scraper.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use feedgate::client::{self, Delivery, Endpoint, ReceivedEvent, SubscribeOptions, Subscriber};
use feedgate::log::Cursor;
use feedgate::metrics::Transport;
use feedgate::{Config, RunningServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for anything a test waits on; a hang fails instead of
/// blocking the suite.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Starts a server on a free loopback port.
pub async fn start(config: Config) -> RunningServer {
    RunningServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("server starts")
}

/// Starts a server on `addr` (the port a restarted server comes back on),
/// retrying briefly while the old listener's port is released.
pub async fn start_at(addr: SocketAddr, config: Config) -> RunningServer {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match RunningServer::start(addr, config.clone()).await {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                eprintln!("rebinding {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot rebind {addr}: {e}"),
        }
    }
}

/// The server's endpoint for the library client.
pub fn endpoint(s: &RunningServer) -> Endpoint {
    Endpoint::parse(&s.url()).unwrap()
}

/// Publishes `json` and returns its seq.
pub async fn publish(s: &RunningServer, topic: &str, json: &str) -> u64 {
    client::publish(&endpoint(s), topic, json.as_bytes().to_vec())
        .await
        .expect("publish succeeds")
}

/// A subscriber of `transport` at `cursor`, polling fast.
pub async fn subscribe(s: &RunningServer, topic: &str, t: Transport, cursor: Cursor) -> Subscriber {
    let opts = SubscribeOptions {
        poll_interval: Duration::from_millis(20),
        longpoll_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    Subscriber::connect(&endpoint(s), topic, t, cursor, opts)
        .await
        .expect("subscribe succeeds")
}

/// The next delivery, failing the test if none comes within [`PATIENCE`].
pub async fn next(sub: &mut Subscriber) -> Delivery {
    tokio::time::timeout(PATIENCE, sub.next())
        .await
        .unwrap_or_else(|_| panic!("{:?} delivered nothing in time", sub.transport()))
        .expect("delivery")
}

/// The next `n` events (failing on a gap or reset).
pub async fn events(sub: &mut Subscriber, n: usize) -> Vec<ReceivedEvent> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match next(sub).await {
            Delivery::Event(e) => out.push(e),
            other => panic!("expected an event on {:?}, got {other:?}", sub.transport()),
        }
    }
    out
}

/// A cursor `after=n` without epoch.
pub fn after(n: u64) -> Cursor {
    Cursor {
        after: Some(n),
        epoch: None,
    }
}

/// Sends raw bytes on a fresh connection and reads until the server closes
/// it or `PATIENCE` passes.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    read_to_close(&mut s).await
}

/// Reads until EOF (or a reset), bounded by [`PATIENCE`].
pub async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    out
}

/// A parsed HTTP/1.1 response read from a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Every byte of the response as it came off the socket.
    pub wire_len: usize,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Reads exactly one response with a `content-length` body (or none) from a
/// keep-alive connection, without reading past it.
pub async fn read_response(s: &mut TcpStream) -> RawResponse {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, s.read(&mut byte))
            .await
            .expect("response in time")
            .unwrap();
        assert!(
            n == 1,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let text = String::from_utf8(head.clone()).unwrap();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; len];
    tokio::time::timeout(PATIENCE, s.read_exact(&mut body))
        .await
        .expect("body in time")
        .unwrap();
    RawResponse {
        status,
        headers,
        wire_len: head.len() + len,
        body,
    }
}

/// One request and its response on a fresh connection.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("host: test\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    read_response(&mut s).await
}

/// Samples of a Prometheus text exposition, keyed by `name{labels}` as
/// written (labels in the server's order).
pub async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let res = http(addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(res.status, 200);
    parse_metrics(&String::from_utf8(res.body).unwrap())
}

pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let Some((k, v)) = l.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = v.parse::<f64>() else { continue };
        out.insert(k.to_owned(), v);
        // Series labelled by link (`protocol`, `tls`) are also summed over
        // them, under the key without those labels: what every test that
        // does not care about the link looks up.
        if let Some(summed) = without_link(k) {
            *out.entry(summed).or_insert(0.0) += v;
        }
    }
    out
}

/// `name{…}` without its `protocol` and `tls` labels, if it has them.
fn without_link(key: &str) -> Option<String> {
    let (name, labels) = key.strip_suffix('}')?.split_once('{')?;
    let mut kept = Vec::new();
    let mut had = false;
    for pair in labels.split("\",") {
        let pair = pair.trim_end_matches('"');
        if pair.starts_with("protocol=") || pair.starts_with("tls=") {
            had = true;
        } else {
            kept.push(format!("{pair}\""));
        }
    }
    had.then(|| format!("{name}{{{}}}", kept.join(",")))
}

/// `feedgate_wire_bytes_total` for one transport and direction.
pub fn wire(m: &HashMap<String, f64>, transport: &str, direction: &str) -> u64 {
    let key =
        format!("feedgate_wire_bytes_total{{direction=\"{direction}\",transport=\"{transport}\"}}");
    *m.get(&key).unwrap_or_else(|| panic!("no sample {key}")) as u64
}

/// A counter sample by exact key, 0 when absent.
pub fn sample(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

/// Waits until `feedgate_connections{transport}` reaches `at_least`: the
/// server's own signal that subscribers have arrived.
pub async fn wait_gauge(addr: SocketAddr, transport: &str, at_least: f64) {
    let key = format!("feedgate_connections{{transport=\"{transport}\"}}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let m = scrape(addr).await;
        if sample(&m, &key) >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} never reached {at_least}"
        );
        tokio::task::yield_now().await;
    }
}

/// Starts `feedgate serve` on a free port; returns the child and its URL,
/// read from the log line it prints once listening.
pub fn spawn_binary(extra: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--drain-timeout", "5s"])
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("a log line").unwrap();
        if let Some(i) = line
            .find("open http://")
            .or_else(|| line.find("open https://"))
        {
            break line[i + 5..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// Sends SIGTERM and waits (bounded) for the exit status.
pub fn terminate(mut child: std::process::Child) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("did not exit within {PATIENCE:?} of SIGTERM");
        }
    }
}

/// Resident set size of a process, in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// A fresh directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "feedgate-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn log_flag(&self) -> String {
        format!("file:{}", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits until the server's metric `key` satisfies `want`; its value then.
pub async fn wait_metric(s: &RunningServer, key: &str, want: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let v = sample(&scrape(s.addr()).await, key);
        if want(v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} never settled (last {v})"
        );
        tokio::task::yield_now().await;
    }
}

/// Publishes `total` events of `pad` bytes of padding to `topic` from two
/// publishers at once, telling `published` after each; returns when all
/// are in.
pub async fn publish_padded(
    ep: &Endpoint,
    topic: &str,
    total: u64,
    pad: usize,
    published: &std::sync::Arc<tokio::sync::watch::Sender<u64>>,
) {
    let pad = "x".repeat(pad);
    let mut publishers = Vec::new();
    for p in 0..2 {
        let (ep, pad, topic) = (ep.clone(), pad.clone(), topic.to_owned());
        let published = published.clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..total / 2 {
                let json = format!(r#"{{"p":{p},"i":{i},"pad":"{pad}"}}"#);
                client::publish(&ep, &topic, json.into_bytes())
                    .await
                    .unwrap();
                published.send_modify(|n| *n += 1);
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
}

/// What a fast-path churn run on `transport` (`ws`, `sse`) must leave
/// behind: some subscriber was handed back for a full socket, every
/// delivery was counted once (`subscribers` × `total`), the bytes the
/// server counts as sent are the `read` bytes the clients read, and every
/// subscriber took its socket back (`parked`, the gauge, back to 0).
pub async fn assert_churn_accounted(
    s: &RunningServer,
    transport: &str,
    (subscribers, total): (usize, u64),
    read: u64,
    parked: &str,
) {
    let m = scrape(s.addr()).await;
    let blocked = sample(
        &m,
        &format!(r#"feedgate_{transport}_fanout_handbacks_total{{reason="blocked"}}"#),
    );
    let fan: Vec<_> = m.iter().filter(|(k, _)| k.contains("fanout")).collect();
    assert!(
        blocked > 0.0,
        "none was ever handed back as blocked: {fan:?}"
    );
    assert_eq!(
        sample(
            &m,
            &format!(r#"feedgate_events_delivered_total{{transport="{transport}"}}"#)
        ),
        (subscribers as u64 * total) as f64
    );
    let key = format!(r#"feedgate_wire_bytes_total{{direction="out",transport="{transport}"}}"#);
    let sent = wait_metric(s, &key, |v| v as u64 == read).await;
    assert_eq!(sent as u64, read);
    wait_metric(s, parked, |v| v == 0.0).await;
}
