//! Byte accounting is exact: for each transport, what a raw-socket client
//! sent and received equals the server's `feedgate_wire_bytes_total` deltas.

mod common;

use std::net::SocketAddr;

use common::*;
use feedgate::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one raw client sent and received.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counted {
    sent: u64,
    received: u64,
}

/// Wire counters of the four subscriber transports (publishes made by the
/// tests themselves go to `publish`, which is not compared).
async fn snapshot(addr: SocketAddr) -> Vec<(String, u64, u64)> {
    let m = scrape(addr).await;
    ["poll", "longpoll", "sse", "ws"]
        .iter()
        .map(|t| (t.to_string(), wire(&m, t, "in"), wire(&m, t, "out")))
        .collect()
}

/// Asserts that the counters moved by exactly `expected` per transport
/// (and not at all for the others). The server counts a write right after
/// the syscall returns, so a scrape may race it by a hair: re-scrape until
/// the figures settle, bounded by PATIENCE.
async fn assert_deltas(
    addr: SocketAddr,
    before: &[(String, u64, u64)],
    expected: &[(&str, Counted)],
) {
    let want: Vec<(String, u64, u64)> = before
        .iter()
        .map(|(t, i, o)| {
            let c = expected
                .iter()
                .find(|(name, _)| name == t)
                .map_or(Counted::default(), |(_, c)| *c);
            (t.clone(), i + c.sent, o + c.received)
        })
        .collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = snapshot(addr).await;
        if now == want {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("wire counters {now:?} != client counts {want:?}");
        }
        tokio::task::yield_now().await;
    }
}

async fn send(s: &mut TcpStream, c: &mut Counted, bytes: &[u8]) {
    s.write_all(bytes).await.unwrap();
    c.sent += bytes.len() as u64;
}

