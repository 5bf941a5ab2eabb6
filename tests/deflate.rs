//! permessage-deflate (RFC 7692) on every WebSocket endpoint, spoken by a
//! raw-socket client that negotiates as a browser does and inflates what
//! arrives: events are compressed once and the same frame goes to every
//! subscriber; compressed client messages are understood.

mod common;

use std::net::SocketAddr;

use common::*;
use feedgate::Config;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// Opens a WebSocket on `path`, offering `ext`; the `101` and the socket.
async fn open(addr: SocketAddr, path: &str, ext: Option<&str>) -> (RawResponse, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let ext = ext.map_or(String::new(), |e| {
        format!("sec-websocket-extensions: {e}\r\n")
    });
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n{ext}\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let res = read_response(&mut s).await;
    assert_eq!(res.status, 101);
    (res, s)
}

/// One server frame: (first byte, payload).
async fn frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    tokio::time::timeout(PATIENCE, async {
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.unwrap();
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            len = u64::from(s.read_u16().await.unwrap());
        } else if len == 127 {
            len = s.read_u64().await.unwrap();
        }
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).await.unwrap();
        (head[0], payload)
    })
    .await
    .expect("a frame in time")
}

/// A message's text, inflated when RSV1 says it is compressed.
fn text_of((b0, payload): &(u8, Vec<u8>)) -> String {
    assert_eq!(b0 & 0x0f, 1, "a text frame");
    let bytes = if b0 & 0x40 != 0 {
        inflate(payload)
    } else {
        payload.clone()
    };
    String::from_utf8(bytes).unwrap()
}

fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(64 << 10);
    Decompress::new(false)
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    Compress::new(Compression::default(), false)
        .compress_vec(data, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [9u8, 8, 7, 6];
    let mut f = vec![first];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

const DOC: &str = r#"{"symbol":"ACME","bid":101.25,"ask":101.5,"venue":"XNAS","symbol2":"ACME","bid2":101.25,"ask2":101.5,"venue2":"XNAS"}"#;

#[tokio::test]
async fn events_are_compressed_once_and_every_subscriber_gets_the_same_frame() {
    let s = start(Config::default()).await;
    publish(&s, "d", "0").await;
    let (res, mut a) = open(s.addr(), "/topics/d/ws?after=1", Some(BROWSER_OFFER)).await;
    assert_eq!(
        res.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_no_context_takeover")
    );
    let (_, mut b) = open(s.addr(), "/topics/d/ws?after=1", Some(BROWSER_OFFER)).await;
    for sock in [&mut a, &mut b] {
        assert!(text_of(&frame(sock).await).starts_with(r#"{"type":"ready""#));
    }
    publish(&s, "d", DOC).await;
    let fa = frame(&mut a).await;
    let fb = frame(&mut b).await;
    assert_eq!(fa.0, 0xc1, "FIN + RSV1 + text");
    assert_eq!(fa, fb, "one compressed frame for both");
    let text = text_of(&fa);
    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["seq"], 2, "{text}");
    assert_eq!(event["data"]["venue2"], "XNAS");
    assert!(fa.1.len() < text.len(), "{} compressed bytes", fa.1.len());
    // Without context takeover the next event stands alone too.
    publish(&s, "d", DOC).await;
    let second: serde_json::Value = serde_json::from_str(&text_of(&frame(&mut a).await)).unwrap();
    assert_eq!(second["seq"], 3);
}

#[tokio::test]
async fn no_offer_or_ws_deflate_false_means_plain_frames() {
    let s = start(Config::default()).await;
    let (res, mut a) = open(s.addr(), "/topics/d/ws?after=0", None).await;
    assert_eq!(res.header("sec-websocket-extensions"), None);
    frame(&mut a).await;
    publish(&s, "d", DOC).await;
    assert_eq!(frame(&mut a).await.0, 0x81);

    let off = start(Config {
        ws_deflate: false,
        ..Config::default()
    })
    .await;
    let (res, _) = open(off.addr(), "/topics/d/ws", Some(BROWSER_OFFER)).await;
    assert_eq!(res.header("sec-websocket-extensions"), None);
}

#[tokio::test]
async fn a_compressed_subscribe_message_is_understood() {
    let s = start(Config::default()).await;
    publish(&s, "m", DOC).await;
    let (_, mut ws) = open(s.addr(), "/ws", Some(BROWSER_OFFER)).await;
    let msg = br#"{"type":"subscribe","topic":"m","after":"0"}"#;
    ws.write_all(&client_frame(0xc1, &deflate(msg)))
        .await
        .unwrap();
    let subscribed = text_of(&frame(&mut ws).await);
    assert!(
        subscribed.starts_with(r#"{"type":"subscribed","topic":"m""#),
        "{subscribed}"
    );
    let event: serde_json::Value = serde_json::from_str(&text_of(&frame(&mut ws).await)).unwrap();
    assert_eq!(event["topic"], "m");
}

#[tokio::test]
async fn echo_takes_fragmented_compressed_messages_with_a_ping_between() {
    let s = start(Config {
        echo: true,
        ..Config::default()
    })
    .await;
    let (res, mut ws) = open(
        s.addr(),
        "/echo",
        Some("permessage-deflate; client_no_context_takeover; client_max_window_bits"),
    )
    .await;
    assert_eq!(
        res.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let packed = deflate(DOC.as_bytes());
    let (one, two) = packed.split_at(packed.len() / 2);
    ws.write_all(&client_frame(0x41, one)).await.unwrap(); // RSV1, text, not final
    ws.write_all(&client_frame(0x89, b"hi")).await.unwrap(); // ping
    ws.write_all(&client_frame(0x80, two)).await.unwrap(); // final continuation
    let pong = frame(&mut ws).await;
    assert_eq!(pong, (0x8a, b"hi".to_vec()));
    assert_eq!(text_of(&frame(&mut ws).await), DOC);
    // Compressed garbage fails the socket as a protocol error (1002).
    ws.write_all(&client_frame(0xc1, &[0xff, 0xff, 0xff]))
        .await
        .unwrap();
    let (b0, close) = frame(&mut ws).await;
    assert_eq!(b0, 0x88);
    assert_eq!(&close[..2], &1002u16.to_be_bytes());
}

#[tokio::test]
async fn a_compressed_message_that_inflates_past_the_limit_is_closed_1009() {
    let s = start(Config {
        echo: true,
        echo_max_message: 1024,
        ..Config::default()
    })
    .await;
    let (_, mut ws) = open(s.addr(), "/echo", Some(BROWSER_OFFER)).await;
    let bomb = deflate(&vec![b'a'; 100_000]);
    assert!(bomb.len() < 1024);
    ws.write_all(&client_frame(0xc1, &bomb)).await.unwrap();
    let (b0, close) = frame(&mut ws).await;
    assert_eq!(b0, 0x88);
    assert_eq!(&close[..2], &1009u16.to_be_bytes());
}

/// Issue 20, case 2: a continuation frame of a compressed message whose
/// 64-bit length is 2^64 − 1 once panicked the connection task (the
/// fragment sum overflowed). RFC 6455 §5.2: the length's most significant
/// bit MUST be 0; the socket is failed with 1002 and the server serves on.
#[tokio::test]
async fn a_64_bit_length_with_its_top_bit_set_is_closed_1002_not_a_panic() {
    let s = start(Config::default()).await;
    for huge in [u64::MAX, 1 << 63] {
        let (res, mut ws) = open(s.addr(), "/ws?topics=t", Some(BROWSER_OFFER)).await;
        assert!(res.header("sec-websocket-extensions").is_some());
        let packed = deflate(DOC.as_bytes());
        // RSV1, text, not final: a compressed message begins.
        ws.write_all(&client_frame(0x41, &packed[..4]))
            .await
            .unwrap();
        // A final continuation announcing `huge` payload bytes.
        let mut head = vec![0x80, 0x80 | 127];
        head.extend_from_slice(&huge.to_be_bytes());
        head.extend_from_slice(&[1, 2, 3, 4]);
        ws.write_all(&head).await.unwrap();
        let close = loop {
            let (b0, payload) = frame(&mut ws).await;
            if b0 == 0x88 {
                break payload;
            }
        };
        assert_eq!(&close[..2], &1002u16.to_be_bytes(), "length {huge:#x}");
    }
    let res = http(s.addr(), "GET", "/healthz", &[], b"").await;
    assert_eq!(res.status, 200);
}
