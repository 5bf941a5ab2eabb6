//! SSE heartbeats: a `:` comment after `--sse-heartbeat` of silence, and
//! never while events flow (the silence starts again with each event).
//! The stream judges silence by the time of its last write rather than
//! resetting a timer per event (issue 12); this checks the rule from a
//! raw socket, with lower bounds only (a heartbeat is never early).

mod common;

use std::time::Duration;

use common::*;
use feedgate::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const HEARTBEAT: Duration = Duration::from_millis(1500);
/// A heartbeat chunk as it crosses the wire (HTTP/1.1 chunked).
const BEAT: &[u8] = b"3\r\n:\n\n\r\n";

/// Reads from `s` into `buf` until `buf[from..]` holds `needle`; returns
/// where it ends and when it arrived.
async fn read_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    from: usize,
    needle: &[u8],
) -> (usize, Instant) {
    let found = async {
        loop {
            if let Some(at) = buf[from..].windows(needle.len()).position(|w| w == needle) {
                return (from + at + needle.len(), Instant::now());
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("stream readable");
            assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(PATIENCE, found)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no {:?} in {}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(buf)
            )
        })
}

#[tokio::test]
async fn heartbeats_come_after_silence_and_never_between_events() {
    let server = start(Config {
        sse_heartbeat: HEARTBEAT,
        ..Config::default()
    })
    .await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(b"GET /topics/hb/sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let (at, ready) = read_until(&mut s, &mut buf, 0, b"event: ready").await;

    // Silence: a heartbeat, not before the interval.
    let (at, beat) = read_until(&mut s, &mut buf, at, BEAT).await;
    let quiet = beat - ready;
    assert!(
        quiet >= HEARTBEAT - Duration::from_millis(50),
        "first heartbeat after {quiet:?}"
    );

    // Events every 100 ms for twice the interval: no heartbeat among them.
    let mut at = at;
    let mut last_event = Instant::now();
    for i in 1..=16 {
        publish(&server, "hb", &format!(r#"{{"i":{i}}}"#)).await;
        let needle = format!(r#""data":{{"i":{i}}}"#);
        let (end, when) = read_until(&mut s, &mut buf, at, needle.as_bytes()).await;
        assert!(
            !buf[at..end].windows(BEAT.len()).any(|w| w == BEAT),
            "a heartbeat between events {} and {i}",
            i - 1
        );
        (at, last_event) = (end, when);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Silence again: the next heartbeat counts from the last event.
    let (_, beat) = read_until(&mut s, &mut buf, at, BEAT).await;
    let quiet = beat - last_event;
    assert!(
        quiet >= HEARTBEAT - Duration::from_millis(50),
        "heartbeat {quiet:?} after the last event"
    );
    server.shutdown().await.unwrap();
}
