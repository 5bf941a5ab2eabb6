//! The WebSocket fast path (src/transport/fanout.rs) under churn:
//! subscribers of every frame variant, readers so slow that their sockets
//! fill (the fast path hands them back to their sessions, which write the
//! rest and rejoin), and readers that ping (each ping takes the socket back
//! to its session for a moment). Every subscriber gets every event exactly
//! once and in order, the deliveries and wire bytes the server counts are
//! the ones the clients received, to the byte, and the end conditions —
//! drain, token expiry — reach sockets parked on the fast path.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use feedgate::auth::JwtKey;
use feedgate::client::{Delivery, SubscribeOptions, Subscriber, Wire};
use feedgate::log::Retention;
use feedgate::metrics::Transport;
use feedgate::wire::{ByteCount, CountingIo};
use feedgate::{Config, FanoutSpread};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{EncodingKey, Header};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const TOTAL: u64 = 480;
/// Bytes of padding per event: `TOTAL` of them are more than a loopback
/// socket's largest send buffer (`tcp_wmem`'s 4 MiB), so a reader that
/// takes none of them blocks the server's writes.
const PAD: usize = 12 * 1024;
const PARKED: &str = "feedgate_ws_fanout_sockets";

type Raw = WebSocketStream<CountingIo<TcpStream, Arc<ByteCount>>>;

fn config() -> Config {
    Config {
        // Every event stays in the log: a slow reader is behind, never
        // past the retention.
        retention: Retention {
            max_events: 100_000,
            max_age: None,
        },
        ..Config::default()
    }
}

/// A WebSocket to `path` over a socket whose bytes the test counts, with a
/// receive buffer of `rcvbuf` bytes if given (a small one fills at once).
async fn raw(addr: std::net::SocketAddr, path: &str, rcvbuf: Option<u32>) -> (Raw, Arc<ByteCount>) {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(n) = rcvbuf {
        socket.set_recv_buffer_size(n).unwrap();
    }
    let stream = socket.connect(addr).await.unwrap();
    let count = Arc::new(ByteCount::default());
    let io = CountingIo::new(stream, count.clone());
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}{path}"), io)
        .await
        .unwrap();
    (ws, count)
}

/// How a raw reader behaves.
#[derive(Clone, Copy, Debug)]
enum Reader {
    /// Reads nothing until every event is published, then stops for a
    /// while every 40 events: its socket fills, and the fast path must
    /// hand it back.
    Stalling,
    /// Pings every 7 events: its session takes the socket back each time.
    Pinging,
}

