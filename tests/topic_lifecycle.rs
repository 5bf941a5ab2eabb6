//! Reading, waiting on and subscribing to a topic never creates it: only a
//! publish does, so anonymous readers cannot use up `--max-topics`. A reader
//! that came before the first publish keeps its cursor across it.

mod common;

use common::*;
use feedgate::Config;
use feedgate::client::Delivery;
use feedgate::log::{Cursor, Epoch};
use feedgate::metrics::Transport;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const NO_EPOCH: &str = "0000000000000000";

#[tokio::test]
async fn readers_of_unknown_topics_do_not_lock_publishers_out() {
    let s = start(Config {
        max_topics: 3,
        ..Config::default()
    })
    .await;
    for i in 0..10 {
        let res = http(s.addr(), "GET", &format!("/topics/junk{i}/poll"), &[], b"").await;
        assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
        let path = format!("/topics/lp{i}/longpoll?timeout=0");
        assert_eq!(http(s.addr(), "GET", &path, &[], b"").await.status, 200);
    }
    // Held streams wait on topics nobody has published to.
    let (mut streams, mut sockets) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let mut sse = TcpStream::connect(s.addr()).await.unwrap();
        let req = format!("GET /topics/sse{i}/sse HTTP/1.1\r\nHost: x\r\n\r\n");
        sse.write_all(req.as_bytes()).await.unwrap();
        streams.push(sse);
        let url = format!("ws://{}/topics/ws{i}/ws", s.addr());
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        sockets.push(ws);
    }
    wait_gauge(s.addr(), "sse", 5.0).await;
    wait_gauge(s.addr(), "ws", 5.0).await;
    let m = scrape(s.addr()).await;
    assert_eq!(sample(&m, "feedgate_topics"), 0.0, "no reader made a topic");
    for t in ["a", "b", "c"] {
        assert_eq!(publish(&s, t, "1").await, 1, "publishing to {t} works");
    }
    let res = http(s.addr(), "POST", "/topics/d/events", &[], b"1").await;
    assert_eq!(res.status, 503, "the limit still holds for publishers");
}

#[tokio::test]
async fn an_unknown_topic_reads_empty_in_no_epoch() {
    let s = start(Config::default()).await;
    let res = http(s.addr(), "GET", "/topics/later/poll?after=0", &[], b"").await;
    assert_eq!(res.status, 200);
    let body = res.json();
    assert_eq!(body["epoch"], NO_EPOCH);
    assert_eq!(body["next"], 0);
    assert!(body.get("reset").is_none(), "{body}");
    // A cursor past the head of an empty topic is a reset, as anywhere.
    let res = http(s.addr(), "GET", "/topics/later/poll?after=5", &[], b"").await;
    assert_eq!(res.json()["reset"]["reason"], "cursor_ahead");
}

#[tokio::test]
async fn a_cursor_from_before_the_first_publish_survives_it_on_every_transport() {
    let s = start(Config::default()).await;
    let cursor = Cursor::at(0, Epoch::NONE);
    let mut subs = Vec::new();
    for t in [
        Transport::Poll,
        Transport::LongPoll,
        Transport::Sse,
        Transport::Ws,
    ] {
        subs.push(subscribe(&s, "fresh", t, cursor).await);
    }
    wait_gauge(s.addr(), "sse", 1.0).await;
    wait_gauge(s.addr(), "ws", 1.0).await;
    publish(&s, "fresh", r#"{"first":true}"#).await;
    for sub in &mut subs {
        match next(sub).await {
            Delivery::Event(e) => assert_eq!(e.seq, 1, "{:?}", sub.transport()),
            other => panic!("{:?}: expected seq 1, got {other:?}", sub.transport()),
        }
        // Each transport told the client the topic's new epoch (a
        // WebSocket by a second `ready`), so its next cursor is no reset.
        let epoch = sub.cursor().epoch;
        assert!(
            epoch.is_some_and(|e| e != Epoch::NONE),
            "{:?}",
            sub.transport()
        );
    }
    // A poll with the no-epoch cursor after the publish: no reset either.
    let path = format!("/topics/fresh/poll?after={NO_EPOCH}:0");
    let body = http(s.addr(), "GET", &path, &[], b"").await.json();
    assert!(body.get("reset").is_none(), "{body}");
    assert_eq!(body["events"][0]["seq"], 1);
    assert_ne!(body["epoch"], NO_EPOCH);
}
