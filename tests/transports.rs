//! Every transport against a real server: order, resume, live delivery,
//! Last-Event-ID, gaps, resets, identical JSON, ETags and long-poll holds.

mod common;

use common::*;
use feedgate::Config;
use feedgate::client::Delivery;
use feedgate::log::{Cursor, Epoch, Retention};
use feedgate::metrics::Transport;
use tokio::io::AsyncWriteExt;

const ALL: [Transport; 4] = Transport::SUBSCRIBERS;

#[tokio::test]
async fn every_transport_delivers_in_order_and_resumes_from_a_cursor() {
    let s = start(Config::default()).await;
    for i in 1..=5 {
        assert_eq!(publish(&s, "t", &format!(r#"{{"i":{i}}}"#)).await, i);
    }
    for t in ALL {
        let mut sub = subscribe(&s, "t", t, after(0)).await;
        let seqs: Vec<u64> = events(&mut sub, 5).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5], "{t:?} from after=0");

        let mut sub = subscribe(&s, "t", t, after(3)).await;
        let seqs: Vec<u64> = events(&mut sub, 2).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![4, 5], "{t:?} resuming after 3");
        sub.close().await;
    }
}

#[tokio::test]
async fn live_events_reach_subscribers_that_started_from_now() {
    let s = start(Config::default()).await;
    publish(&s, "live", "0").await;
    // A short poll without a cursor learns the head and delivers nothing.
    let res = http(s.addr(), "GET", "/topics/live/poll", &[], b"")
        .await
        .json();
    assert_eq!(res["events"], serde_json::json!([]));
    assert_eq!(res["next"], 1);

    let mut streams = Vec::new();
    for t in [Transport::Sse, Transport::Ws] {
        streams.push(subscribe(&s, "live", t, Cursor::default()).await);
    }
    let mut longpoll = subscribe(&s, "live", Transport::LongPoll, Cursor::default()).await;
    let held = tokio::spawn(async move { events(&mut longpoll, 1).await });
    wait_gauge(s.addr(), "longpoll", 1.0).await;

    publish(&s, "live", r#"{"x":1}"#).await;
    for sub in streams.iter_mut() {
        let got = events(sub, 1).await;
        assert_eq!(got[0].seq, 2, "{:?}", sub.transport());
    }
    assert_eq!(held.await.unwrap()[0].seq, 2, "longpoll");
}

#[tokio::test]
async fn the_same_event_is_byte_identical_on_every_transport() {
    let s = start(Config::default()).await;
    let body = r#"{"nested":{"a":[1,2.5,"x\ny",null,true]},"big":123456789012345678901234567890}"#;
    publish(&s, "same", body).await;
    let mut seen = Vec::new();
    for t in ALL {
        let mut sub = subscribe(&s, "same", t, after(0)).await;
        seen.push(events(&mut sub, 1).await.remove(0).json);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    let v: serde_json::Value = serde_json::from_slice(&seen[0]).unwrap();
    assert_eq!(v["topic"], "same");
    assert_eq!(v["seq"], 1);
    assert!(v["time"].as_u64().unwrap() > 1_700_000_000_000_000);
    // `data` is the published value verbatim, big integer included.
    let text = String::from_utf8(seen[0].to_vec()).unwrap();
    assert!(text.ends_with(&format!(r#""data":{body}}}"#)), "{text}");
}

#[tokio::test]
async fn sse_last_event_id_header_wins_over_after() {
    let s = start(Config::default()).await;
    for i in 1..=4 {
        publish(&s, "sse", &i.to_string()).await;
    }
    let mut conn = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    conn.write_all(b"GET /topics/sse/sse?after=0 HTTP/1.1\r\nhost: t\r\nlast-event-id: 2\r\n\r\n")
        .await
        .unwrap();
    let text = read_until(&mut conn, "\"seq\":4").await;
    assert!(text.contains("content-type: text/event-stream"));
    assert!(text.contains("x-accel-buffering: no"));
    assert!(text.contains("retry: 2000\n"));
    assert!(text.contains("event: ready\n"));
    assert!(
        !text.contains("\"seq\":1,"),
        "after=0 was overridden: {text}"
    );
    assert!(!text.contains("\"seq\":2,"));
    assert!(text.contains("\"seq\":3,"));

    // The query form for clients that cannot set headers.
    let mut conn = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    conn.write_all(b"GET /topics/sse/sse?last_event_id=3 HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let text = read_until(&mut conn, "\"seq\":4").await;
    assert!(!text.contains("\"seq\":3,"));
}

async fn read_until(conn: &mut tokio::net::TcpStream, needle: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        while !String::from_utf8_lossy(&got).contains(needle) {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("in time");
    String::from_utf8(got).unwrap()
}

#[tokio::test]
async fn a_cursor_older_than_retention_is_told_as_a_gap_on_every_transport() {
    let config = Config {
        retention: Retention {
            max_events: 3,
            max_age: None,
        },
        ..Config::default()
    };
    let s = start(config).await;
    for i in 1..=10 {
        publish(&s, "g", &i.to_string()).await;
    }
    for t in ALL {
        let mut sub = subscribe(&s, "g", t, after(2)).await;
        assert_eq!(
            next(&mut sub).await,
            Delivery::Gap {
                missed: 5,
                resume_seq: 8
            },
            "{t:?}"
        );
        let seqs: Vec<u64> = events(&mut sub, 3).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![8, 9, 10], "{t:?}");
        sub.close().await;
    }
    let m = scrape(s.addr()).await;
    for t in ["poll", "longpoll", "sse", "ws"] {
        assert_eq!(
            sample(&m, &format!("feedgate_gaps_total{{transport=\"{t}\"}}")),
            1.0,
            "{t}"
        );
    }
}

#[tokio::test]
async fn a_cursor_from_another_epoch_is_a_reset_on_every_transport() {
    // The first server's log dies with it, as an in-memory log does on restart.
    let first = start(Config::default()).await;
    publish(&first, "r", "1").await;
    let mut sub = subscribe(&first, "r", Transport::Poll, after(0)).await;
    events(&mut sub, 1).await;
    let old = sub.cursor();
    first.shutdown().await.unwrap();

    let s = start(Config::default()).await;
    publish(&s, "r", r#""new-1""#).await;
    publish(&s, "r", r#""new-2""#).await;
    for t in ALL {
        let mut sub = subscribe(&s, "r", t, old).await;
        match next(&mut sub).await {
            Delivery::Reset { reason, epoch } => {
                assert_eq!(reason, "epoch_changed", "{t:?}");
                assert_ne!(Some(epoch), old.epoch);
            }
            other => panic!("{t:?}: expected a reset, got {other:?}"),
        }
        let seqs: Vec<u64> = events(&mut sub, 2).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2], "{t:?} restarts from the oldest");
        sub.close().await;
    }
}

#[tokio::test]
async fn a_cursor_past_the_head_is_a_reset() {
    let s = start(Config::default()).await;
    publish(&s, "ahead", "1").await;
    for t in ALL {
        let mut sub = subscribe(&s, "ahead", t, after(99)).await;
        match next(&mut sub).await {
            Delivery::Reset { reason, .. } => assert_eq!(reason, "cursor_ahead", "{t:?}"),
            other => panic!("{t:?}: expected a reset, got {other:?}"),
        }
        assert_eq!(events(&mut sub, 1).await[0].seq, 1);
        sub.close().await;
    }
}

#[tokio::test]
async fn short_poll_answers_304_when_the_etag_is_current() {
    let s = start(Config::default()).await;
    publish(&s, "e", "1").await;
    let res = http(s.addr(), "GET", "/topics/e/poll?after=0", &[], b"").await;
    assert_eq!(res.status, 200);
    let etag = res.header("etag").unwrap().to_owned();
    let body = res.json();
    assert_eq!(etag, format!("\"{}:1\"", body["epoch"].as_str().unwrap()));
    assert_eq!(body["next"], 1);

    let res = http(
        s.addr(),
        "GET",
        "/topics/e/poll?after=1",
        &[("if-none-match", &etag)],
        b"",
    )
    .await;
    assert_eq!(res.status, 304);
    assert!(res.body.is_empty());

    // Without `after` the ETag is the cursor; news turns the 304 into a 200.
    publish(&s, "e", "2").await;
    let res = http(
        s.addr(),
        "GET",
        "/topics/e/poll",
        &[("if-none-match", &etag)],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["events"][0]["seq"], 2);
    let m = scrape(s.addr()).await;
    assert_eq!(
        sample(
            &m,
            "feedgate_requests_total{result=\"not_modified\",transport=\"poll\"}"
        ),
        1.0,
        "{m:?}"
    );
}

#[tokio::test]
async fn long_poll_holds_then_answers_empty_with_the_cursor() {
    let s = start(Config::default()).await;
    publish(&s, "lp", "1").await;
    let started = std::time::Instant::now();
    let res = http(
        s.addr(),
        "GET",
        "/topics/lp/longpoll?after=1&timeout=0.3",
        &[],
        b"",
    )
    .await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(res.status, 200);
    let body = res.json();
    assert_eq!(body["events"], serde_json::json!([]));
    assert_eq!(body["next"], 1);

    // A held long poll answers the moment an event exists.
    let addr = s.addr();
    let held = tokio::spawn(async move {
        http(
            addr,
            "GET",
            "/topics/lp/longpoll?after=1&timeout=30",
            &[],
            b"",
        )
        .await
    });
    // Wait until the long poll is really held before publishing, so the
    // test covers the wake-up path.
    wait_gauge(addr, "longpoll", 1.0).await;
    publish(&s, "lp", "2").await;
    let res = held.await.unwrap();
    assert_eq!(res.json()["events"][0]["seq"], 2);
    let m = scrape(addr).await;
    assert_eq!(
        sample(
            &m,
            "feedgate_requests_total{result=\"timeout\",transport=\"longpoll\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn epochs_are_the_logs_and_reported_consistently() {
    let s = start(Config::default()).await;
    publish(&s, "a", "1").await;
    publish(&s, "b", "1").await;
    let a = http(s.addr(), "GET", "/topics/a/poll", &[], b"")
        .await
        .json();
    let b = http(s.addr(), "GET", "/topics/b/poll", &[], b"")
        .await
        .json();
    let ea: Epoch = a["epoch"].as_str().unwrap().parse().unwrap();
    let eb: Epoch = b["epoch"].as_str().unwrap().parse().unwrap();
    // One in-memory log, one incarnation: its topics share its epoch
    // (docs/protocol.md), which multiplexed SSE ids then say once.
    assert_eq!(ea, eb);
    assert_ne!(ea, Epoch::NONE);
    let ack = http(s.addr(), "POST", "/topics/a/events", &[], b"2")
        .await
        .json();
    assert_eq!(ack["epoch"], a["epoch"]);
    assert_eq!(ack["seq"], 2);
    assert_eq!(ack["topic"], "a");
}

#[tokio::test]
async fn retention_age_trims_idle_topics_and_readers_see_a_gap() {
    let s = start(Config {
        retention: Retention {
            max_events: 100,
            max_age: Some(std::time::Duration::from_millis(200)),
        },
        ..Config::default()
    })
    .await;
    for i in 1..=3 {
        publish(&s, "aged", &i.to_string()).await;
    }
    // Nobody touches the topic; the periodic sweep trims it to its newest
    // event (kept so the head stays readable).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while sample(&scrape(s.addr()).await, "feedgate_log_events") != 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "never expired");
        tokio::task::yield_now().await;
    }
    let mut sub = subscribe(&s, "aged", Transport::Poll, after(1)).await;
    assert_eq!(
        next(&mut sub).await,
        Delivery::Gap {
            missed: 1,
            resume_seq: 3
        }
    );
}
