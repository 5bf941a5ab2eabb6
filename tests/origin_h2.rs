//! The origin and Host checks on HTTP/2, where a request names its host in
//! `:authority` and sends no `Host`: a same-origin WebSocket (extended
//! CONNECT) and publish are accepted, another origin is refused, and
//! `--allowed-host` judges `:authority` — with hyper's HTTP/2 client over
//! h2c against a real server. (Over TLS the server's own origin is
//! `https://`: src/origin.rs tests it, tests/browser/https-h2.test.mjs
//! shows it from Chromium.)

mod common;

use bytes::Bytes;
use common::*;
use feedgate::Config;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

type H2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// An h2c (prior knowledge) client connection to `addr`.
async fn h2c(addr: std::net::SocketAddr) -> H2 {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// An extended CONNECT for a WebSocket on `uri` (whose authority becomes
/// `:authority`) from `origin`: the status.
async fn ws_connect(c: &mut H2, uri: &str, origin: &str) -> StatusCode {
    let mut r = Request::builder()
        .method(Method::CONNECT)
        .uri(uri)
        .header("sec-websocket-version", "13")
        .header("origin", origin)
        .body(Full::new(Bytes::new()))
        .unwrap();
    r.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    c.send_request(r).await.unwrap().status()
}

/// A publish to `uri` from `origin`: the status.
async fn publish_from(c: &mut H2, uri: &str, origin: &str) -> StatusCode {
    let r = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("origin", origin)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"x\":1}")))
        .unwrap();
    c.send_request(r).await.unwrap().status()
}

#[tokio::test]
async fn same_origin_over_h2_is_the_authority_and_another_is_refused() {
    let s = start(Config::default()).await;
    let base = format!("http://{}", s.addr());
    let mut c = h2c(s.addr()).await;
    let ws = format!("{base}/topics/origin-h2/ws");
    assert_eq!(ws_connect(&mut c, &ws, &base).await, StatusCode::OK);
    assert_eq!(
        ws_connect(&mut c, &ws, "http://evil.example").await,
        StatusCode::FORBIDDEN
    );
    // The scheme counts: this server speaks http.
    let https = format!("https://{}", s.addr());
    assert_eq!(ws_connect(&mut c, &ws, &https).await, StatusCode::FORBIDDEN);
    let events = format!("{base}/topics/origin-h2/events");
    assert_eq!(
        publish_from(&mut c, &events, &base).await,
        StatusCode::CREATED
    );
    assert_eq!(
        publish_from(&mut c, &events, "http://evil.example").await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn allowed_host_judges_the_authority_over_h2() {
    let s = start(Config {
        allowed_hosts: vec!["127.0.0.1".into()],
        ..Config::default()
    })
    .await;
    let mut c = h2c(s.addr()).await;
    let get = |host: String| {
        Request::builder()
            .uri(format!("http://{host}/healthz"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let ok = c.send_request(get(s.addr().to_string())).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let port = s.addr().port();
    let other = c
        .send_request(get(format!("localhost:{port}")))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
}
