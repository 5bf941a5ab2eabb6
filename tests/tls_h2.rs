//! HTTPS and HTTP/2 end to end, with real clients (tokio-rustls, hyper's
//! HTTP/2 client, tokio-tungstenite over an extended CONNECT stream):
//! every transport over h2c, HTTP/1.1 over TLS and HTTP/2 over TLS, and
//! the wire counters against what the client's own socket carried — to
//! the byte, ciphertext and handshakes included.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use feedgate::Config;
use feedgate::tls::TlsSource;
use feedgate::wire::{ByteCount, CountingIo};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// A certificate for localhost and 127.0.0.1, as PEM files.
struct Pki {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let dir = std::env::temp_dir().join(format!("feedgate-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        Pki {
            dir,
            cert,
            key,
            der: made.cert.der().clone(),
        }
    }

    fn config(&self) -> Config {
        Config {
            tls: Some(TlsSource::Files {
                cert: self.cert.clone(),
                key: self.key.clone(),
            }),
            ..Config::default()
        }
    }

    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let mut c = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(c))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Counted = CountingIo<TcpStream, Arc<ByteCount>>;

/// A socket to `addr` whose bytes the client counts itself.
async fn counted(addr: SocketAddr) -> (Counted, Arc<ByteCount>) {
    let count = Arc::new(ByteCount::default());
    let s = TcpStream::connect(addr).await.unwrap();
    (CountingIo::new(s, count.clone()), count)
}

/// A TLS connection offering `alpn`; what it negotiated.
async fn tls(
    addr: SocketAddr,
    pki: &Pki,
    alpn: &[&[u8]],
) -> (
    tokio_rustls::client::TlsStream<Counted>,
    Arc<ByteCount>,
    Vec<u8>,
) {
    let (io, count) = counted(addr).await;
    let name = ServerName::try_from("localhost").unwrap();
    let s = pki.connector(alpn).connect(name, io).await.unwrap();
    let alpn = s.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
    (s, count, alpn)
}

type H2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// An HTTP/2 client on `io`.
async fn h2<T>(io: T) -> H2
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    send
}

/// An HTTP/1.1 client on `io` (upgrades allowed).
/// A client of either protocol, kept open until its counts are compared
/// (held, never read).
#[allow(dead_code)]
enum Client {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(H2),
}

/// GET `path` over a new TLS connection offering `alpn` (which the server
/// must choose): the response, the socket's count, and the client.
async fn tls_get(
    addr: SocketAddr,
    pki: &Pki,
    alpn: &[u8],
    path: &str,
) -> (hyper::Response<Incoming>, Arc<ByteCount>, Client) {
    let (io, count, got) = tls(addr, pki, &[alpn]).await;
    assert_eq!(got, alpn);
    let (resp, client) = if alpn == b"h2" {
        let mut c = h2(io).await;
        let r = c.send_request(req(Method::GET, path, "")).await;
        (r, Client::H2(c))
    } else {
        let mut c = h1(io).await;
        let uri = format!("https://localhost{path}");
        let r = c.send_request(req(Method::GET, &uri, "")).await;
        (r, Client::H1(c))
    };
    (resp.unwrap(), count, client)
}

async fn h1<T>(io: T) -> hyper::client::conn::http1::SendRequest<Full<Bytes>>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    send
}

