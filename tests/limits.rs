//! Limits that protect the server from slow or dead peers: the header-read
//! timeout (slowloris), the WebSocket ping/pong deadline, and the write
//! timeout for subscribers that never read.

mod common;

use std::time::{Duration, Instant};

use common::*;
use feedgate::Config;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const UPGRADE: &[u8] = b"GET /topics/t/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

#[tokio::test]
async fn a_slow_request_head_is_cut_off_and_others_are_served() {
    let s = start(Config {
        header_read_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let began = Instant::now();
    let mut slow = TcpStream::connect(s.addr()).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-drip: 1\r\n")
        .await
        .unwrap();
    // Meanwhile another client is served normally.
    assert_eq!(
        http(s.addr(), "GET", "/healthz", &[], b"").await.status,
        200
    );
    let reply = read_to_close(&mut slow).await;
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "cut off too early: {waited:?}"
    );
    assert!(waited < PATIENCE, "never cut off");
    assert!(
        !reply.starts_with(b"HTTP/1.1 200"),
        "the slow request was not served"
    );
    assert_eq!(
        http(s.addr(), "GET", "/healthz", &[], b"").await.status,
        200
    );
}

/// Reads one unmasked server frame: (opcode, payload).
async fn frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    tokio::time::timeout(PATIENCE, s.read_exact(&mut h))
        .await
        .expect("a frame in time")
        .unwrap();
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await.unwrap();
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).await.unwrap();
        len = u64::from_be_bytes(b);
    }
    let mut p = vec![0u8; len as usize];
    s.read_exact(&mut p).await.unwrap();
    (h[0] & 0x0f, p)
}