/// Reads `TOTAL` events (their seqs, in arrival order), then closes with a
/// handshake and reads to the end, so that every byte the server wrote was
/// read.
async fn read_raw(mut ws: Raw, how: Reader, mut published: watch::Receiver<u64>) -> Vec<u64> {
    if let Reader::Stalling = how {
        published.wait_for(|n| *n >= TOTAL).await.unwrap();
    }
    let mut seqs = Vec::new();
    while (seqs.len() as u64) < TOTAL {
        let msg = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{how:?} reader stalled after {}", seqs.len()))
            .expect("open")
            .expect("a message");
        let text = match msg {
            Message::Text(t) => t,
            Message::Pong(_) => continue,
            other => panic!("{how:?}: unexpected {other:?}"),
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let Some(seq) = v["seq"].as_u64() else {
            assert_eq!(v["type"], "ready", "{text}");
            continue;
        };
        seqs.push(seq);
        match how {
            // A reader that is slow, not a signal awaited: the pause is
            // the load this test makes.
            Reader::Stalling if seqs.len() % 40 == 0 => {
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            Reader::Pinging if seqs.len() % 7 == 0 => {
                ws.send(Message::Ping(seqs.len().to_string().into()))
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    ws.close(None).await.unwrap();
    while let Some(msg) = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {
        if msg.is_err() {
            break;
        }
    }
    seqs
}

/// Reads `TOTAL` events through the library client, then closes.
async fn read_client(mut sub: Subscriber) -> Vec<u64> {
    let mut seqs = Vec::new();
    while (seqs.len() as u64) < TOTAL {
        let d = tokio::time::timeout(PATIENCE, sub.next())
            .await
            .unwrap_or_else(|_| panic!("client stalled after {}", seqs.len()))
            .unwrap();
        match d {
            Delivery::Event(e) => seqs.push(e.seq),
            other => panic!("after {} events: {other:?}", seqs.len()),
        }
    }
    sub.close().await;
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_switching_between_the_fast_and_slow_paths_get_every_event_once_in_order() {
    churn(FanoutSpread::default()).await;
}

/// The same with each pass dealt over both worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_with_the_pass_spread_over_every_thread() {
    churn(FanoutSpread::All).await;
}

async fn churn(fanout_spread: FanoutSpread) {
    let s = start(Config {
        fanout_spread,
        ..config()
    })
    .await;
    let ep = endpoint(&s);
    let opts = SubscribeOptions::default();
    let mut readers = Vec::new();
    let mut counts = Vec::new();
    let (published_tx, published) = watch::channel(0u64);
    let published_tx = Arc::new(published_tx);
    // Every frame variant the fast path makes: json or lean, deflated or
    // not.
    for lean in [false, true] {
        for deflate in [false, true] {
            for _ in 0..4 {
                let sub = Subscriber::connect_with(
                    &ep,
                    "churn",
                    Transport::Ws,
                    after(0),
                    opts.clone(),
                    Wire { lean, deflate },
                )
                .await
                .unwrap();
                counts.push(sub.bytes().clone());
                readers.push(tokio::spawn(read_client(sub)));
            }
        }
    }
    for (how, n) in [(Reader::Stalling, 6), (Reader::Pinging, 4)] {
        for _ in 0..n {
            let (ws, count) = raw(s.addr(), "/topics/churn/ws?after=0", Some(4096)).await;
            counts.push(count);
            readers.push(tokio::spawn(read_raw(ws, how, published.clone())));
        }
    }
    let n = readers.len();
    // Each session parks on the fast path once its opening is told.
    wait_metric(&s, PARKED, |v| v >= n as f64).await;

    publish_padded(&ep, "churn", TOTAL, PAD, &published_tx).await;
    for r in readers {
        assert_eq!(r.await.unwrap(), (1..=TOTAL).collect::<Vec<_>>());
    }

    let read: u64 = counts.iter().map(|c| c.read()).sum();
    // The stalling readers' sockets filled and were handed back; every
    // delivery and byte counted once, whichever path made it; every
    // subscriber took its socket back before it let it go.
    assert_churn_accounted(&s, "ws", (n, TOTAL), read, PARKED).await;
}

/// Reads up to the first event: its seq.
async fn first_event(ws: &mut Raw) -> u64 {
    loop {
        let msg = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("an event in time");
        let Some(Ok(Message::Text(t))) = msg else {
            panic!("expected an event, got {msg:?}");
        };
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        if let Some(seq) = v["seq"].as_u64() {
            return seq;
        }
    }
}

/// Reads to the close frame: its code and reason.
async fn close_of(ws: &mut Raw) -> (CloseCode, String) {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(f)))) => return (f.code, f.reason.as_str().to_owned()),
            // The server's keep-alive may come first.
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_closes_parked_sockets_with_1012() {
    let s = start(config()).await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(raw(s.addr(), "/topics/d/ws?after=0", None).await.0);
    }
    publish(&s, "d", "1").await;
    for ws in &mut sockets {
        assert_eq!(first_event(ws).await, 1);
    }
    // All delivered and parked again: the drain must reach them there.
    wait_metric(&s, PARKED, |v| v >= 3.0).await;
    let down = tokio::spawn(s.shutdown());
    for ws in &mut sockets {
        assert_eq!(close_of(ws).await.0, CloseCode::Restart);
    }
    down.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_socket_closes_1008_when_its_token_expires() {
    let s = start(Config {
        jwt: Some(JwtKey::Secret(b"k".to_vec())),
        ..config()
    })
    .await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3;
    let token = jsonwebtoken::encode(
        &Header::default(),
        &serde_json::json!({"exp": exp, "topics": ["t"]}),
        &EncodingKey::from_secret(b"k"),
    )
    .unwrap();
    let (mut ws, _) = raw(
        s.addr(),
        &format!("/topics/t/ws?after=0&token={token}"),
        None,
    )
    .await;
    publish(&s, "t", "1").await;
    assert_eq!(first_event(&mut ws).await, 1);
    wait_metric(&s, PARKED, |v| v >= 1.0).await;
    assert_eq!(
        close_of(&mut ws).await,
        (CloseCode::Policy, "token expired".to_owned())
    );
    wait_metric(&s, PARKED, |v| v == 0.0).await;
}
