//! RFC 6455 rules on the subscriber socket (`/topics/{topic}/ws`), tested with
//! hand-built frames on a raw `TcpStream`: a real WebSocket client would
//! refuse to send most of these frames.
//!
//! Every frame the server sends is parsed by [`Raw::frame`], which fails the
//! test if it is masked (servers never mask, RFC 6455 §5.1). A server close
//! frame's code is read from its payload.

use std::time::Duration;

use feedgate::client::{self, Endpoint};
use feedgate::{Config, RunningServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Bound on every single read or write in these tests.
const STEP: Duration = Duration::from_secs(5);
/// The example key of RFC 6455 §1.3.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;

const PROTOCOL_ERROR: u16 = 1002;
const INVALID_DATA: u16 = 1007;
const TOO_BIG: u16 = 1009;

/// One frame as it came off the wire.
#[derive(Debug)]
struct Frame {
    fin: bool,
    /// The three reserved bits, as the high nibble's low three bits.
    rsv: u8,
    opcode: u8,
    payload: Vec<u8>,
}

impl Frame {
    fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        assert!(self.payload.len() >= 2, "close frame without a code");
        u16::from_be_bytes([self.payload[0], self.payload[1]])
    }
}

/// A raw WebSocket connection: the handshake done by hand, frames built and
/// parsed here.
struct Raw {
    stream: TcpStream,
    /// Bytes read but not yet parsed.
    buf: Vec<u8>,
}

impl Raw {
    /// Opens `path` with a valid RFC 6455 handshake and checks the 101.
    async fn open(server: &RunningServer, path: &str) -> Raw {
        let mut stream = timeout(STEP, TcpStream::connect(server.addr()))
            .await
            .expect("connect timed out")
            .expect("connect");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.addr()
        );
        timeout(STEP, stream.write_all(req.as_bytes()))
            .await
            .expect("write timed out")
            .expect("write");
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        let head = loop {
            if let Some(end) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = raw.buf.drain(..end + 4).collect();
                break String::from_utf8(head).expect("ASCII response head");
            }
            assert!(raw.fill().await > 0, "EOF during the handshake");
        };
        assert!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
        let accept = derive_accept_key(KEY.as_bytes());
        assert!(
            head.to_ascii_lowercase().contains(&format!(
                "sec-websocket-accept: {}",
                accept.to_ascii_lowercase()
            )),
            "wrong or missing Sec-WebSocket-Accept: {head}"
        );
        raw
    }

    /// Reads more bytes into the buffer; 0 at EOF. A reset counts as EOF:
    /// the server may close with our bytes still unread.
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 << 10];
        match timeout(STEP, self.stream.read(&mut chunk))
            .await
            .expect("the server sent nothing in time")
        {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Sends one frame, masked (as a client must) when `masked`.
    async fn send_raw(&mut self, first: u8, payload: &[u8], masked: bool) {
        let mut f = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                f.push(mask_bit | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(mask_bit | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&MASK);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        } else {
            f.extend_from_slice(payload);
        }
        // The server may fail the connection before it has read all of a
        // large frame; a write error then is expected, not a test failure.
        let _ = timeout(STEP, self.stream.write_all(&f))
            .await
            .expect("write timed out");
    }

    /// Sends a masked frame: `fin` bit, `opcode`, payload.
    async fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let first = if fin { 0x80 } else { 0 } | opcode;
        self.send_raw(first, payload, true).await;
    }

    /// The next frame from the server, `None` at EOF. Fails the test if the
    /// frame is masked.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if self.fill().await == 0 {
                assert!(self.buf.is_empty(), "EOF inside a frame: {:?}", self.buf);
                return None;
            }
        }
    }

    /// The text of the next frame, which must be a whole text message.
    async fn text(&mut self) -> String {
        let f = self.frame().await.expect("EOF instead of a text frame");
        assert!(f.fin && f.opcode == TEXT, "expected a text frame: {f:?}");
        String::from_utf8(f.payload).expect("server text is UTF-8")
    }

    /// Reads the opening `ready` message every subscriber gets first.
    async fn ready(&mut self) {
        let ready = self.text().await;
        assert!(ready.starts_with(r#"{"type":"ready""#), "{ready}");
    }

    /// Reads up to the server's close frame and returns its code; then
    /// checks that the server closes the TCP connection.
    async fn close_code(&mut self) -> u16 {
        let close = loop {
            let f = self.frame().await.expect("EOF instead of a close frame");
            if f.opcode == CLOSE {
                break f;
            }
        };
        assert_eq!(close.rsv, 0);
        assert!(close.fin);
        let code = close.close_code();
        // Complete the handshake as a polite client would; the server may
        // already be gone (it fails the connection after a protocol error).
        self.send(true, CLOSE, &close.payload[..2]).await;
        self.expect_eof().await;
        code
    }

    /// Reads until the server closes the connection; any frame before that
    /// is a test failure.
    async fn expect_eof(&mut self) {
        if let Some(f) = self.frame().await {
            panic!("expected EOF, got {f:?}");
        }
    }
}

/// Parses one server frame from the front of `buf`: `None` if incomplete.
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "the server sent a masked frame");
    let (len, mut at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    at += len;
    let frame = Frame {
        fin: buf[0] & 0x80 != 0,
        rsv: (buf[0] >> 4) & 0x7,
        opcode: buf[0] & 0x0f,
        payload,
    };
    Some((frame, at))
}

