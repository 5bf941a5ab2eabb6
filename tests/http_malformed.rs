//! Malformed HTTP on a raw `TcpStream`: each request is answered with a 4xx
//! and the server closes the connection (the test reads to EOF, sending no
//! `Connection: close` of its own), and the server stays healthy afterwards.

use std::time::Duration;

use feedgate::{Config, RunningServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Bound on each exchange: the answer and the close must come within it.
const STEP: Duration = Duration::from_secs(5);

/// What the server answered before closing.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` (possibly in several writes) on a fresh connection and
/// reads until the server closes it. Panics if it does not close within
/// [`STEP`]: a keep-alive connection left open after a malformed request
/// fails the test.
async fn exchange(server: &RunningServer, parts: &[&[u8]]) -> Answer {
    let mut s = timeout(STEP, TcpStream::connect(server.addr()))
        .await
        .expect("connect timed out")
        .expect("connect");
    for p in parts {
        // The server may answer and close before it has read everything
        // (an over-size head): a failed write is not the test's concern.
        if timeout(STEP, s.write_all(p))
            .await
            .expect("write timed out")
            .is_err()
        {
            break;
        }
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match timeout(STEP, s.read(&mut buf)).await {
            Err(_) => panic!(
                "the server left the connection open; got so far: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            // Closed with our bytes unread: what was sent before still counts.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Ok(Err(e)) => panic!("read: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {text:?}"));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Checks that the answer is a client error and that the server still
/// serves a new connection.
async fn assert_4xx_and_healthy(server: &RunningServer, answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{}", answer.head);
    let health = exchange(
        server,
        &[b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
    )
    .await;
    assert_eq!(health.status, 200, "unhealthy after a malformed request");
}

async fn server() -> RunningServer {
    RunningServer::start("127.0.0.1:0".parse().unwrap(), Config::default())
        .await
        .expect("start the server")
}

#[tokio::test]
async fn bad_request_lines() {
    let server = server().await;
    for line in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET\r\nHost: x\r\n\r\n",
        b"GET /he\x01lthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 a TLS hello\r\n\r\n",
    ] {
        let answer = exchange(&server, &[line]).await;
        assert_4xx_and_healthy(&server, &answer, 400).await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn huge_headers_are_431() {
    let server = server().await;
    // One header of 70 KiB, then another 70 KiB of many small ones: both
    // beyond the 64 KiB head limit.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 << 10)
    );
    let many = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-Many: 0123456789abcdef0123456789abcdef0123456789abcdef\r\n".repeat(1400)
    );
    for req in [big, many] {
        let answer = exchange(&server, &[req.as_bytes()]).await;
        assert_4xx_and_healthy(&server, &answer, 431).await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_content_length() {
    let server = server().await;
    for cl in [
        "Content-Length: abc\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 1, 2\r\n",
        "Content-Length: 2\r\nContent-Length: 3\r\n",
        "Content-Length: 99999999999999999999999\r\n",
        "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let req = format!("POST /topics/t/events HTTP/1.1\r\nHost: x\r\n{cl}\r\n{{}}");
        let answer = exchange(&server, &[req.as_bytes()]).await;
        assert_4xx_and_healthy(&server, &answer, 400).await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_chunked_bodies() {
    let server = server().await;
    for body in [
        &b"zz\r\n{}\r\n0\r\n\r\n"[..],                   // not a hex size
        b"2\r\n{}XX0\r\n\r\n",                           // no CRLF after the data
        b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n",        // size overflows
        b"2;a\nb\r\n{}\r\n0\r\n\r\n",                    // bare LF inside an extension
        b"1\r\n{\r\n1\r\n}\r\n0\r\nbad trailer\r\n\r\n", // trailer without a colon
        b"-2\r\n{}\r\n0\r\n\r\n",                        // negative size
    ] {
        let head =
            b"POST /topics/t/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let answer = exchange(&server, &[head, body]).await;
        assert!(
            (400..500).contains(&answer.status),
            "{} for {:?}",
            answer.head,
            String::from_utf8_lossy(body)
        );
        assert_4xx_and_healthy(&server, &answer, answer.status).await;
    }
    // Nothing was appended by any of them.
    let poll = exchange(
        &server,
        &[b"GET /topics/t/poll?after=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
    )
    .await;
    assert_eq!(poll.status, 200);
    assert!(poll.body.contains(r#""events":[]"#), "{}", poll.body);
    server.shutdown().await.unwrap();
}

fn upgrade(version: &str, key: Option<&str>) -> String {
    let key = key
        .map(|k| format!("Sec-WebSocket-Key: {k}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /topics/t/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         {key}Sec-WebSocket-Version: {version}\r\n\r\n"
    )
}

#[tokio::test]
async fn websocket_version_8_is_426_with_version_13() {
    let server = server().await;
    let req = upgrade("8", Some("dGhlIHNhbXBsZSBub25jZQ=="));
    let answer = exchange(&server, &[req.as_bytes()]).await;
    assert_eq!(answer.header("sec-websocket-version"), Some("13"));
    assert!(answer.body.contains("unsupported_websocket_version"));
    assert_4xx_and_healthy(&server, &answer, 426).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_without_a_valid_key_is_400() {
    let server = server().await;
    for key in [None, Some("short=="), Some("")] {
        let req = upgrade("13", key);
        let answer = exchange(&server, &[req.as_bytes()]).await;
        assert!(answer.body.contains("bad_handshake"), "{}", answer.body);
        assert_4xx_and_healthy(&server, &answer, 400).await;
    }
    server.shutdown().await.unwrap();
}