/// Reads until the received text contains `needle` and ends at a chunk
/// boundary (`\r\n`), counting every byte.
async fn recv_until(s: &mut TcpStream, c: &mut Counted, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        loop {
            let text = String::from_utf8_lossy(&got);
            if text.contains(needle) && text.ends_with("\r\n") {
                break;
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {text}");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("in time");
    c.received += got.len() as u64;
    String::from_utf8(got).unwrap()
}

async fn seeded(n: u64) -> feedgate::RunningServer {
    let s = start(Config::default()).await;
    for i in 1..=n {
        publish(&s, "w", &format!(r#"{{"price":{i}.5,"note":"event {i}"}}"#)).await;
    }
    s
}

#[tokio::test]
async fn short_poll_bytes_are_exact() {
    let s = seeded(3).await;
    let before = snapshot(s.addr()).await;
    let mut c = Counted::default();
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    send(
        &mut conn,
        &mut c,
        b"GET /topics/w/poll?after=0 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    let res = read_response(&mut conn).await;
    assert_eq!(res.json()["events"].as_array().unwrap().len(), 3);
    c.received += res.wire_len as u64;
    drop(conn);
    assert_deltas(s.addr(), &before, &[("poll", c)]).await;
}

#[tokio::test]
async fn long_poll_bytes_are_exact_for_answers_and_timeouts() {
    let s = seeded(2).await;
    let before = snapshot(s.addr()).await;
    let mut c = Counted::default();
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    send(
        &mut conn,
        &mut c,
        b"GET /topics/w/longpoll?after=0 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    c.received += read_response(&mut conn).await.wire_len as u64;
    send(
        &mut conn,
        &mut c,
        b"GET /topics/w/longpoll?after=2&timeout=0.05 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    let res = read_response(&mut conn).await;
    assert_eq!(res.json()["events"], serde_json::json!([]));
    c.received += res.wire_len as u64;
    drop(conn);
    assert_deltas(s.addr(), &before, &[("longpoll", c)]).await;
}

#[tokio::test]
async fn sse_bytes_are_exact() {
    let s = seeded(3).await;
    let before = snapshot(s.addr()).await;
    let mut c = Counted::default();
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    send(
        &mut conn,
        &mut c,
        b"GET /topics/w/sse?after=1 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    recv_until(&mut conn, &mut c, "\"seq\":3,").await;
    // A live event after the backlog, in a chunk of its own.
    publish(&s, "w", r#"{"live":true}"#).await;
    let text = recv_until(&mut conn, &mut c, "\"seq\":4,").await;
    assert!(text.contains("\"live\":true"));
    drop(conn);
    assert_deltas(s.addr(), &before, &[("sse", c)]).await;
}

/// Reads one server frame: (opcode, payload). Fails if it is masked.
async fn read_frame(s: &mut TcpStream, c: &mut Counted) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
    let mut len = u64::from(head[1] & 0x7f);
    let mut extra = 0;
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await.unwrap();
        len = u64::from(u16::from_be_bytes(b));
        extra = 2;
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).await.unwrap();
        len = u64::from_be_bytes(b);
        extra = 8;
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).await.unwrap();
    c.received += 2 + extra + len;
    (head[0] & 0x0f, payload)
}

#[tokio::test]
async fn websocket_bytes_are_exact_from_handshake_to_close() {
    let s = seeded(3).await;
    let before = snapshot(s.addr()).await;
    let mut c = Counted::default();
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    send(
        &mut conn,
        &mut c,
        b"GET /topics/w/ws?after=0 HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    let res = read_response(&mut conn).await;
    assert_eq!(res.status, 101);
    assert_eq!(
        res.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    c.received += res.wire_len as u64;
    let (op, ready) = read_frame(&mut conn, &mut c).await;
    assert_eq!(op, 1);
    assert!(ready.starts_with(br#"{"type":"ready""#));
    for seq in 1..=3 {
        let (op, ev) = read_frame(&mut conn, &mut c).await;
        assert_eq!(op, 1);
        let v: serde_json::Value = serde_json::from_slice(&ev).unwrap();
        assert_eq!(v["seq"], seq);
    }
    // A masked close frame, code 1000.
    let mask = [1u8, 2, 3, 4];
    let payload = 1000u16.to_be_bytes();
    let mut frame = vec![0x88, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    send(&mut conn, &mut c, &frame).await;
    let (op, body) = read_frame(&mut conn, &mut c).await;
    assert_eq!(op, 8, "the server answers the close");
    assert_eq!(&body[..2], &1000u16.to_be_bytes());
    let rest = read_to_close(&mut conn).await;
    assert!(rest.is_empty(), "nothing after the close frame");
    assert_deltas(s.addr(), &before, &[("ws", c)]).await;
}

#[tokio::test]
async fn one_keep_alive_connection_attributes_each_request_to_its_transport() {
    let s = seeded(2).await;
    let before = snapshot(s.addr()).await;
    let (mut poll, mut longpoll, mut sse) =
        (Counted::default(), Counted::default(), Counted::default());
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();

    send(
        &mut conn,
        &mut poll,
        b"GET /topics/w/poll?after=0 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    poll.received += read_response(&mut conn).await.wire_len as u64;

    send(
        &mut conn,
        &mut longpoll,
        b"GET /topics/w/longpoll?after=1 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    let res = read_response(&mut conn).await;
    assert_eq!(res.json()["events"][0]["seq"], 2);
    longpoll.received += res.wire_len as u64;

    send(
        &mut conn,
        &mut sse,
        b"GET /topics/w/sse?after=0 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    recv_until(&mut conn, &mut sse, "\"seq\":2,").await;
    drop(conn);

    assert_deltas(
        s.addr(),
        &before,
        &[("poll", poll), ("longpoll", longpoll), ("sse", sse)],
    )
    .await;
}

#[tokio::test]
async fn bytes_of_unrouted_requests_count_as_other() {
    let s = start(Config::default()).await;
    let m0 = scrape(s.addr()).await;
    let junk = b"NOT HTTP AT ALL\r\n\r\n";
    let reply = raw_exchange(s.addr(), junk).await;
    assert!(
        reply.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let m1 = scrape(s.addr()).await;
    // The scrape that produced m0 is itself `other`: its response was
    // counted after m0 was rendered, so compare the junk's share only.
    let scrape_req = http_scrape_request_len();
    let in_delta = wire(&m1, "other", "in") - wire(&m0, "other", "in");
    assert_eq!(in_delta, junk.len() as u64 + scrape_req);
    for t in ["poll", "longpoll", "sse", "ws", "publish"] {
        assert_eq!(wire(&m1, t, "in"), wire(&m0, t, "in"), "{t}");
        assert_eq!(wire(&m1, t, "out"), wire(&m0, t, "out"), "{t}");
    }
}

/// The size of the request `common::http` sends for a scrape.
fn http_scrape_request_len() -> u64 {
    "GET /metrics HTTP/1.1\r\ncontent-length: 0\r\nhost: test\r\n\r\n".len() as u64
}

/// With permessage-deflate the counters count the compressed frames that
/// crossed the socket, and `feedgate_payload_bytes_total` still counts the
/// event JSON as published.
#[tokio::test]
async fn deflated_websocket_bytes_are_exact_and_payload_stays_uncompressed() {
    let s = seeded(3).await;
    let before = snapshot(s.addr()).await;
    let payload_before = sample(
        &scrape(s.addr()).await,
        r#"feedgate_payload_bytes_total{transport="ws"}"#,
    );
    let mut c = Counted::default();
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    send(
        &mut conn,
        &mut c,
        b"GET /topics/w/ws?after=0 HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    )
    .await;
    let res = read_response(&mut conn).await;
    assert_eq!(
        res.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_no_context_takeover")
    );
    c.received += res.wire_len as u64;
    read_frame(&mut conn, &mut c).await; // ready
    let mut json_len = 0;
    let mut wire_len = 0;
    for _ in 1..=3 {
        let (op, ev) = read_frame(&mut conn, &mut c).await;
        assert_eq!(op, 1);
        let mut input = ev.clone();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut json = Vec::with_capacity(1024);
        flate2::Decompress::new(false)
            .decompress_vec(&input, &mut json, flate2::FlushDecompress::Sync)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["topic"], "w");
        json_len += json.len();
        wire_len += ev.len();
    }
    assert!(wire_len < json_len, "compressed {wire_len} < {json_len}");
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x88, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend(
        1000u16
            .to_be_bytes()
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4]),
    );
    send(&mut conn, &mut c, &frame).await;
    let (op, _) = read_frame(&mut conn, &mut c).await;
    assert_eq!(op, 8);
    read_to_close(&mut conn).await;
    assert_deltas(s.addr(), &before, &[("ws", c)]).await;
    let payload = sample(
        &scrape(s.addr()).await,
        r#"feedgate_payload_bytes_total{transport="ws"}"#,
    );
    assert_eq!(payload - payload_before, json_len as f64);
}