async fn server() -> RunningServer {
    RunningServer::start("127.0.0.1:0".parse().unwrap(), Config::default())
        .await
        .expect("start the server")
}

/// A subscriber socket past its `ready` message.
async fn subscriber(server: &RunningServer) -> Raw {
    let mut ws = Raw::open(server, "/topics/conformance/ws").await;
    ws.ready().await;
    ws
}

#[tokio::test]
async fn server_frames_are_never_masked_and_close_is_answered() {
    let server = server().await;
    let ep = Endpoint::parse(&server.url()).unwrap();
    for i in 0..3 {
        client::publish(&ep, "t", format!(r#"{{"i":{i}}}"#))
            .await
            .unwrap();
    }
    // `frame` checks the mask bit of every frame: ready, events, the error
    // reply, the pong and the close.
    let mut ws = Raw::open(&server, "/topics/t/ws?after=0").await;
    ws.ready().await;
    for i in 1..=3 {
        let event = ws.text().await;
        assert!(event.contains(&format!(r#""seq":{i}"#)), "{event}");
    }
    client::publish(&ep, "t", "\"live\"").await.unwrap();
    assert!(ws.text().await.contains(r#""data":"live""#));

    ws.send(true, TEXT, b"hello").await;
    assert!(ws.text().await.contains(r#""code":"unsupported""#));

    ws.send(true, PING, b"are you there").await;
    let pong = ws.frame().await.expect("a pong");
    assert_eq!(pong.opcode, PONG);
    assert_eq!(pong.payload, b"are you there");

    // A client-initiated close is answered with the same code, and then the
    // server closes the TCP connection.
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    ws.send(true, CLOSE, &close).await;
    let reply = ws.frame().await.expect("a close reply");
    assert_eq!(reply.close_code(), 1000);
    ws.expect_eof().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unmasked_client_frame_closes_1002() {
    let server = server().await;
    let mut ws = subscriber(&server).await;
    ws.send_raw(0x80 | TEXT, b"not masked", false).await;
    assert_eq!(ws.close_code().await, PROTOCOL_ERROR);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_text_closes_1007() {
    let server = server().await;
    let mut ws = subscriber(&server).await;
    ws.send(true, TEXT, b"caf\xc3").await;
    assert_eq!(ws.close_code().await, INVALID_DATA);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_in_a_fragment_closes_1007_before_the_message_ends() {
    let server = server().await;
    let mut ws = subscriber(&server).await;
    ws.send(false, TEXT, b"valid so far, ").await;
    ws.send(false, CONTINUATION, b"then \xff").await;
    // No final fragment: the server must fail fast on the bad fragment.
    assert_eq!(ws.close_code().await, INVALID_DATA);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_in_a_close_reason_closes_with_an_error() {
    let server = server().await;
    let mut ws = subscriber(&server).await;
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"\xff\xfe");
    ws.send(true, CLOSE, &close).await;
    let code = ws.close_code().await;
    assert!(
        code == INVALID_DATA || code == PROTOCOL_ERROR,
        "close code {code}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_opcodes_close_1002() {
    let server = server().await;
    // Reserved data opcodes 0x3-0x7 and control opcodes 0xB-0xF.
    for opcode in [0x3, 0x7, 0xb, 0xf] {
        let mut ws = subscriber(&server).await;
        ws.send(true, opcode, b"?").await;
        assert_eq!(ws.close_code().await, PROTOCOL_ERROR, "opcode {opcode:#x}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reserved_bits_close_1002() {
    let server = server().await;
    for rsv in [0x40, 0x20, 0x10, 0x70] {
        let mut ws = subscriber(&server).await;
        ws.send_raw(0x80 | rsv | TEXT, b"x", true).await;
        assert_eq!(ws.close_code().await, PROTOCOL_ERROR, "rsv {rsv:#x}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn fragmented_control_frame_closes_1002() {
    let server = server().await;
    let mut ws = subscriber(&server).await;
    ws.send(false, PING, b"part").await;
    ws.send(true, CONTINUATION, b"rest").await;
    assert_eq!(ws.close_code().await, PROTOCOL_ERROR);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn over_long_control_frame_closes_1002() {
    let server = server().await;
    let mut ws = subscriber(&server).await;
    ws.send(true, PING, &[b'p'; 126]).await;
    assert_eq!(ws.close_code().await, PROTOCOL_ERROR);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn continuation_without_a_start_closes_1002() {
    let server = server().await;
    let mut ws = subscriber(&server).await;
    ws.send(true, CONTINUATION, b"orphan").await;
    assert_eq!(ws.close_code().await, PROTOCOL_ERROR);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn over_size_message_closes_1009() {
    let server = server().await;
    let max = Config::default().ws_max_message;
    // One frame over the limit.
    let mut ws = subscriber(&server).await;
    ws.send(true, BINARY, &vec![0u8; max + 1]).await;
    assert_eq!(ws.close_code().await, TOO_BIG);
    // Fragments each under the limit that add up to more than it.
    let mut ws = subscriber(&server).await;
    let half = vec![b'a'; max / 2 + 1];
    ws.send(false, TEXT, &half).await;
    ws.send(true, CONTINUATION, &half).await;
    assert_eq!(ws.close_code().await, TOO_BIG);
    // A message of exactly the limit is fine (answered as unsupported).
    let mut ws = subscriber(&server).await;
    ws.send(true, TEXT, &vec![b'a'; max]).await;
    assert!(ws.text().await.contains(r#""code":"unsupported""#));
    // Gone before the drain, which would otherwise wait for its close reply.
    drop(ws);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn echo_is_off_by_default_and_echoes_when_on() {
    let server = server().await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut res = String::new();
    timeout(STEP, s.read_to_string(&mut res))
        .await
        .unwrap()
        .unwrap();
    assert!(res.starts_with("HTTP/1.1 404"), "{res}");
    server.shutdown().await.unwrap();

    let config = Config {
        echo: true,
        ..Config::default()
    };
    let server = RunningServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let mut ws = Raw::open(&server, "/echo").await;
    ws.send(false, TEXT, b"h\xc3").await;
    ws.send(true, CONTINUATION, b"\xa9llo").await;
    assert_eq!(ws.text().await, "h\u{e9}llo");
    ws.send(true, BINARY, &[0, 1, 2, 255]).await;
    let echoed = ws.frame().await.unwrap();
    assert_eq!(
        (echoed.opcode, &echoed.payload[..]),
        (BINARY, &[0, 1, 2, 255][..])
    );
    // The echo shares the subscriber's close-code mapping.
    ws.send(true, TEXT, b"\xff").await;
    assert_eq!(ws.close_code().await, INVALID_DATA);
    server.shutdown().await.unwrap();
}
