//! The SSE fast path (src/transport/fanout.rs, for streams feedgate writes
//! itself: src/server/direct.rs) under churn: json and lean streams
//! through the library client, raw readers so slow that their sockets fill
//! (the fast path hands them back mid-chunk; their tasks write the rest
//! and park again), every subscriber gets every event exactly once and in
//! order, the deliveries and wire bytes the server counts are the ones the
//! clients received, to the byte; a drain and the heartbeat reach streams
//! parked on the fast path; `--sse-fanout false` serves the same stream.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use feedgate::client::{Delivery, SubscribeOptions, Subscriber, Wire};
use feedgate::log::Retention;
use feedgate::metrics::Transport;
use feedgate::{Config, FanoutSpread};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

const TOTAL: u64 = 480;
/// Bytes of padding per event: `TOTAL` of them are more than a loopback
/// socket's largest send buffer, so a reader that takes none of them
/// blocks the server's writes.
const PAD: usize = 12 * 1024;
const PARKED: &str = "feedgate_sse_fanout_streams";

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

/// An SSE stream read from a raw socket: its chunked body taken apart
/// into event blocks.
struct RawStream {
    socket: TcpStream,
    /// Bytes read from the socket, all told.
    read: u64,
    /// Read, not yet taken apart.
    wire: Vec<u8>,
    /// The body so far, de-chunked, not yet split into blocks.
    body: Vec<u8>,
    /// Whether the response head was read.
    headed: bool,
    /// Whether the body's last chunk was read.
    finished: bool,
}

impl RawStream {
    /// A stream of `path`, with a receive buffer of `rcvbuf` bytes if
    /// given (a small one fills at once).
    async fn open(addr: std::net::SocketAddr, path: &str, rcvbuf: Option<u32>) -> RawStream {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(n) = rcvbuf {
            socket.set_recv_buffer_size(n).unwrap();
        }
        let mut socket = socket.connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
        socket.write_all(req.as_bytes()).await.unwrap();
        RawStream {
            socket,
            read: 0,
            wire: Vec::new(),
            body: Vec::new(),
            headed: false,
            finished: false,
        }
    }

    /// Takes whole chunks out of `wire` into `body`.
    fn dechunk(&mut self) {
        if !self.headed {
            let Some(end) = self.wire.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&self.wire[..end]).to_string();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(head.contains("transfer-encoding: chunked"), "{head}");
            self.wire.drain(..end + 4);
            self.headed = true;
        }
        loop {
            let Some(eol) = self.wire.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_line = std::str::from_utf8(&self.wire[..eol]).unwrap();
            let size = usize::from_str_radix(size_line, 16)
                .unwrap_or_else(|_| panic!("not a chunk size: {size_line:?}"));
            if size == 0 {
                // The last chunk: what came before it is still read.
                self.finished = true;
                return;
            }
            if self.wire.len() < eol + 2 + size + 2 {
                return;
            }
            let data = &self.wire[eol + 2..eol + 2 + size];
            assert_eq!(&self.wire[eol + 2 + size..eol + 4 + size], b"\r\n");
            self.body.extend_from_slice(data);
            self.wire.drain(..eol + 4 + size);
        }
    }

    /// The next whole event block of the body.
    fn block(&mut self) -> Option<String> {
        let end = self.body.windows(2).position(|w| w == b"\n\n")?;
        let block = String::from_utf8(self.body[..end].to_vec()).unwrap();
        self.body.drain(..end + 2);
        Some(block)
    }

    /// The next event block (of any name; heartbeats skipped).
    async fn next_block(&mut self) -> String {
        loop {
            let b = self.next_block_raw().await;
            if !b.starts_with(':') {
                return b;
            }
        }
    }

    /// The next block, heartbeats included.
    async fn next_block_raw(&mut self) -> String {
        loop {
            self.dechunk();
            if let Some(b) = self.block() {
                return b;
            }
            assert!(!self.finished, "the stream ended");
            let mut buf = [0u8; 16384];
            let n = tokio::time::timeout(PATIENCE, self.socket.read(&mut buf))
                .await
                .expect("stream readable in time")
                .unwrap();
            assert!(n > 0, "stream closed");
            self.read += n as u64;
            self.wire.extend_from_slice(&buf[..n]);
        }
    }
}

/// The seq of an event block, `None` for a named event (`ready`, …).
fn seq_of(block: &str) -> Option<u64> {
    if block.lines().any(|l| l.starts_with("event:")) {
        return None;
    }
    let id = block.lines().find_map(|l| l.strip_prefix("id: "))?;
    Some(id.rsplit_once(':').unwrap().1.parse().unwrap())
}

