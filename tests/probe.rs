//! The path probe (`GET /probe/{transport}`) and client telemetry
//! (`POST /telemetry/switch`) against a real server on 127.0.0.1:0: what
//! each probe sends and when, that it creates nothing and needs no token,
//! its caps, rate limit and metrics, and the bounded labels of the
//! telemetry counter.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use feedgate::Config;
use feedgate::client::{self, SseEvent, SseParser};
use feedgate::wire::ByteCount;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A server that requires a publish token and subscriber JWTs: probes
/// and telemetry still need neither.
fn locked() -> Config {
    Config {
        publish_token: Some("secret".into()),
        jwt: Some(feedgate::auth::JwtKey::Secret(b"jwt-secret".to_vec())),
        ..Config::default()
    }
}

#[tokio::test]
async fn poll_probe_answers_what_the_server_saw_without_token_or_topic() {
    let s = start(locked()).await;
    let res = http(
        s.addr(),
        "GET",
        "/probe/poll?pad=100",
        &[("accept-encoding", "gzip"), ("x-forwarded-for", "1.2.3.4")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    let v = res.json();
    assert_eq!(v["probe"], "poll");
    assert_eq!(v["http"], "HTTP/1.1");
    assert_eq!(v["accept_encoding"], "gzip");
    assert_eq!(v["proxy_headers"], serde_json::json!(["x-forwarded-for"]));
    assert_eq!(v["pad"].as_str().unwrap().len(), 100);
    assert_eq!(v["sse_heartbeat_s"], 15.0);
    assert!(v["sent_us"].as_u64().unwrap() > 1_600_000_000_000_000);
    // The uncompressed body length, for a client to compare with what it got.
    assert_eq!(
        res.header("x-feedgate-probe-bytes"),
        Some(res.body.len().to_string().as_str())
    );
    // Nothing was created in the log.
    let m = scrape(s.addr()).await;
    assert_eq!(sample(&m, "feedgate_topics"), 0.0);
    assert_eq!(sample(&m, "feedgate_log_events"), 0.0);
    assert_eq!(
        sample(
            &m,
            "feedgate_requests_total{result=\"ok\",transport=\"poll\"}"
        ),
        1.0,
        "the probe counts as its transport's request"
    );
}

#[tokio::test]
async fn probe_parameters_are_capped_and_checked() {
    let s = start(Config::default()).await;
    let v = http(
        s.addr(),
        "GET",
        "/probe/poll?count=999&interval_ms=1&idle=99999&pad=1000000",
        &[],
        b"",
    )
    .await
    .json();
    assert_eq!(v["count"], 20);
    assert_eq!(v["interval_ms"], 50);
    assert_eq!(v["idle_s"], 300.0);
    assert_eq!(v["pad"].as_str().unwrap().len(), 4096);
    let bad = http(s.addr(), "GET", "/probe/poll?idle=soon", &[], b"").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "invalid_query");
    for path in ["/probe/publish", "/probe/", "/probe/sse/x"] {
        assert_eq!(
            http(s.addr(), "GET", path, &[], b"").await.status,
            404,
            "{path}"
        );
    }
    let post = http(s.addr(), "POST", "/probe/poll", &[], b"{}").await;
    assert_eq!(post.status, 405);
}

/// Reads SSE events from a probe until `end` (or the stream ends), with
/// each event's arrival time since `t0`.
async fn sse_events(s: &feedgate::RunningServer, query: &str) -> Vec<(f64, SseEvent)> {
    let t0 = Instant::now();
    let bytes = Arc::new(ByteCount::default());
    let mut body = client::open_event_stream(&endpoint(s), &bytes, &format!("/probe/sse?{query}"))
        .await
        .unwrap();
    let mut parser = SseParser::new(1 << 20);
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.unwrap().into_data() else {
                continue;
            };
            let mut evs = Vec::new();
            parser.feed(&data, &mut evs).unwrap();
            let at = t0.elapsed().as_secs_f64();
            out.extend(evs.into_iter().map(|e| (at, e)));
        }
    })
    .await
    .expect("the probe stream ends by itself");
    out
}

#[tokio::test]
async fn sse_probe_sends_timed_events_then_idles_then_ends() {
    let s = start(locked()).await;
    let evs = sse_events(&s, "count=3&interval_ms=100&idle=0.5&pad=10").await;
    let kinds: Vec<&str> = evs.iter().map(|(_, e)| e.event.as_str()).collect();
    assert_eq!(kinds, ["hello", "probe", "probe", "probe", "end"]);
    assert_eq!(evs[0].1.retry, Some(2000));
    let data: Vec<Value> = evs
        .iter()
        .map(|(_, e)| serde_json::from_str(&e.data).unwrap())
        .collect();
    for (k, d) in data[1..4].iter().enumerate() {
        assert_eq!(d["seq"], k as u64 + 1);
        assert_eq!(d["pad"].as_str().unwrap().len(), 10);
    }
    // 100 ms apart, then 0.5 s of silence before `end`.
    let sent = |i: usize| data[i]["sent_us"].as_u64().unwrap() as f64 / 1e6;
    assert!(
        (sent(2) - sent(1) - 0.1).abs() < 0.05,
        "{}",
        sent(2) - sent(1)
    );
    assert!(sent(4) - sent(3) >= 0.49, "idle {}", sent(4) - sent(3));
    assert!(evs[4].0 - evs[3].0 >= 0.45, "nothing sent while idle");
    assert_eq!(data[4]["ended"], "script");
    // `sent_bytes` counts the body bytes before each message.
    assert!(data[4]["sent_bytes"].as_u64().unwrap() > data[3]["sent_bytes"].as_u64().unwrap());
    let m = scrape(s.addr()).await;
    assert!(wire(&m, "sse", "out") > 0, "probe bytes count as sse");
    assert_eq!(
        sample(&m, "feedgate_events_delivered_total{transport=\"sse\"}"),
        0.0
    );
}