fn req(method: Method, uri: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// A whole answer's status and body.
async fn send<B>(resp: hyper::Response<B>) -> (StatusCode, String)
where
    B: hyper::body::Body,
    B::Error: std::fmt::Debug,
{
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The metrics, scraped over TLS (HTTP/1.1) when `pki` is given.
async fn scrape_any(addr: SocketAddr, pki: Option<&Pki>) -> std::collections::HashMap<String, f64> {
    let Some(pki) = pki else {
        return scrape(addr).await;
    };
    let (io, _, _) = tls(addr, pki, &[b"http/1.1"]).await;
    let mut c = h1(io).await;
    let r = c
        .send_request(req(Method::GET, "https://localhost/metrics", ""))
        .await
        .unwrap();
    let (_, text) = send(r).await;
    parse_metrics(&text)
}

/// Wire bytes of `transport` on a link, in and out.
fn wire_on(m: &std::collections::HashMap<String, f64>, t: &str, h2: bool, tls: bool) -> (u64, u64) {
    let key = |dir: &str| {
        format!(
            "feedgate_wire_bytes_total{{direction=\"{dir}\",protocol=\"{}\",tls=\"{tls}\",transport=\"{t}\"}}",
            if h2 { "h2" } else { "h1" }
        )
    };
    (sample(m, &key("in")) as u64, sample(m, &key("out")) as u64)
}

/// Every subscriber transport's bytes on a link, summed.
fn link_total(m: &std::collections::HashMap<String, f64>, h2: bool, tls: bool) -> (u64, u64) {
    ["poll", "longpoll", "sse", "ws", "publish"]
        .iter()
        .map(|t| wire_on(m, t, h2, tls))
        .fold((0, 0), |(a, b), (i, o)| (a + i, b + o))
}

/// Waits until the counters of `t` on a link moved by exactly `want` from
/// `before` (the server counts a write just after the syscall returns).
async fn settle_to(
    addr: SocketAddr,
    pki: Option<&Pki>,
    pick: impl Fn(&std::collections::HashMap<String, f64>) -> (u64, u64),
    before: (u64, u64),
    want: (u64, u64),
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = pick(&scrape_any(addr, pki).await);
        let moved = (now.0 - before.0, now.1 - before.1);
        if moved == want {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let m = scrape_any(addr, pki).await;
            let mut keys: Vec<_> = m
                .iter()
                .filter(|(k, v)| {
                    k.starts_with("feedgate_wire_bytes_total{") && k.contains("tls=") && **v > 0.0
                })
                .collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            panic!(
                "server counted {moved:?} (now {now:?}, before {before:?}), the client's socket {want:?}; {keys:#?}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Reads an SSE body until `n` more events (blocks with `data:` that are
/// not named control events) arrived.
async fn sse_events<B>(body: &mut B, n: usize) -> Vec<String>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut text = String::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let events: Vec<String> = text
                .split("\n\n")
                .filter(|b| !b.contains("event:") && b.contains("data: "))
                .map(|b| b.to_owned())
                .collect();
            if events.len() >= n {
                return events;
            }
            let frame = body.frame().await.expect("more").unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
    })
    .await
    .expect("events in time")
}

/// A WebSocket over an HTTP/2 extended CONNECT stream (RFC 8441).
async fn ws_over_h2(
    c: &mut H2,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<TokioIo<hyper::upgrade::Upgraded>> {
    let mut r = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("https://localhost{path}"))
        .header("sec-websocket-version", "13")
        .body(Full::new(Bytes::new()))
        .unwrap();
    r.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let resp = c.send_request(r).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "extended CONNECT answered");
    let up = hyper::upgrade::on(resp).await.unwrap();
    tokio_tungstenite::WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Client, None).await
}