/// Reads nothing until every event is published, then `TOTAL` events,
/// stopping for a while every 40: its socket fills, and the fast path must
/// hand it back, often mid-chunk. Returns the seqs and the bytes read.
async fn read_stalling(mut s: RawStream, mut published: watch::Receiver<u64>) -> (Vec<u64>, u64) {
    published.wait_for(|n| *n >= TOTAL).await.unwrap();
    let mut seqs = Vec::new();
    while (seqs.len() as u64) < TOTAL {
        let block = s.next_block().await;
        let Some(seq) = seq_of(&block) else {
            assert!(block.contains("event: ready"), "{block}");
            continue;
        };
        seqs.push(seq);
        // A reader that is slow, not a signal awaited: the pause is the
        // load this test makes.
        if seqs.len() % 40 == 0 {
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
    (seqs, s.read)
}

/// Reads `TOTAL` events through the library client, then closes.
async fn read_client(mut sub: Subscriber) -> (Vec<u64>, u64) {
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
    let read = sub.bytes().read();
    sub.close().await;
    (seqs, read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_switching_between_the_fast_and_slow_paths_get_every_event_once_in_order() {
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
    let (published_tx, published) = watch::channel(0u64);
    let published_tx = Arc::new(published_tx);
    let mut readers = Vec::new();
    for lean in [false, true] {
        for _ in 0..4 {
            let sub = Subscriber::connect_with(
                &ep,
                "churn",
                Transport::Sse,
                after(0),
                SubscribeOptions::default(),
                Wire {
                    lean,
                    deflate: false,
                },
            )
            .await
            .unwrap();
            readers.push(tokio::spawn(read_client(sub)));
        }
    }
    for _ in 0..6 {
        let stream = RawStream::open(s.addr(), "/topics/churn/sse?after=0", Some(4096)).await;
        readers.push(tokio::spawn(read_stalling(stream, published.clone())));
    }
    let n = readers.len();
    // Each stream parks on the fast path once its opening is told.
    wait_metric(&s, PARKED, |v| v >= n as f64).await;

    publish_padded(&ep, "churn", TOTAL, PAD, &published_tx).await;
    let mut read = 0;
    for r in readers {
        let (seqs, bytes) = r.await.unwrap();
        assert_eq!(seqs, (1..=TOTAL).collect::<Vec<_>>());
        read += bytes;
    }

    // The stalling readers' sockets filled and were handed back; every
    // delivery and byte counted once, whichever path made it; every
    // subscriber took its socket back before it let it go.
    assert_churn_accounted(&s, "sse", (n, TOTAL), read, PARKED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_ends_parked_streams_with_a_restart_event() {
    let s = start(config()).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(RawStream::open(s.addr(), "/topics/d/sse?after=0", None).await);
    }
    publish(&s, "d", "1").await;
    for st in &mut streams {
        let mut block = st.next_block().await;
        while seq_of(&block).is_none() {
            block = st.next_block().await;
        }
        assert_eq!(seq_of(&block), Some(1));
    }
    // All delivered and parked again: the drain must reach them there.
    wait_metric(&s, PARKED, |v| v >= 3.0).await;
    let down = tokio::spawn(s.shutdown());
    for st in &mut streams {
        let block = st.next_block().await;
        assert!(block.contains("event: restart"), "{block}");
    }
    down.await.unwrap().unwrap();
}

/// A stream parked on the fast path still hears its heartbeat after
/// `--sse-heartbeat` of silence, and parks again after it; events the
/// fast path wrote count as the stream's last words (no heartbeat follows
/// one sooner than the period).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_stream_keeps_its_heartbeat() {
    let beat = Duration::from_millis(400);
    let s = start(Config {
        sse_heartbeat: beat,
        ..config()
    })
    .await;
    let mut st = RawStream::open(s.addr(), "/topics/h/sse?after=0", None).await;
    publish(&s, "h", "1").await;
    while seq_of(&st.next_block().await).is_none() {}
    // When the last block arrived: the silence before the next is measured
    // between arrivals, which a loaded machine can only shorten by the
    // delay in reading the earlier one — hence half the period as the
    // bound, which still fails a heartbeat sent on parking or while events
    // flow.
    let mut last = tokio::time::Instant::now();
    wait_metric(&s, PARKED, |v| v >= 1.0).await;
    // Two heartbeats, each after a silence of at least the period, each
    // followed by parking again.
    for _ in 0..2 {
        loop {
            st.dechunk();
            if let Some(b) = st.block() {
                assert_eq!(b, ":", "only a heartbeat was due");
                break;
            }
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(PATIENCE, st.socket.read(&mut buf))
                .await
                .expect("a heartbeat in time")
                .unwrap();
            assert!(n > 0);
            st.wire.extend_from_slice(&buf[..n]);
        }
        let now = tokio::time::Instant::now();
        assert!(now - last >= beat / 2, "a heartbeat came early");
        last = now;
        wait_metric(&s, PARKED, |v| v >= 1.0).await;
    }
    // An event from the fast path late in the period (the pause is the
    // scenario, not a wait for anything): the silence starts again from
    // it, so the next heartbeat is a period after the event, not after
    // the last heartbeat (which would be a quarter of one after it).
    tokio::time::sleep_until(last + beat.mul_f32(0.75)).await;
    publish(&s, "h", "2").await;
    let mut block = st.next_block_raw().await;
    assert_eq!(seq_of(&block), Some(2));
    let event_at = tokio::time::Instant::now();
    block = st.next_block_raw().await;
    assert_eq!(block, ":");
    assert!(
        event_at.elapsed() >= beat / 2,
        "the heartbeat counted the silence from before the event"
    );
}

/// With `--sse-fanout false` the same stream is written by its task.
#[tokio::test]
async fn without_the_fast_path_streams_are_the_same() {
    let s = start(Config {
        sse_fanout: false,
        ..config()
    })
    .await;
    let mut st = RawStream::open(s.addr(), "/topics/off/sse?after=0", None).await;
    for i in 1..=3 {
        publish(&s, "off", &i.to_string()).await;
    }
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        if let Some(seq) = seq_of(&st.next_block().await) {
            seqs.push(seq);
        }
    }
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(sample(&scrape(s.addr()).await, PARKED), 0.0);
}
