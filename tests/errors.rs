//! Every bad input gets its status and a JSON error body, and appends
//! nothing; limits refuse cleanly without hurting other clients.

mod common;

use common::*;
use feedgate::Config;
use tokio::net::TcpStream;

/// Asserts a JSON error with `status` and `code`.
fn assert_error(res: &RawResponse, status: u16, code: &str) {
    assert_eq!(
        res.status,
        status,
        "{:?}",
        String::from_utf8_lossy(&res.body)
    );
    assert_eq!(res.header("content-type"), Some("application/json"));
    let body = res.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// How many events `topic` holds, read back through a short poll.
async fn count(s: &feedgate::RunningServer, topic: &str) -> usize {
    let res = http(
        s.addr(),
        "GET",
        &format!("/topics/{topic}/poll?after=0"),
        &[],
        b"",
    )
    .await;
    res.json()["events"].as_array().unwrap().len()
}

#[tokio::test]
async fn bad_publishes_are_refused_and_append_nothing() {
    let config = Config {
        max_body: 64,
        ..Config::default()
    };
    let s = start(config).await;
    publish(&s, "p", "1").await;
    let cases: &[(&str, &[u8], u16, &str)] = &[
        ("/topics/p/events", b"", 400, "invalid_json"),
        ("/topics/p/events", b"{\"a\":", 400, "invalid_json"),
        ("/topics/p/events", b"1 2", 400, "invalid_json"),
        ("/topics/p/events", b"{} trailing", 400, "invalid_json"),
        ("/topics/p/events", b"\"\xff\xfe\"", 400, "invalid_json"),
        ("/topics/p/events", &[b'1'; 65], 413, "body_too_large"),
        ("/topics/bad%20topic/events", b"1", 400, "invalid_topic"),
        ("/topics/a!b/events", b"1", 400, "invalid_topic"),
    ];
    for (path, body, status, code) in cases {
        let res = http(s.addr(), "POST", path, &[], body).await;
        assert_error(&res, *status, code);
    }
    let long = "x".repeat(129);
    let res = http(
        s.addr(),
        "POST",
        &format!("/topics/{long}/events"),
        &[],
        b"1",
    )
    .await;
    assert_error(&res, 400, "invalid_topic");
    assert_eq!(count(&s, "p").await, 1, "nothing was appended");
    let m = scrape(s.addr()).await;
    assert_eq!(sample(&m, "feedgate_events_published_total"), 1.0);
}

#[tokio::test]
async fn an_over_size_body_is_refused_even_without_content_length() {
    let s = start(Config {
        max_body: 16,
        ..Config::default()
    })
    .await;
    let req = b"POST /topics/c/events HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n10\r\n[1,2,3,4,5,6,7,8\r\n6\r\n,9,10]\r\n0\r\n\r\n";
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut conn, req)
        .await
        .unwrap();
    let res = read_response(&mut conn).await;
    assert_error(&res, 413, "body_too_large");
    assert_eq!(count(&s, "c").await, 0);
}

