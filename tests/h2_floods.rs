//! HTTP/2 flood defences, each with hand-made frames on a raw socket (a
//! real client would never send these): rapid reset (CVE-2023-44487), a
//! CONTINUATION flood, SETTINGS and PING floods. Each ends bounded — the
//! connection is closed, or the flood costs the server a bounded answer —
//! and the server goes on serving everyone else.

mod common;

use std::time::Duration;

use common::*;
use feedgate::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ENHANCE_YOUR_CALM: u32 = 0xb;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `GET /healthz`, HPACK literals without indexing (no table involved).
fn get_healthz() -> Vec<u8> {
    let mut b = vec![0x82, 0x86]; // :method GET, :scheme http
    b.extend_from_slice(&[0x04, 8]);
    b.extend_from_slice(b"/healthz");
    b.extend_from_slice(&[0x01, 9]); // :authority
    b.extend_from_slice(b"localhost");
    b
}

/// An h2c connection past its preface and SETTINGS.
async fn open(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    s
}

/// What the server did with the connection, read until it closed (or
/// `PATIENCE` passed): the GOAWAY error code if it sent one, and how many
/// frames of each kind came.
#[derive(Debug, Default)]
struct Outcome {
    goaway: Option<u32>,
    closed: bool,
    pongs: usize,
    settings_acks: usize,
    bytes: usize,
}

async fn drain(s: &mut TcpStream) -> Outcome {
    let mut out = Outcome::default();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        // Whole frames in `buf`.
        while buf.len() >= 9 {
            let len = usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            match buf[3] {
                GOAWAY if len >= 8 => {
                    out.goaway = Some(u32::from_be_bytes([buf[13], buf[14], buf[15], buf[16]]));
                }
                PING if buf[4] & 1 == 1 => out.pongs += 1,
                SETTINGS if buf[4] & 1 == 1 => out.settings_acks += 1,
                _ => {}
            }
            buf.drain(..9 + len);
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                out.closed = true;
                return out;
            }
            Ok(Ok(n)) => {
                out.bytes += n;
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(_) => return out,
        }
    }
}

/// The server still answers a well-behaved client.
async fn still_serving(s: &feedgate::RunningServer) {
    assert_eq!(
        http(s.addr(), "GET", "/healthz", &[], b"").await.status,
        200
    );
}

fn quick() -> Config {
    Config {
        header_read_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

#[tokio::test]
async fn rapid_reset_is_met_with_goaway() {
    let s = start(quick()).await;
    let mut c = open(s.addr()).await;
    let mut burst = Vec::new();
    for i in 0..2000u32 {
        let id = 2 * i + 1;
        burst.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &get_healthz()));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    // The server may close mid-burst: a failed write is the point.
    let _ = c.write_all(&burst).await;
    let out = drain(&mut c).await;
    eprintln!("rapid reset: {out:?}");
    assert_eq!(out.goaway, Some(ENHANCE_YOUR_CALM), "{out:?}");
    assert!(out.closed, "{out:?}");
    still_serving(&s).await;
}

#[tokio::test]
async fn a_continuation_flood_is_cut_off() {
    let s = start(quick()).await;
    let mut c = open(s.addr()).await;
    c.write_all(&frame(HEADERS, 0, 1, &get_healthz()[..4]))
        .await
        .unwrap();
    let junk = vec![0x40u8; 16_000]; // a literal with a huge name, never ending
    let cont = frame(CONTINUATION, 0, 1, &junk);
    let mut sent = 0usize;
    for _ in 0..2000 {
        if c.write_all(&cont).await.is_err() {
            break;
        }
        sent += cont.len();
    }
    let out = drain(&mut c).await;
    eprintln!("continuation flood: sent {sent}, {out:?}");
    assert!(out.closed, "{out:?}");
    assert!(out.goaway.is_some(), "{out:?}");
    still_serving(&s).await;
}

/// A flood of frames the server must answer (SETTINGS must be ACKed,
/// PINGs answered), sent without ever reading an answer: the server stops
/// reading once its answers back up — it does not queue them in memory —
/// and drops the connection after `--write-timeout`.
async fn flood_without_reading(one: Vec<u8>) {
    let s = start(Config {
        write_timeout: Duration::from_secs(1),
        ..quick()
    })
    .await;
    let c = open(s.addr()).await;
    let (mut rd, mut wr) = c.into_split();
    // 256 MiB of frames: far more than the sockets' buffers hold.
    let n = (256 << 20) / one.len();
    let burst: Vec<u8> = one.iter().copied().cycle().take(one.len() * n).collect();
    let writer = tokio::spawn(async move { wr.write_all(&burst).await.is_ok() });
    // Nothing is read: the server's answers back up, it stops reading the
    // flood, and its write watchdog drops the connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sample(
        &scrape(s.addr()).await,
        "feedgate_limit_rejections_total{limit=\"write_timeout\"}",
    ) < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flooding connection was never dropped"
        );
        // Not too often: each scrape costs the server a render.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !writer.await.unwrap(),
        "the server read the whole flood while none of its answers was read"
    );
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, rd.read_to_end(&mut rest)).await;
    still_serving(&s).await;
}

#[tokio::test]
async fn a_settings_flood_is_bounded() {
    flood_without_reading(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100])).await;
}

#[tokio::test]
async fn a_ping_flood_is_bounded() {
    flood_without_reading(frame(PING, 0, 0, &[1; 8])).await;
}