#[tokio::test]
async fn sse_probe_carries_the_real_streams_headers() {
    let s = start(Config::default()).await;
    let mut http = client::HttpConn::connect(&endpoint(&s), Arc::new(ByteCount::default()))
        .await
        .unwrap();
    let res = http
        .send(Method::GET, "/probe/sse?count=0", &[], None)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["x-accel-buffering"], "no");
    assert_eq!(h["cache-control"], "no-cache");
}

#[tokio::test]
async fn ws_probe_sends_frames_idles_and_closes_normally() {
    let s = start(locked()).await;
    let bytes = Arc::new(ByteCount::default());
    let mut ws = client::open_websocket(
        &endpoint(&s),
        &bytes,
        "/probe/ws?count=2&interval_ms=50&idle=0.3",
    )
    .await
    .unwrap();
    let mut kinds = Vec::new();
    let close = tokio::time::timeout(PATIENCE, async {
        while let Some(msg) = ws.next().await {
            match msg.unwrap() {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    kinds.push(v["type"].as_str().unwrap().to_owned());
                }
                Message::Close(f) => return f,
                _ => {}
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(kinds, ["hello", "probe", "probe", "end"]);
    assert_eq!(u16::from(close.unwrap().code), 1000);
}

#[tokio::test]
async fn ws_probe_without_upgrade_is_refused_like_a_subscription() {
    let s = start(Config::default()).await;
    let res = http(s.addr(), "GET", "/probe/ws", &[], b"").await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["error"]["code"], "bad_handshake");
}

#[tokio::test]
async fn longpoll_probe_holds_as_asked() {
    let s = start(Config::default()).await;
    let t0 = Instant::now();
    let res = http(s.addr(), "GET", "/probe/longpoll?hold=0.4", &[], b"").await;
    let took = t0.elapsed();
    assert_eq!(res.status, 200);
    let v = res.json();
    assert_eq!(v["probe"], "longpoll");
    assert_eq!(v["ended"], "hold");
    assert!(v["held_ms"].as_u64().unwrap() >= 400);
    assert!(took >= Duration::from_millis(400) && took < PATIENCE);
}

#[tokio::test]
async fn probes_are_rate_limited_per_client() {
    let s = start(Config::default()).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(http(s.addr(), "GET", "/probe/poll", &[], b"").await.status);
    }
    let limited = statuses.iter().filter(|&&st| st == 429).count();
    assert!(statuses[..30].iter().all(|&st| st == 200), "{statuses:?}");
    assert!(limited >= 5, "{statuses:?}");
    let m = scrape(s.addr()).await;
    assert!(sample(&m, "feedgate_limit_rejections_total{limit=\"probe_rate\"}") >= 5.0);
}

#[tokio::test]
async fn probes_at_once_per_client_are_bounded() {
    let s = start(Config::default()).await;
    // Eight held long polls take every slot one client has.
    let holds: Vec<_> = (0..8)
        .map(|_| {
            let addr = s.addr();
            tokio::spawn(async move { http(addr, "GET", "/probe/longpoll?hold=2", &[], b"").await })
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    let ninth = loop {
        let res = http(s.addr(), "GET", "/probe/poll", &[], b"").await;
        if res.status == 503 || Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ninth.status, 503);
    assert_eq!(ninth.json()["error"]["code"], "overloaded");
    for h in holds {
        assert_eq!(h.await.unwrap().status, 200);
    }
    // The slots are given back.
    assert_eq!(
        http(s.addr(), "GET", "/probe/poll", &[], b"").await.status,
        200
    );
}

async fn switch(s: &feedgate::RunningServer, body: &str) -> u16 {
    http(
        s.addr(),
        "POST",
        "/telemetry/switch",
        &[("content-type", "text/plain")],
        body.as_bytes(),
    )
    .await
    .status
}

#[tokio::test]
async fn telemetry_counts_switches_with_bounded_labels() {
    let s = start(locked()).await;
    assert_eq!(
        switch(
            &s,
            r#"{"from":"ws","to":"sse","reason":"cut","code":1006,"after_s":60.5}"#
        )
        .await,
        204
    );
    assert_eq!(
        switch(
            &s,
            r#"{"from":"ws","to":"sse","reason":"cut","after_s":59}"#
        )
        .await,
        204
    );
    assert_eq!(
        switch(
            &s,
            r#"{"from":"quic","to":"sse","reason":"the proxy ate it"}"#
        )
        .await,
        204
    );
    assert_eq!(switch(&s, "{}").await, 204);
    assert_eq!(switch(&s, "not json").await, 400);
    let big = format!(r#"{{"from":"ws","pad":"{}"}}"#, "x".repeat(2000));
    assert_eq!(switch(&s, &big).await, 413);
    let get = http(s.addr(), "GET", "/telemetry/switch", &[], b"").await;
    assert_eq!(get.status, 405);

    let m = scrape(s.addr()).await;
    let count = |from: &str, to: &str, reason: &str| {
        sample(
            &m,
            &format!(
                "feedgate_client_transport_switches_total{{from=\"{from}\",reason=\"{reason}\",to=\"{to}\"}}"
            ),
        )
    };
    assert_eq!(count("ws", "sse", "cut"), 2.0);
    assert_eq!(count("other", "sse", "other"), 1.0);
    assert_eq!(count("other", "other", "other"), 1.0);
    let series: Vec<_> = m
        .iter()
        .filter(|(k, _)| k.starts_with("feedgate_client_transport_switches_total{"))
        .collect();
    // Every combination of the bounded values exists (at 0 until
    // reported), and no label value was made up by a client.
    assert_eq!(
        series.len(),
        5 * 5 * 9,
        "no label value made up by a client"
    );
    assert_eq!(series.iter().filter(|(_, v)| **v > 0.0).count(), 3);
    assert_eq!(
        sample(
            &m,
            "feedgate_client_stream_cut_after_seconds_count{transport=\"ws\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &m,
            "feedgate_client_stream_cut_after_seconds_bucket{transport=\"ws\",le=\"60\"}"
        ),
        1.0
    );
}

/// Issue 20, case 9: every field is optional and any other value is
/// counted as `other` (or, for `code` and `after_s`, left out); only a body
/// that is not one JSON object is refused.
#[tokio::test]
async fn telemetry_takes_any_value_in_any_field() {
    let s = start(locked()).await;
    for odd in [
        r#"{"from":5}"#,
        r#"{"after_s":"60"}"#,
        r#"{"code":70000}"#,
        r#"{"from":null,"to":["ws"],"reason":{"r":1},"code":-1,"after_s":-3}"#,
        r#"{"from":"ws","to":"sse","reason":"cut","after_s":"7"}"#,
    ] {
        assert_eq!(switch(&s, odd).await, 204, "{odd}");
    }
    assert_eq!(switch(&s, "[]").await, 400, "not an object");
    assert_eq!(switch(&s, "5").await, 400, "not an object");
    let m = scrape(s.addr()).await;
    let other =
        "feedgate_client_transport_switches_total{from=\"other\",reason=\"other\",to=\"other\"}";
    assert_eq!(sample(&m, other), 4.0);
    let cut = "feedgate_client_transport_switches_total{from=\"ws\",reason=\"cut\",to=\"sse\"}";
    assert_eq!(sample(&m, cut), 1.0);
    // A cut without a numeric `after_s` observes no duration.
    let cut_after = "feedgate_client_stream_cut_after_seconds_count{transport=\"ws\"}";
    assert_eq!(sample(&m, cut_after), 0.0);
}

#[tokio::test]
async fn telemetry_is_rate_limited_and_origin_checked() {
    let s = start(Config::default()).await;
    let foreign = http(
        s.addr(),
        "POST",
        "/telemetry/switch",
        &[("origin", "http://evil.example")],
        br#"{"from":"ws","to":"sse","reason":"cut"}"#,
    )
    .await;
    assert_eq!(foreign.status, 403);
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(switch(&s, r#"{"from":"ws","to":"sse","reason":"refused"}"#).await);
    }
    assert!(statuses[..10].iter().all(|&st| st == 204), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let m = scrape(s.addr()).await;
    assert!(
        sample(
            &m,
            "feedgate_limit_rejections_total{limit=\"telemetry_rate\"}"
        ) >= 1.0
    );
}

/// A finished probe does not leave its keep-alive connection counted under
/// the probed transport: probes answer `Connection: close`.
#[tokio::test]
async fn a_finished_probe_leaves_no_connection_behind() {
    use tokio::io::AsyncWriteExt;
    let s = start(Config::default()).await;
    for (transport, path) in [
        ("poll", "/probe/poll"),
        ("longpoll", "/probe/longpoll?hold=0"),
        ("sse", "/probe/sse?count=1&idle=0"),
    ] {
        let mut conn = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        conn.write_all(req.as_bytes()).await.unwrap();
        let all = read_to_close(&mut conn).await;
        let head = String::from_utf8_lossy(&all).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(head.contains("connection: close"), "{path}: {head}");
        let key = format!("feedgate_connections{{transport=\"{transport}\"}}");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while sample(&scrape(s.addr()).await, &key) != 0.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key} stays above 0"
            );
            tokio::task::yield_now().await;
        }
    }
}