#[tokio::test]
async fn bad_cursors_and_queries_are_400() {
    let s = start(Config::default()).await;
    for path in [
        "/topics/q/poll?after=-1",
        "/topics/q/poll?after=abc",
        "/topics/q/poll?after=1&epoch=xyz",
        "/topics/q/longpoll?after=1.5",
        "/topics/q/sse?after=zz:1",
        "/topics/q/ws?after=nope",
    ] {
        let headers: &[(&str, &str)] = if path.ends_with("/ws?after=nope") {
            &[
                ("upgrade", "websocket"),
                ("connection", "upgrade"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ]
        } else {
            &[]
        };
        let res = http(s.addr(), "GET", path, headers, b"").await;
        assert_error(&res, 400, "invalid_cursor");
    }
    let res = http(
        s.addr(),
        "GET",
        "/topics/q/sse",
        &[("last-event-id", "garbage")],
        b"",
    )
    .await;
    assert_error(&res, 400, "invalid_cursor");
    let res = http(s.addr(), "GET", "/topics/q/longpoll?timeout=soon", &[], b"").await;
    assert_error(&res, 400, "invalid_query");
}

#[tokio::test]
async fn if_none_match_as_the_cursor_must_be_a_poll_etag() {
    let s = start(Config::default()).await;
    publish(&s, "t", "1").await;
    let inm = |v: &'static str| [("if-none-match", v)];
    // Without `after`, the header is the cursor: a malformed one is 400.
    for bad in ["\"x\"", "\"1\"", "nonsense", "W/\"zz:1\""] {
        let res = http(s.addr(), "GET", "/topics/t/poll", &inm(bad), b"").await;
        assert_error(&res, 400, "invalid_cursor");
    }
    // `*` and lists are not ours to read: the poll answers from now.
    for other in ["*", "\"a\", \"b\""] {
        let res = http(s.addr(), "GET", "/topics/t/poll", &inm(other), b"").await;
        assert_eq!(res.status, 200, "{other}");
    }
    // With `after`, the cursor is `after`; the header only decides 304.
    let res = http(
        s.addr(),
        "GET",
        "/topics/t/poll?after=0",
        &inm("\"x\""),
        b"",
    )
    .await;
    assert_eq!(res.json()["events"][0]["seq"], 1);
}

#[tokio::test]
async fn an_empty_last_event_id_leaves_after_in_force() {
    let s = start(Config::default()).await;
    publish(&s, "t", "1").await;
    publish(&s, "t", "2").await;
    let mut conn = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let req = "GET /topics/t/sse?after=1 HTTP/1.1\r\nhost: x\r\nlast-event-id: \r\n\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut conn, req.as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"seq\":2") {
        let n = tokio::time::timeout(PATIENCE, tokio::io::AsyncReadExt::read(&mut conn, &mut buf))
            .await
            .expect("the stream delivers")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!text.contains("\"seq\":1,"), "after=1 stood: {text}");
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods() {
    let s = start(Config::default()).await;
    assert_error(
        &http(s.addr(), "GET", "/nope", &[], b"").await,
        404,
        "not_found",
    );
    assert_error(
        &http(s.addr(), "GET", "/topics/t/other", &[], b"").await,
        404,
        "not_found",
    );
    let res = http(s.addr(), "GET", "/topics/t/events", &[], b"").await;
    assert_error(&res, 405, "method_not_allowed");
    assert_eq!(res.header("allow"), Some("POST"));
    let res = http(s.addr(), "DELETE", "/topics/t/poll", &[], b"").await;
    assert_error(&res, 405, "method_not_allowed");
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
    let res = http(s.addr(), "POST", "/metrics", &[], b"").await;
    assert_error(&res, 405, "method_not_allowed");
    // Demo controls do not exist without --demo.
    assert_error(
        &http(s.addr(), "GET", "/demo/faults", &[], b"").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn bad_websocket_handshakes() {
    let s = start(Config::default()).await;
    let base = [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let mut v8 = base.to_vec();
    v8.push(("sec-websocket-version", "8"));
    let res = http(s.addr(), "GET", "/topics/t/ws", &v8, b"").await;
    assert_error(&res, 426, "unsupported_websocket_version");
    assert_eq!(res.header("sec-websocket-version"), Some("13"));

    let res = http(
        s.addr(),
        "GET",
        "/topics/t/ws",
        &[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "13"),
        ],
        b"",
    )
    .await;
    assert_error(&res, 400, "bad_handshake");

    let res = http(s.addr(), "GET", "/topics/t/ws", &[], b"").await;
    assert_error(&res, 400, "bad_handshake");
    let res = http(s.addr(), "GET", "/topics/a$b/ws", &v8, b"").await;
    assert_error(&res, 400, "invalid_topic");
}

#[tokio::test]
async fn the_topic_limit_refuses_new_topics_only() {
    let s = start(Config {
        max_topics: 2,
        ..Config::default()
    })
    .await;
    publish(&s, "one", "1").await;
    publish(&s, "two", "1").await;
    let res = http(s.addr(), "POST", "/topics/three/events", &[], b"1").await;
    assert_error(&res, 503, "overloaded");
    // Reading a topic is not creating one: an empty answer, not a 503.
    let res = http(s.addr(), "GET", "/topics/three/poll?after=0", &[], b"").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["events"], serde_json::json!([]));
    assert_eq!(
        publish(&s, "one", "2").await,
        2,
        "existing topics still work"
    );
    let m = scrape(s.addr()).await;
    assert_eq!(sample(&m, "feedgate_topics"), 2.0);
    let key = r#"feedgate_limit_rejections_total{limit="max_topics"}"#;
    assert_eq!(sample(&m, key), 1.0, "the refused publish is counted");
}

#[tokio::test]
async fn the_connection_limit_answers_503_and_spares_existing_clients() {
    let s = start(Config {
        max_connections: 2,
        ..Config::default()
    })
    .await;
    // Two keep-alive connections hold both slots.
    let mut a = TcpStream::connect(s.addr()).await.unwrap();
    let mut b = TcpStream::connect(s.addr()).await.unwrap();
    for conn in [&mut a, &mut b] {
        tokio::io::AsyncWriteExt::write_all(conn, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(conn).await.status, 200);
    }
    let reply = raw_exchange(s.addr(), b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 1"));
    assert!(text.contains(r#""code":"overloaded""#), "{text}");
    // The connections that got in keep working.
    tokio::io::AsyncWriteExt::write_all(&mut a, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut a).await.status, 200);
    // Freeing a slot lets the next client in.
    drop(b);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let reply = raw_exchange(
            s.addr(),
            b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        if reply.starts_with(b"HTTP/1.1 200") {
            let m = parse_metrics(&String::from_utf8_lossy(&reply));
            assert!(
                sample(
                    &m,
                    "feedgate_limit_rejections_total{limit=\"max_connections\"}"
                ) >= 1.0
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn an_over_size_body_is_drained_so_the_413_arrives_and_the_connection_lives_on() {
    let s = start(Config {
        max_body: 1024,
        ..Config::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    let body = vec![b'1'; 512 << 10];
    let head = format!(
        "POST /topics/d/events HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    // The whole upload goes through (a proxy streaming it would otherwise
    // see the connection reset mid-body and answer 502), then the 413.
    tokio::io::AsyncWriteExt::write_all(&mut conn, head.as_bytes())
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut conn, &body)
        .await
        .unwrap();
    assert_error(&read_response(&mut conn).await, 413, "body_too_large");
    // The same connection carries the next request.
    tokio::io::AsyncWriteExt::write_all(
        &mut conn,
        b"POST /topics/d/events HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\n7",
    )
    .await
    .unwrap();
    assert_eq!(read_response(&mut conn).await.status, 201);
    assert_eq!(count(&s, "d").await, 1);
}
