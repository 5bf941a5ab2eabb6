//! `encoding=lean` on every subscriber transport, single and multiplexed:
//! the exact bytes docs/protocol.md gives, and the resume guarantees kept
//! (cursor, epoch, gap, reset) although events carry no seq.

mod common;

use common::*;
use feedgate::Config;
use feedgate::log::Retention;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

async fn ws_texts(url: String, n: usize) -> Vec<String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            out.push(t.to_string());
        }
    }
    out
}

fn ws_url(s: &feedgate::RunningServer, path: &str) -> String {
    format!("ws://{}{path}", s.addr())
}

#[tokio::test]
async fn lean_websocket_frames_are_the_data_and_hash_prefixed_control() {
    let s = start(Config::default()).await;
    publish(&s, "l", r#"{"a":1}"#).await;
    publish(&s, "l", "[2]").await;
    let epoch = http(s.addr(), "GET", "/topics/l/poll?after=0", &[], b"")
        .await
        .json()["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = ws_texts(ws_url(&s, "/topics/l/ws?after=0&encoding=lean"), 3).await;
    assert_eq!(
        got,
        [
            format!(r##"#{{"type":"ready","epoch":"{epoch}","next":0}}"##),
            r#"{"a":1}"#.to_owned(),
            "[2]".to_owned(),
        ]
    );
    // Multiplexed: the topic, a space, the data.
    publish(&s, "m", r#""hi""#).await;
    let got = ws_texts(ws_url(&s, "/ws?topics=l@1,m@0&encoding=lean"), 4).await;
    assert!(got.contains(&"l [2]".to_owned()), "{got:?}");
    assert!(got.contains(&r#"m "hi""#.to_owned()), "{got:?}");
    assert!(
        got.iter()
            .filter(|t| t.starts_with(r##"#{"type":"subscribed""##))
            .count()
            == 2
    );
}

#[tokio::test]
async fn lean_gap_and_reset_say_where_events_resume() {
    let s = start(Config {
        retention: Retention {
            max_events: 2,
            max_age: None,
        },
        ..Config::default()
    })
    .await;
    for i in 1..=5 {
        publish(&s, "g", &i.to_string()).await;
    }
    let got = ws_texts(ws_url(&s, "/topics/g/ws?after=1&encoding=lean"), 4).await;
    assert_eq!(
        got[1],
        r##"#{"type":"gap","missed":2,"resume_seq":4,"next":3}"##
    );
    assert_eq!(&got[2..], ["4", "5"]);
    // A cursor from another epoch: reset, and where the events start.
    let got = ws_texts(
        ws_url(
            &s,
            "/topics/g/ws?after=1&epoch=00000000000000aa&encoding=lean",
        ),
        3,
    )
    .await;
    assert!(
        got[1].starts_with(r##"#{"type":"reset","reason":"##),
        "{got:?}"
    );
    assert!(got[1].ends_with(r#","next":3}"#), "{got:?}");
}

#[tokio::test]
async fn lean_sse_ids_are_seqs_and_resume_with_the_url_epoch() {
    let s = start(Config::default()).await;
    for i in 1..=3 {
        publish(&s, "e", &format!(r#"{{"n":{i}}}"#)).await;
    }
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    conn.write_all(b"GET /topics/e/sse?after=1&encoding=lean HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let text = String::from_utf8(read_until(&mut conn, "data:{\"n\":3}\n\n").await).unwrap();
    assert!(
        text.contains("7\r\nid:2\ndata:{\"n\":2}\n\nid:3\ndata:{\"n\":3}\n\n")
            || text.contains("id:2\ndata:{\"n\":2}\n\nid:3\ndata:{\"n\":3}\n\n"),
        "{text}"
    );
    let epoch = text
        .split("data: {\"epoch\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // A reconnect: `Last-Event-ID: 2`, the epoch from the URL.
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    let req = format!(
        "GET /topics/e/sse?encoding=lean&epoch={epoch} HTTP/1.1\r\nhost: x\r\nlast-event-id: 2\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let text = String::from_utf8(read_until(&mut conn, "data:{\"n\":3}\n\n").await).unwrap();
    assert!(!text.contains("\"n\":2"), "{text}");
    // The same id from another epoch is a reset, not a silent misread.
    let mut conn = TcpStream::connect(s.addr()).await.unwrap();
    let req = "GET /topics/e/sse?encoding=lean&epoch=00000000000000aa HTTP/1.1\r\nhost: x\r\nlast-event-id: 2\r\n\r\n";
    conn.write_all(req.as_bytes()).await.unwrap();
    let text = String::from_utf8(read_until(&mut conn, "data:{\"n\":3}\n\n").await).unwrap();
    assert!(text.contains("event: reset"), "{text}");
}

async fn read_until(s: &mut TcpStream, needle: &str) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        while !String::from_utf8_lossy(&got).contains(needle) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("in time");
    got
}

#[tokio::test]
async fn lean_polls_hold_data_and_count_back_from_next() {
    let s = start(Config::default()).await;
    publish(&s, "p", r#"{"a":1}"#).await;
    publish(&s, "p", r#"{"a":2}"#).await;
    let res = http(
        s.addr(),
        "GET",
        "/topics/p/poll?after=0&encoding=lean",
        &[],
        b"",
    )
    .await;
    let body = String::from_utf8(res.body.clone()).unwrap();
    let epoch = res.json()["epoch"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        format!(r#"{{"epoch":"{epoch}","events":[{{"a":1}},{{"a":2}}],"next":2}}"#)
    );
    let res = http(
        s.addr(),
        "GET",
        "/topics/p/longpoll?after=1&encoding=lean",
        &[],
        b"",
    )
    .await;
    assert_eq!(res.json()["events"], serde_json::json!([{"a": 2}]));
    assert_eq!(res.header("etag"), None, "a lean long poll needs no ETag");
    let res = http(
        s.addr(),
        "GET",
        "/longpoll?topics=p@1&encoding=lean",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        String::from_utf8(res.body).unwrap(),
        format!(
            r#"{{"topics":{{"p":{{"epoch":"{epoch}","next":2,"events":[{{"a":2}}]}}}},"next":"p@{epoch}:2"}}"#
        )
    );
    let bad = http(s.addr(), "GET", "/topics/p/poll?encoding=tiny", &[], b"").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn polls_are_gzipped_above_the_threshold_only() {
    let s = start(Config::default()).await;
    for i in 0..20 {
        publish(
            &s,
            "z",
            &format!(r#"{{"symbol":"ACME","bid":{i}.25,"ask":{i}.5}}"#),
        )
        .await;
    }
    let gz = [("accept-encoding", "gzip, deflate, br")];
    let plain = http(s.addr(), "GET", "/topics/z/poll?after=0", &[], b"").await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    let zipped = http(s.addr(), "GET", "/topics/z/poll?after=0", &gz, b"").await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert!(zipped.body.len() * 3 < plain.body.len());
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped.body[..]),
        &mut out,
    )
    .unwrap();
    assert_eq!(out, plain.body);
    let long = http(s.addr(), "GET", "/longpoll?topics=z@0", &gz, b"").await;
    assert_eq!(long.header("content-encoding"), Some("gzip"));
    // Issue 20, case 8: an explicit `gzip;q=0` refuses gzip whatever `*`
    // says, and `q` is case-insensitive.
    for refusal in ["gzip;q=0, *", "*, gzip;q=0", "gzip;Q=0"] {
        let res = http(
            s.addr(),
            "GET",
            "/topics/z/poll?after=0",
            &[("accept-encoding", refusal)],
            b"",
        )
        .await;
        assert_eq!(res.header("content-encoding"), None, "{refusal}");
        assert_eq!(res.body, plain.body, "{refusal}");
    }
    // One event: below --gzip-min-bytes, sent as it is, varying on nothing.
    let small = http(s.addr(), "GET", "/topics/z/longpoll?after=19", &gz, b"").await;
    assert_eq!(small.header("content-encoding"), None);
    assert_eq!(small.header("vary"), None);
}

#[tokio::test]
async fn the_rust_client_counts_lean_seqs_on_every_transport_with_and_without_deflate() {
    use feedgate::client::{Delivery, SubscribeOptions, Subscriber, Wire};
    use feedgate::metrics::Transport;
    let s = start(Config::default()).await;
    for i in 1..=3 {
        publish(
            &s,
            "c",
            &format!(r#"{{"n":{i},"pad":"{}"}}"#, "ab".repeat(100)),
        )
        .await;
    }
    let opts = SubscribeOptions {
        poll_interval: std::time::Duration::from_millis(20),
        longpoll_timeout: std::time::Duration::from_secs(5),
        resume: None,
    };
    for t in [
        Transport::Poll,
        Transport::LongPoll,
        Transport::Sse,
        Transport::Ws,
    ] {
        for deflate in [false, true] {
            let wire = Wire {
                lean: true,
                deflate,
            };
            let mut sub =
                Subscriber::connect_with(&endpoint(&s), "c", t, after(1), opts.clone(), wire)
                    .await
                    .unwrap();
            for seq in 2..=3 {
                let d = tokio::time::timeout(PATIENCE, sub.next())
                    .await
                    .unwrap()
                    .unwrap();
                let Delivery::Event(e) = d else {
                    panic!("{t:?}: {d:?}")
                };
                assert_eq!(e.seq, seq, "{t:?} deflate={deflate}");
                let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
                assert_eq!(v["n"], seq, "{t:?}");
            }
            sub.close().await;
        }
    }
}