#[tokio::test]
async fn a_websocket_peer_that_never_pongs_is_closed_1008() {
    let s = start(Config {
        ws_ping_interval: Duration::from_millis(100),
        ws_pong_timeout: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    conn.write_all(UPGRADE).await.unwrap();
    assert_eq!(read_response(&mut conn).await.status, 101);
    let mut saw_ping = false;
    let close = loop {
        match frame(&mut conn).await {
            (0x9, _) => saw_ping = true,
            (0x8, payload) => break payload,
            _ => {}
        }
    };
    assert!(saw_ping, "the server pinged before giving up");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1008);
    let m = scrape(s.addr()).await;
    assert_eq!(
        sample(
            &m,
            "feedgate_limit_rejections_total{limit=\"pong_timeout\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn a_websocket_peer_that_answers_pings_stays_connected() {
    let s = start(Config {
        ws_ping_interval: Duration::from_millis(50),
        ws_pong_timeout: Duration::from_millis(100),
        ..Config::default()
    })
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/topics/t/ws", s.addr()))
        .await
        .unwrap();
    // tungstenite answers each ping while we read; several ping rounds pass.
    let mut pings = 0;
    while pings < 5 {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Text(_))) => {}
            other => panic!("connection should stay open, got {other:?}"),
        }
    }
    publish(&s, "t", "42").await;
    loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("in time")
        {
            // The topic's first publish gives it an epoch: a second
            // `ready` tells it before the event.
            Some(Ok(Message::Text(t))) if t.as_str().starts_with(r#"{"type":"ready""#) => {}
            Some(Ok(Message::Text(t))) => {
                assert!(t.as_str().contains(r#""data":42"#));
                break;
            }
            Some(Ok(Message::Ping(_))) => {}
            other => panic!("connection should stay open, got {other:?}"),
        }
    }
}

/// Publishes `n` events of ~`size` bytes.
async fn flood(s: &feedgate::RunningServer, topic: &str, n: usize, size: usize) {
    let ep = endpoint(s);
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(size));
    for _ in 0..n {
        feedgate::client::publish(&ep, topic, body.clone().into_bytes())
            .await
            .unwrap();
    }
}

async fn wait_metric(addr: std::net::SocketAddr, key: &str, want: impl Fn(f64) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if want(sample(&scrape(addr).await, key)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} never settled"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn subscribers_that_never_read_are_closed_after_the_write_timeout() {
    let s = start(Config {
        write_timeout: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    // A WebSocket and an SSE client that read nothing after the handshake.
    let mut ws = TcpStream::connect(s.addr()).await.unwrap();
    ws.write_all(UPGRADE).await.unwrap();
    assert_eq!(read_response(&mut ws).await.status, 101);
    let mut sse = TcpStream::connect(s.addr()).await.unwrap();
    sse.write_all(b"GET /topics/t/sse HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    wait_gauge(s.addr(), "sse", 1.0).await;
    // Enough to fill both sockets' buffers many times over.
    flood(&s, "t", 400, 64 << 10).await;
    wait_metric(
        s.addr(),
        "feedgate_limit_rejections_total{limit=\"write_timeout\"}",
        |v| v >= 2.0,
    )
    .await;
    wait_metric(s.addr(), "feedgate_connections{transport=\"ws\"}", |v| {
        v == 0.0
    })
    .await;
    wait_metric(s.addr(), "feedgate_connections{transport=\"sse\"}", |v| {
        v == 0.0
    })
    .await;
    // The server still serves everyone else.
    assert_eq!(
        http(s.addr(), "GET", "/healthz", &[], b"").await.status,
        200
    );
}

#[tokio::test]
async fn a_stalled_publish_body_is_cut_off_with_408_and_appends_nothing() {
    let s = start(Config {
        body_read_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    // The head and half a chunked body, then nothing.
    conn.write_all(
        b"POST /topics/stall/events HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n4\r\n[1,2\r\n",
    )
    .await
    .unwrap();
    let res = read_response(&mut conn).await;
    assert_eq!(res.status, 408);
    assert_eq!(res.json()["error"]["code"], "body_timeout");
    let poll = http(s.addr(), "GET", "/topics/stall/poll?after=0", &[], b"").await;
    assert_eq!(poll.json()["events"], serde_json::json!([]));
}

/// Issue 16.7: with `--max-body` above the 8 MiB drain cap, the drain budget
/// `DRAIN_CAP - read` wrapped around, and an over-limit chunked body was
/// read for as long as the client kept sending (16.6 GiB in the probe).
/// Now nothing past the limit is drained: the server reads the limit, a
/// little read-ahead, and answers 413.
#[tokio::test]
async fn an_over_limit_chunked_body_is_not_read_on_when_max_body_exceeds_the_drain_cap() {
    const MAX: usize = 9 << 20;
    const EXTRA: usize = 40 << 20;
    let s = start(Config {
        max_body: MAX,
        // A WebSocket must be able to carry what may be published.
        ws_max_message: MAX,
        ..Config::default()
    })
    .await;
    let conn = TcpStream::connect(s.addr()).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(
            b"POST /topics/big/events HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
        let size = 64 << 10;
        let chunk = format!("{size:x}\r\n{}\r\n", "7".repeat(size));
        let mut sent = 0;
        while sent < MAX + EXTRA {
            if wr.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
            sent += size;
        }
        let _ = wr.write_all(b"0\r\n\r\n").await;
    });
    let mut reply = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("an answer in time");
    assert!(
        reply.starts_with(b"HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    drop(rd);
    tokio::time::timeout(PATIENCE, writer)
        .await
        .expect("the upload ends once the server closes")
        .unwrap();
    let read = wire(&scrape(s.addr()).await, "publish", "in");
    assert!(
        read < (MAX + (4 << 20)) as u64,
        "the server read {read} bytes of a body refused at {MAX}"
    );
    let poll = http(s.addr(), "GET", "/topics/big/poll?after=0", &[], b"").await;
    assert_eq!(poll.json()["events"], serde_json::json!([]));
}

/// Issue 16.8: a publish whose `Content-Length` is over the limit and that
/// sends `Expect: 100-continue` is refused 413 straight away, never told
/// `100 Continue` (which made the client upload the body just to have it
/// refused). A body within the limit still gets its `100`.
#[tokio::test]
async fn expect_100_continue_over_the_limit_gets_413_without_100() {
    let s = start(Config {
        max_body: 1024,
        ..Config::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    conn.write_all(
        b"POST /topics/e/events HTTP/1.1\r\nhost: x\r\ncontent-length: 2048\r\nexpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let res = read_response(&mut conn).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.json()["error"]["code"], "body_too_large");

    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    conn.write_all(
        b"POST /topics/e/events HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(read_response(&mut conn).await.status, 100);
    conn.write_all(b"42").await.unwrap();
    assert_eq!(read_response(&mut conn).await.status, 201);
}

#[tokio::test]
async fn a_peer_that_floods_pings_without_reading_is_closed_after_the_write_timeout() {
    // The ping interval is far away: only the write timeout may end it.
    let s = start(Config {
        ws_ping_interval: Duration::from_secs(3600),
        write_timeout: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    conn.write_all(UPGRADE).await.unwrap();
    assert_eq!(read_response(&mut conn).await.status, 101);
    // Masked pings with 125-byte payloads, never reading a pong back.
    let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
    ping.extend((0..125u8).map(|i| i ^ [1, 2, 3, 4][usize::from(i) % 4]));
    let began = Instant::now();
    let cut = loop {
        match tokio::time::timeout(PATIENCE, conn.write_all(&ping)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => break e,
            Err(_) => panic!(
                "a write blocked for {PATIENCE:?}: the server stopped reading but kept the socket"
            ),
        }
        assert!(began.elapsed() < PATIENCE, "still open after {PATIENCE:?}");
    };
    assert!(
        matches!(
            cut.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{cut}"
    );
    let m = scrape(s.addr()).await;
    let key = "feedgate_limit_rejections_total{limit=\"write_timeout\"}";
    assert_eq!(sample(&m, key), 1.0);
}

#[tokio::test]
async fn the_accept_backlog_is_the_configured_one() {
    // Nobody accepts: the kernel queues completed handshakes up to the
    // backlog (+1 on Linux) and drops the SYNs of the rest.
    async fn queued(backlog: u32) -> usize {
        let listener = feedgate::bind("127.0.0.1:0".parse().unwrap(), backlog).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        for _ in 0..40 {
            match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => held.push(s),
                _ => break,
            }
        }
        held.len()
    }
    let small = queued(4).await;
    assert!(small <= 6, "backlog 4 queued {small}");
    assert_eq!(queued(64).await, 40, "backlog 64 queues all 40");
}