/// Every transport on one HTTP/2 connection at once (TLS when `pki`):
/// publish, short poll, long poll, SSE and a WebSocket as streams; each
/// gets its events; then the connection's socket bytes, both ways, equal
/// the server's counters on the link, summed over transports.
async fn every_transport_on_one_h2_connection(pki: Option<&Pki>) {
    let s = start(pki.map_or_else(Config::default, Pki::config)).await;
    let addr = s.addr();
    let tls_on = pki.is_some();
    let before = link_total(&scrape_any(addr, pki).await, true, tls_on);
    let (mut c, count) = match pki {
        Some(pki) => {
            let (io, count, alpn) = tls(addr, pki, &[b"h2", b"http/1.1"]).await;
            assert_eq!(alpn, b"h2", "ALPN chose HTTP/2");
            (h2(io).await, count)
        }
        None => {
            let (io, count) = counted(addr).await;
            (h2(io).await, count)
        }
    };
    for i in 1..=3 {
        let r = c
            .send_request(req(
                Method::POST,
                "/topics/t/events",
                &format!(r#"{{"n":{i}}}"#),
            ))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        send(r).await;
    }
    // Four long-lived streams at once on the one connection.
    let sse = c
        .send_request(req(Method::GET, "/topics/t/sse?after=0", ""))
        .await
        .unwrap();
    assert_eq!(
        sse.headers()["content-type"],
        "text/event-stream",
        "an SSE stream over HTTP/2"
    );
    let mut sse_body = sse.into_body();
    let mut ws = ws_over_h2(&mut c, "/topics/t/ws?after=0").await;
    let long = c.send_request(req(
        Method::GET,
        "/topics/t/longpoll?after=3&timeout=10",
        "",
    ));
    let long = tokio::spawn(long);
    let (status, body) = send(
        c.send_request(req(Method::GET, "/poll?topics=t@0", ""))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["events"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(sse_events(&mut sse_body, 3).await.len(), 3);
    let mut ws_events = 0;
    while ws_events < 3 {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame")
        {
            Some(Ok(Message::Text(t))) if t.contains("\"seq\"") => ws_events += 1,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    // A fourth event answers the held long poll and reaches the streams.
    let r = c
        .send_request(req(Method::POST, "/topics/t/events", r#"{"n":4}"#))
        .await
        .unwrap();
    send(r).await;
    let (status, body) = send(long.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#""seq":4"#), "{body}");
    assert!(sse_events(&mut sse_body, 1).await[0].contains(r#""seq":4"#));
    let mut seen = 3;
    while seen < 4 {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame")
        {
            Some(Ok(Message::Text(t))) if t.contains("\"seq\"") => seen += 1,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    // Everything asked is answered and read: what the socket carried so
    // far, both ways, is what the server counted on this link. (Closing
    // first would race: bytes one side writes as the other goes away are
    // on the wire but never read.)
    let want = (count.written(), count.read());
    settle_to(addr, pki, |m| link_total(m, true, tls_on), before, want).await;
    drop((ws, sse_body, c));
    let m = scrape_any(addr, pki).await;
    for t in ["poll", "longpoll", "sse", "ws", "publish"] {
        let (i, o) = wire_on(&m, t, true, tls_on);
        assert!(i > 0 && o > 0, "{t} has its share: {i} in, {o} out");
    }
}

#[tokio::test]
async fn every_transport_over_h2c_is_counted_to_the_byte() {
    every_transport_on_one_h2_connection(None).await;
}

#[tokio::test]
async fn every_transport_over_tls_h2_is_counted_to_the_byte() {
    let pki = Pki::new("h2-all");
    every_transport_on_one_h2_connection(Some(&pki)).await;
}

/// One transport per TLS connection, HTTP/1.1 and HTTP/2: everything the
/// socket carried — handshake, records, frames — is that transport's.
#[tokio::test]
async fn a_tls_connection_of_one_transport_is_that_transports_exactly() {
    let pki = Pki::new("one");
    let s = start(pki.config()).await;
    let addr = s.addr();
    publish_tls(addr, &pki).await;
    for (alpn, h2_on) in [(&b"http/1.1"[..], false), (&b"h2"[..], true)] {
        // Short poll.
        let before = wire_on(&scrape_any(addr, Some(&pki)).await, "poll", h2_on, true);
        // The client stays open until the counts are compared: see above.
        let (r, count, client) = tls_get(addr, &pki, alpn, "/topics/t/poll?after=0").await;
        let (status, body) = send(r).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let want = (count.written(), count.read());
        settle_to(
            addr,
            Some(&pki),
            |m| wire_on(m, "poll", h2_on, true),
            before,
            want,
        )
        .await;
        drop(client);
        // SSE: a stream that stays open, counted as it goes.
        let before = wire_on(&scrape_any(addr, Some(&pki)).await, "sse", h2_on, true);
        let (resp, count, client) = tls_get(addr, &pki, alpn, "/topics/t/sse?after=0").await;
        let mut body = resp.into_body();
        sse_events(&mut body, 1).await;
        let want = (count.written(), count.read());
        settle_to(
            addr,
            Some(&pki),
            |m| wire_on(m, "sse", h2_on, true),
            before,
            want,
        )
        .await;
        drop((body, client));
    }
}

async fn publish_tls(addr: SocketAddr, pki: &Pki) {
    let (io, _, _) = tls(addr, pki, &[b"http/1.1"]).await;
    let mut c = h1(io).await;
    let r = c
        .send_request(req(
            Method::POST,
            "https://localhost/topics/t/events",
            r#"{"n":1}"#,
        ))
        .await
        .unwrap();
    assert_eq!(send(r).await.0, StatusCode::CREATED);
}

/// HTTP/1.1 over TLS: a WebSocket upgraded inside TLS, and its bytes.
#[tokio::test]
async fn a_websocket_over_tls_http1_gets_its_events() {
    let pki = Pki::new("ws1");
    let s = start(pki.config()).await;
    publish_tls(s.addr(), &pki).await;
    let (io, _, alpn) = tls(s.addr(), &pki, &[b"http/1.1"]).await;
    assert_eq!(alpn, b"http/1.1");
    let (mut ws, resp) = tokio_tungstenite::client_async("wss://localhost/topics/t/ws?after=0", io)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame")
        {
            Some(Ok(Message::Text(t))) if t.contains("\"seq\":1") => break,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let m = scrape_any(s.addr(), Some(&pki)).await;
    assert!(wire_on(&m, "ws", false, true).1 > 0);
    let conns = sample(
        &m,
        "feedgate_connections{protocol=\"h1\",tls=\"true\",transport=\"ws\"}",
    );
    assert_eq!(conns, 1.0, "the socket counted under ws, h1, TLS");
}

/// `--http2 false`: ALPN offers only HTTP/1.1, and a cleartext HTTP/2
/// preface is not HTTP/2.
#[tokio::test]
async fn http2_can_be_turned_off() {
    let pki = Pki::new("off");
    let s = start(Config {
        http2: false,
        ..pki.config()
    })
    .await;
    let (_, _, alpn) = tls(s.addr(), &pki, &[b"h2", b"http/1.1"]).await;
    assert_eq!(alpn, b"http/1.1");
    let clear = start(Config {
        http2: false,
        ..Config::default()
    })
    .await;
    let (io, _) = counted(clear.addr()).await;
    let (mut send_req, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(io),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let r = send_req
        .send_request(Request::get("/healthz").body(Empty::new()).unwrap())
        .await;
    assert!(r.is_err(), "an HTTP/1.1-only server does not speak h2c");
    // The same server answers HTTP/1.1.
    assert_eq!(
        http(clear.addr(), "GET", "/healthz", &[], b"").await.status,
        200
    );
}

/// Every series exists at 0 from the start on every link.
#[tokio::test]
async fn every_link_is_exported_from_the_start() {
    let s = start(Config::default()).await;
    let m = scrape(s.addr()).await;
    for (p, tls) in [
        ("h1", "false"),
        ("h2", "false"),
        ("h1", "true"),
        ("h2", "true"),
    ] {
        for t in ["poll", "longpoll", "sse", "ws"] {
            for family in [
                "feedgate_payload_bytes_total",
                "feedgate_events_delivered_total",
                "feedgate_delivery_latency_seconds_count",
                "feedgate_connections",
            ] {
                let key = format!("{family}{{protocol=\"{p}\",tls=\"{tls}\",transport=\"{t}\"}}");
                assert_eq!(m.get(&key), Some(&0.0), "{key}");
            }
            let key = format!(
                "feedgate_wire_bytes_total{{direction=\"out\",protocol=\"{p}\",tls=\"{tls}\",transport=\"{t}\"}}"
            );
            assert_eq!(m.get(&key), Some(&0.0), "{key}");
        }
    }
}

/// `feedgate serve` with a bad pair refuses to start, naming the flag.
#[test]
fn a_bad_certificate_pair_refuses_to_start_naming_the_flag() {
    let pki = Pki::new("bad");
    let other = Pki::new("bad2");
    let missing = pki.dir.join("nope.pem");
    let cases = [
        (missing.clone(), pki.key.clone(), "--tls-cert"),
        (pki.cert.clone(), missing, "--tls-key"),
        (pki.cert.clone(), other.key.clone(), "does not match"),
    ];
    for (cert, key, says) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_feedgate"))
            .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{says}: started anyway");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{says}: {err}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_feedgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&pki.cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

/// SHA-256 fingerprint of what a server presents to a new handshake.
async fn presented(addr: SocketAddr) -> String {
    use sha2::Digest;
    #[derive(Debug)]
    struct Any;
    impl rustls::client::danger::ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            #[allow(deprecated)]
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let c = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any))
        .with_no_client_auth();
    let s = TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(c))
        .connect(ServerName::try_from("localhost").unwrap(), s)
        .await
        .unwrap();
    let cert = &tls.get_ref().1.peer_certificates().unwrap()[0];
    sha2::Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// SIGHUP re-reads the pair: new handshakes get the new certificate, an
/// open connection keeps going; a bad new pair is refused and the old one
/// kept.
#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let first = Pki::new("hup1");
    let second = Pki::new("hup2");
    // The server reads the files of `first`'s directory throughout.
    let (mut child, url) = spawn_binary(&[
        "--tls-cert",
        first.cert.to_str().unwrap(),
        "--tls-key",
        first.key.to_str().unwrap(),
    ]);
    assert!(url.starts_with("https://"), "{url}");
    let addr: SocketAddr = url.trim_start_matches("https://").parse().unwrap();
    let fp1 = presented(addr).await;
    // An open HTTP/2 connection across the reload.
    let (io, _, _) = tls(addr, &first, &[b"h2"]).await;
    let mut open = h2(io).await;
    let hup = || {
        std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap()
    };
    // A half-written pair (the new certificate, the old key): refused.
    std::fs::copy(&second.cert, &first.cert).unwrap();
    assert!(hup().success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(presented(addr).await, fp1, "the old pair stays in use");
    std::fs::copy(&second.key, &first.key).unwrap();
    assert!(hup().success());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let fp2 = loop {
        let now = presented(addr).await;
        if now != fp1 {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_ne!(fp1, fp2);
    let (status, _) = send(
        open.send_request(req(Method::GET, "/healthz", ""))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the connection opened before still serves"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `--tls-self-signed` serves HTTPS at once and prints the certificate's
/// fingerprint.
#[test]
fn a_self_signed_server_prints_its_fingerprint() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_feedgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-self-signed"])
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut fingerprint = None;
    let mut https = false;
    for line in lines.take(20) {
        let line = line.unwrap();
        https |= line.contains("open https://");
        if let Some(i) = line.find("fingerprint ") {
            fingerprint = line[i + 12..].split_whitespace().next().map(str::to_owned);
        }
        if https && fingerprint.is_some() {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let f = fingerprint.expect("a fingerprint line");
    assert_eq!(f.split(':').count(), 32, "{f}");
    assert!(https);
}
