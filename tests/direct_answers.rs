//! Subscriptions served off hyper (`server/direct.rs`): while a
//! connection's requests are polls, long polls or SSE streams, feedgate
//! reads their heads and writes their answers itself; from the first other
//! request on, hyper serves the connection. These check what a client sees
//! on each side of that line, from raw sockets: the same answers either
//! way, keep-alive and pipelining across held polls, `Connection: close`,
//! a refusal that leaves the connection usable, a closed client that lets
//! its stream go.

mod common;

use std::net::SocketAddr;

use common::*;
use feedgate::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server() -> feedgate::RunningServer {
    start(Config::default()).await
}

/// Reads from `s` into `buf` until `buf[from..]` holds `needle`; where
/// it ends.
async fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, from: usize, needle: &[u8]) -> usize {
    let found = async {
        loop {
            if let Some(at) = buf[from..].windows(needle.len()).position(|w| w == needle) {
                return from + at + needle.len();
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("stream readable");
            assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    match tokio::time::timeout(PATIENCE, found).await {
        Ok(at) => at,
        Err(_) => panic!("no {needle:?} in {:?}", String::from_utf8_lossy(buf)),
    }
}

/// The head of an SSE stream, and the stream to the end of its `ready`
/// event.
async fn open_stream(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let at = read_until(s, &mut buf, 0, b"event: ready").await;
    read_until(s, &mut buf, at, b"}\n\n").await;
    String::from_utf8(buf).unwrap()
}

fn sse_request(topic: &str) -> String {
    format!("GET /topics/{topic}/sse HTTP/1.1\r\nhost: test\r\n\r\n")
}

/// `feedgate_connections{transport="sse"}`, every link summed.
async fn sse_connections(addr: SocketAddr) -> f64 {
    sample(
        &scrape(addr).await,
        "feedgate_connections{transport=\"sse\"}",
    )
}

/// The stream served off hyper says what hyper's did: status, the event
/// stream's headers, a date, chunked framing; and an event published
/// after it opened arrives as one chunk holding its block.
#[tokio::test]
async fn a_stream_first_on_its_connection_is_a_chunked_event_stream() {
    let server = server().await;
    // The topic exists before the stream opens: its `ready` names its
    // epoch, and the next event comes alone.
    publish(&server, "direct", r#"{"n":0}"#).await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(sse_request("direct").as_bytes()).await.unwrap();
    let head = open_stream(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for h in [
        "content-type: text/event-stream\r\n",
        "cache-control: no-cache\r\n",
        "x-accel-buffering: no\r\n",
        "transfer-encoding: chunked\r\n",
        "date: ",
    ] {
        assert!(head.contains(h), "no {h:?} in {head}");
    }
    assert!(!head.contains("content-length"), "{head}");
    let seq = publish(&server, "direct", r#"{"n":1}"#).await;
    let mut buf = Vec::new();
    read_until(&mut s, &mut buf, 0, b"\n\n\r\n").await;
    let text = String::from_utf8(buf).unwrap();
    let (size, block) = text.split_once("\r\n").unwrap();
    let block = block.strip_suffix("\r\n").unwrap();
    assert_eq!(usize::from_str_radix(size, 16).unwrap(), block.len());
    assert!(
        block.starts_with("id: ") && block.contains(&format!(":{seq}\ndata: ")),
        "{block}"
    );
    assert!(block.contains(r#""data":{"n":1}"#), "{block}");
}

/// A refused SSE request is answered with its length, and the connection
/// takes the next request (hyper's from there).
#[tokio::test]
async fn a_refused_stream_leaves_the_connection_to_the_next_request() {
    let server = server().await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(b"GET /topics/bad!topic/sse HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let refused = read_response(&mut s).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["code"], "invalid_topic");
    assert!(refused.header("date").is_some());
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let health = read_response(&mut s).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
}

/// An SSE request after another on a keep-alive connection is hyper's:
/// the same stream.
#[tokio::test]
async fn a_stream_after_another_request_is_served_as_well() {
    let server = server().await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await.status, 200);
    s.write_all(sse_request("keepalive").as_bytes())
        .await
        .unwrap();
    let head = open_stream(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    publish(&server, "keepalive", r#"{"n":2}"#).await;
    let mut buf = Vec::new();
    read_until(&mut s, &mut buf, 0, br#""data":{"n":2}"#).await;
}

/// A client that closes its socket ends its stream on the server, with
/// nothing published to find it by a failed write: the server reads the
/// close.
#[tokio::test]
async fn a_closed_client_lets_its_stream_go() {
    let server = server().await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(sse_request("closing").as_bytes())
        .await
        .unwrap();
    open_stream(&mut s).await;
    assert_eq!(sse_connections(server.addr()).await, 1.0);
    drop(s);
    let gone = async {
        while sse_connections(server.addr()).await != 0.0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(PATIENCE, gone)
        .await
        .expect("the closed stream's connection is let go");
}

/// HTTP/1.0 has no chunked encoding: its SSE request is hyper's, which
/// streams it until the connection closes.
#[tokio::test]
async fn an_http_1_0_stream_is_not_chunked() {
    let server = server().await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(b"GET /topics/old/sse HTTP/1.0\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let head = open_stream(&mut s).await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
}

/// Writes `req` (a request head) on `s`.
async fn send(s: &mut TcpStream, req: &str) {
    s.write_all(req.as_bytes()).await.unwrap();
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n")
}

/// Long polls one after the other on one keep-alive connection, each held
/// until its event, each answered with its length: the connection carries
/// them all, then a publish (hyper's from there) and a poll after it.
#[tokio::test]
async fn held_long_polls_follow_each_other_on_one_connection() {
    let server = server().await;
    let first = publish(&server, "lp", "0").await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let mut after = first;
    for i in 1..=3 {
        send(
            &mut s,
            &get(&format!("/topics/lp/longpoll?after={after}&timeout=10")),
        )
        .await;
        let seq = publish(&server, "lp", &i.to_string()).await;
        let res = read_response(&mut s).await;
        assert_eq!(res.status, 200);
        assert!(res.header("date").is_some());
        let body = res.json();
        assert_eq!(body["events"][0]["seq"], seq, "{body}");
        assert_eq!(body["events"][0]["data"], i);
        after = body["next"].as_u64().unwrap();
    }
    // A publish on the same connection: hyper's, and the connection goes on.
    let json = "4";
    let publish_req = format!(
        "POST /topics/lp/events HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
        json.len()
    );
    send(&mut s, &publish_req).await;
    let res = read_response(&mut s).await;
    assert!(res.status == 200 || res.status == 201, "{}", res.status);
    send(
        &mut s,
        &get(&format!("/topics/lp/longpoll?after={after}&timeout=10")),
    )
    .await;
    let res = read_response(&mut s).await;
    assert_eq!(res.json()["events"][0]["data"], 4);
}

/// A request sent while a long poll is held (pipelined) is kept and
/// answered after it, in order.
#[tokio::test]
async fn a_request_pipelined_behind_a_held_poll_is_answered_next() {
    let server = server().await;
    let at = publish(&server, "pipe", "1").await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    send(
        &mut s,
        // A hold longer than the test's patience: the pipelined request
        // must not wait for it.
        &get(&format!("/topics/pipe/longpoll?after={at}&timeout=30")),
    )
    .await;
    // Once the server holds the poll, the next request follows on the
    // same connection before the first is answered.
    wait_gauge(server.addr(), "longpoll", 1.0).await;
    send(&mut s, &get("/topics/pipe/poll?after=0")).await;
    publish(&server, "pipe", "2").await;
    let held = read_response(&mut s).await;
    assert_eq!(held.json()["events"][0]["data"], 2);
    let next = read_response(&mut s).await;
    let seqs: Vec<u64> = next.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2]);
}

/// `Connection: close` on a poll: answered, then the connection closes.
#[tokio::test]
async fn connection_close_ends_the_connection_after_its_answer() {
    let server = server().await;
    publish(&server, "bye", "1").await;
    let raw = raw_exchange(
        server.addr(),
        b"GET /topics/bye/poll?after=0 HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with(r#""next":1}"#), "{text}");
}

/// A short poll's 304 has no body and says no length; the connection
/// takes the next request.
#[tokio::test]
async fn a_304_has_no_body() {
    let server = server().await;
    publish(&server, "etag", "1").await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    send(&mut s, &get("/topics/etag/poll?after=0")).await;
    let etag = read_response(&mut s)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let req = format!(
        "GET /topics/etag/poll?after=1 HTTP/1.1\r\nhost: test\r\nif-none-match: {etag}\r\n\r\n"
    );
    send(&mut s, &req).await;
    let res = read_response(&mut s).await;
    assert_eq!(res.status, 304);
    assert!(res.header("content-length").is_none());
    assert!(res.body.is_empty());
    send(&mut s, &get("/healthz")).await;
    assert_eq!(read_response(&mut s).await.status, 200);
}
