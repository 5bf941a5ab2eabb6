//! Who gets in: publish tokens, subscriber JWTs (header and `?token=`, on
//! every transport), origin checks against cross-site WebSocket hijacking,
//! CORS, and the per-client publish rate limit.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use feedgate::Config;
use feedgate::auth::JwtKey;
use futures_util::StreamExt;
use jsonwebtoken::{EncodingKey, Header};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WS_HEADERS: [(&str, &str); 4] = [
    ("upgrade", "websocket"),
    ("connection", "Upgrade"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

fn code(res: &RawResponse) -> String {
    res.json()["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn publishing_needs_the_token() {
    let s = start(Config {
        publish_token: Some("pub-s3cret".into()),
        ..Config::default()
    })
    .await;
    let res = http(s.addr(), "POST", "/topics/t/events", &[], b"1").await;
    assert_eq!((res.status, code(&res).as_str()), (401, "unauthorized"));
    let res = http(
        s.addr(),
        "POST",
        "/topics/t/events",
        &[("authorization", "Bearer nope")],
        b"1",
    )
    .await;
    assert_eq!((res.status, code(&res).as_str()), (403, "forbidden"));
    let res = http(
        s.addr(),
        "POST",
        "/topics/t/events",
        &[("authorization", "Bearer pub-s3cret")],
        b"1",
    )
    .await;
    assert_eq!(res.status, 201);
    // Nothing but the authorized publish was appended.
    let res = http(s.addr(), "GET", "/topics/t/poll?after=0", &[], b"").await;
    assert_eq!(res.json()["events"].as_array().unwrap().len(), 1);
    // The token appears in no metric.
    let metrics = http(s.addr(), "GET", "/metrics", &[], b"").await;
    assert!(!String::from_utf8_lossy(&metrics.body).contains("s3cret"));
}

fn jwt(secret: &[u8], topics: &[&str], ttl_s: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    jsonwebtoken::encode(
        &Header::default(),
        &serde_json::json!({"exp": now + ttl_s, "topics": topics}),
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn subscribing_needs_a_jwt_granting_the_topic_on_every_transport() {
    let s = start(Config {
        jwt: Some(JwtKey::Secret(b"sub-key".to_vec())),
        ..Config::default()
    })
    .await;
    publish(&s, "user.1", "1").await;
    let good = jwt(b"sub-key", &["user.*"], 60);
    let other_topic = jwt(b"sub-key", &["admin"], 60);
    let wrong_key = jwt(b"not-the-key", &["*"], 60);
    let expired = jwt(b"sub-key", &["*"], -60);
    for action in ["poll", "longpoll?timeout=0", "sse", "ws"] {
        let (path, extra): (&str, &[(&str, &str)]) = match action {
            "ws" => ("ws", &WS_HEADERS),
            a => (a, &[]),
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = |token: &str| format!("/topics/user.1/{path}{sep}token={token}");
        let res = http(
            s.addr(),
            "GET",
            &format!("/topics/user.1/{path}"),
            extra,
            b"",
        )
        .await;
        assert_eq!(
            (res.status, code(&res).as_str()),
            (401, "unauthorized"),
            "{action}"
        );
        for bad in [&other_topic, &wrong_key, &expired] {
            let res = http(s.addr(), "GET", &url(bad), extra, b"").await;
            assert_eq!(
                (res.status, code(&res).as_str()),
                (403, "forbidden"),
                "{action}"
            );
            let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
            assert!(!message.contains(bad.as_str()), "the token is never echoed");
        }
        if action == "poll" || action == "longpoll?timeout=0" {
            let res = http(s.addr(), "GET", &url(&good), extra, b"").await;
            assert_eq!(res.status, 200, "{action}");
            let bearer = format!("Bearer {good}");
            let res = http(
                s.addr(),
                "GET",
                &format!("/topics/user.1/{path}"),
                &[("authorization", bearer.as_str())],
                b"",
            )
            .await;
            assert_eq!(res.status, 200, "{action} with the header");
        }
    }
    // The streams open with a good token.
    let reply = raw_head(
        s.addr(),
        &format!("GET /topics/user.1/sse?token={good} HTTP/1.1\r\nhost: x\r\n\r\n"),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/topics/user.1/ws?after=0&token={good}",
        s.addr()
    ))
    .await
    .unwrap();
    assert!(matches!(ws.next().await, Some(Ok(Message::Text(_)))));
}

/// Sends a request and returns what arrives first (the response head).
async fn raw_head(addr: std::net::SocketAddr, req: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_websocket_closes_when_its_token_expires() {
    let s = start(Config {
        jwt: Some(JwtKey::Secret(b"k".to_vec())),
        ..Config::default()
    })
    .await;
    let token = jwt(b"k", &["t"], 1);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/topics/t/ws?token={token}", s.addr()))
            .await
            .unwrap();
    let close = loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(f))) => break f.unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "token expired");
}

#[tokio::test]
async fn cross_site_websockets_and_publishes_are_refused() {
    let s = start(Config {
        allowed_origins: vec!["https://app.example.com".into()],
        ..Config::default()
    })
    .await;
    let host = s.addr().to_string();
    let own = format!("http://{host}");
    for (origin, allowed) in [
        ("https://evil.example", false),
        ("null", false),
        ("https://app.example.com", true),
        (own.as_str(), true),
    ] {
        // `common::http` sends `host: test`; same-origin needs the real host.
        let mut req = format!("ws://{host}/topics/t/ws")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        let result = tokio_tungstenite::connect_async(req).await;
        assert_eq!(result.is_ok(), allowed, "websocket from {origin}");
        if let Err(tokio_tungstenite::tungstenite::Error::Http(res)) = result {
            assert_eq!(res.status(), 403);
        }
        let res = http(
            s.addr(),
            "POST",
            "/topics/t/events",
            &[("origin", origin), ("host", &host)],
            b"1",
        )
        .await;
        assert_eq!(
            res.status == 201,
            allowed,
            "publish from {origin}: {} {:?}",
            res.status,
            String::from_utf8_lossy(&res.body)
        );
    }
    // No Origin at all (curl, servers): allowed.
    let res = http(s.addr(), "POST", "/topics/t/events", &[], b"1").await;
    assert_eq!(res.status, 201);
}

#[tokio::test]
async fn cors_follows_the_allowed_origins() {
    let s = start(Config {
        allowed_origins: vec!["https://app.example.com".into()],
        ..Config::default()
    })
    .await;
    let ok = [
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "POST"),
    ];
    let res = http(s.addr(), "OPTIONS", "/topics/t/events", &ok, b"").await;
    assert_eq!(res.status, 204);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        res.header("access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    assert!(
        res.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );

    let bad = [
        ("origin", "https://evil.example"),
        ("access-control-request-method", "POST"),
    ];
    let res = http(s.addr(), "OPTIONS", "/topics/t/events", &bad, b"").await;
    assert_eq!(res.status, 403);
    assert_eq!(res.header("access-control-allow-origin"), None);

    let res = http(
        s.addr(),
        "GET",
        "/topics/t/poll",
        &[("origin", "https://app.example.com")],
        b"",
    )
    .await;
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        res.header("access-control-expose-headers")
            .unwrap()
            .contains("ETag")
    );
    let res = http(
        s.addr(),
        "GET",
        "/topics/t/poll",
        &[("origin", "https://evil.example")],
        b"",
    )
    .await;
    assert_eq!(res.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn publish_rate_is_limited_per_client_with_retry_after() {
    let s = start(Config {
        publish_rate: 0.5,
        publish_burst: 2.0,
        ..Config::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            http(s.addr(), "POST", "/topics/r/events", &[], b"1")
                .await
                .status,
            201
        );
    }
    let res = http(s.addr(), "POST", "/topics/r/events", &[], b"1").await;
    assert_eq!((res.status, code(&res).as_str()), (429, "rate_limited"));
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Subscribers are not affected, and nothing extra was appended.
    let res = http(s.addr(), "GET", "/topics/r/poll?after=0", &[], b"").await;
    assert_eq!(res.json()["events"].as_array().unwrap().len(), 2);
    let m = scrape(s.addr()).await;
    assert_eq!(
        sample(
            &m,
            "feedgate_limit_rejections_total{limit=\"publish_rate\"}"
        ),
        1.0
    );
}

fn signed(secret: &[u8], claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Issue 16.4: `exp` ≥ 2^63 overflowed `UNIX_EPOCH + exp` and panicked the
/// request (the client saw the connection close). It is clamped now: the
/// token is good, the request served.
#[tokio::test]
async fn a_token_with_a_huge_exp_is_served_not_a_panic() {
    let s = start(Config {
        jwt: Some(JwtKey::Secret(b"k".to_vec())),
        ..Config::default()
    })
    .await;
    publish(&s, "t", "1").await;
    for exp in [1u64 << 63, u64::MAX] {
        let token = signed(b"k", serde_json::json!({"exp": exp, "topics": ["t"]}));
        let res = http(
            s.addr(),
            "GET",
            &format!("/topics/t/poll?after=0&token={token}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(res.status, 200, "exp = {exp}");
        let head = raw_head(
            s.addr(),
            &format!("GET /topics/t/sse?after=0&token={token} HTTP/1.1\r\nhost: x\r\n\r\n"),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let (mut ws, _) = tokio_tungstenite::connect_async(format!(
            "ws://{}/topics/t/ws?after=0&token={token}",
            s.addr()
        ))
        .await
        .unwrap();
        assert!(matches!(ws.next().await, Some(Ok(Message::Text(_)))));
    }
}

/// Issue 16.5 (`nbf` in the future beyond the 5 s leeway) and 16.11 (an
/// `exp` inside the leeway, which was accepted and then ended the stream at
/// once, a reconnect loop): both are refused at the door with 403.
#[tokio::test]
async fn tokens_not_yet_valid_or_already_expired_are_refused_403() {
    let s = start(Config {
        jwt: Some(JwtKey::Secret(b"k".to_vec())),
        ..Config::default()
    })
    .await;
    let immature = signed(
        b"k",
        serde_json::json!({"exp": now_s() + 600, "nbf": now_s() + 60, "topics": ["t"]}),
    );
    let in_leeway = signed(
        b"k",
        serde_json::json!({"exp": now_s() - 2, "topics": ["t"]}),
    );
    for (token, why) in [(&immature, "not valid yet"), (&in_leeway, "expired")] {
        for path in ["poll", "sse"] {
            let res = http(
                s.addr(),
                "GET",
                &format!("/topics/t/{path}?token={token}"),
                &[],
                b"",
            )
            .await;
            assert_eq!(
                (res.status, code(&res).as_str()),
                (403, "forbidden"),
                "{why} on {path}"
            );
            let message = res.json()["error"]["message"].as_str().unwrap().to_owned();
            assert!(message.contains(why), "{message}");
        }
    }
    // Within the leeway, a token about to become valid is accepted.
    let nearly = signed(
        b"k",
        serde_json::json!({"exp": now_s() + 600, "nbf": now_s() + 2, "topics": ["t"]}),
    );
    let res = http(
        s.addr(),
        "GET",
        &format!("/topics/t/poll?token={nearly}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
}

/// Issue 16.6: the server speaks http, so an `https://` (or any other
/// scheme's) origin naming its host is another origin, not its own. It was
/// treated as same-origin for WebSocket upgrades and publishes.
#[tokio::test]
async fn other_schemes_on_the_servers_host_are_not_its_origin() {
    let s = start(Config::default()).await;
    let host = s.addr().to_string();
    for origin in [format!("https://{host}"), format!("ftp://{host}")] {
        let mut req = format!("ws://{host}/topics/t/ws")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status(), 403, "websocket from {origin}")
            }
            other => panic!("websocket from {origin}: {:?}", other.map(|_| ())),
        }
        let res = http(
            s.addr(),
            "POST",
            "/topics/t/events",
            &[("origin", &origin), ("host", &host)],
            b"1",
        )
        .await;
        assert_eq!(
            (res.status, code(&res).as_str()),
            (403, "forbidden"),
            "{origin}"
        );
    }
    // Listed (a TLS proxy in front), the https origin is allowed.
    let proxied = start(Config {
        allowed_origins: vec!["https://feeds.example".into()],
        ..Config::default()
    })
    .await;
    let res = http(
        proxied.addr(),
        "POST",
        "/topics/t/events",
        &[
            ("origin", "https://feeds.example"),
            ("host", "feeds.example"),
        ],
        b"1",
    )
    .await;
    assert_eq!(res.status, 201);
}

/// Issue 16.6: DNS rebinding. A page on `evil.example`, whose name now
/// resolves to this server, sends `Host: evil.example` and
/// `Origin: http://evil.example` — same-origin by construction. With
/// `--allowed-host` every request for another `Host` is refused 403 before
/// routing (reads too), and the listed hosts are served.
#[tokio::test]
async fn allowed_hosts_refuse_a_dns_rebound_page() {
    let s = start(Config {
        // No port: this host on any port (the test's port is not known yet).
        allowed_hosts: vec!["127.0.0.1".into(), "feeds.example:443".into()],
        ..Config::default()
    })
    .await;
    let evil = [("host", "evil.example"), ("origin", "http://evil.example")];
    for (method, path) in [
        ("POST", "/topics/t/events"),
        ("GET", "/topics/t/poll?after=0"),
        ("GET", "/demo/settings"),
        ("OPTIONS", "/topics/t/events"),
    ] {
        let res = http(s.addr(), method, path, &evil, b"1").await;
        assert_eq!(
            (res.status, code(&res).as_str()),
            (403, "forbidden"),
            "{method} {path}"
        );
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--allowed-host")
        );
    }
    let mut upgrade = WS_HEADERS.to_vec();
    upgrade.extend(evil);
    let res = http(s.addr(), "GET", "/topics/t/ws", &upgrade, b"").await;
    assert_eq!(res.status, 403);
    assert_eq!(res.header("connection"), Some("close"));
    // A wrong port of a listed host, or no Host at all, is refused too.
    let res = http(
        s.addr(),
        "GET",
        "/healthz",
        &[("host", "feeds.example:8443")],
        b"",
    )
    .await;
    assert_eq!(res.status, 403);
    let reply = raw_exchange(s.addr(), b"GET /healthz HTTP/1.0\r\n\r\n").await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.") && reply[8..].starts_with(" 403"),
        "{reply}"
    );
    // Nothing was published.
    let host = s.addr().to_string();
    let res = http(
        s.addr(),
        "GET",
        "/topics/t/poll?after=0",
        &[("host", &host)],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["events"], serde_json::json!([]));
    // The listed hosts are served, same-origin pages included.
    let own = format!("http://{host}");
    let res = http(
        s.addr(),
        "POST",
        "/topics/t/events",
        &[("host", &host), ("origin", &own)],
        b"1",
    )
    .await;
    assert_eq!(res.status, 201);
    let res = http(
        s.addr(),
        "GET",
        "/healthz",
        &[("host", "FEEDS.example:443")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    let res = http(s.addr(), "GET", "/metrics", &[("host", &host)], b"").await;
    let m = parse_metrics(&String::from_utf8(res.body).unwrap());
    let refused = "feedgate_requests_total{result=\"error\",transport=\"other\"}";
    assert_eq!(sample(&m, refused), 7.0);
}

/// Issue 20, case 1: `/ws` without `topics=` (how FeedgateSocket starts
/// when created empty) once upgraded with no token at all, and a socket
/// that subscribed by message kept receiving after its token expired.
#[tokio::test]
async fn a_websocket_that_subscribes_by_message_needs_a_token_and_ends_with_it() {
    let s = start(Config {
        jwt: Some(JwtKey::Secret(b"k".to_vec())),
        ..Config::default()
    })
    .await;
    let res = http(s.addr(), "GET", "/ws", &WS_HEADERS, b"").await;
    assert_eq!((res.status, code(&res).as_str()), (401, "unauthorized"));
    let forged = jwt(b"not-k", &["news"], 60);
    let res = http(
        s.addr(),
        "GET",
        &format!("/ws?token={forged}"),
        &WS_HEADERS,
        b"",
    )
    .await;
    assert_eq!((res.status, code(&res).as_str()), (403, "forbidden"));

    let token = jwt(b"k", &["news"], 2);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={token}", s.addr()))
            .await
            .unwrap();
    use futures_util::SinkExt;
    ws.send(Message::text(
        r#"{"type":"subscribe","topic":"news","after":"0"}"#,
    ))
    .await
    .unwrap();
    let mut subscribed = false;
    let close = loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(f))) => break f.unwrap(),
            Some(Ok(Message::Text(t))) if t.contains(r#""type":"subscribed""#) => {
                subscribed = true;
                publish(&s, "news", "1").await;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert!(subscribed, "the subscribe was answered");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "token expired");
}
