//! The cached wire forms of events (deflated payloads, lean forms, SSE
//! blocks) stay within `--encoding-cache`, however many readers walk a
//! retained window in every encoding (issue 20, case 5: each reader used to
//! add a full copy of the window that stayed as long as the events) — and
//! every reader still gets every event, in order, intact.

mod common;

use common::*;
use feedgate::Config;
use feedgate::client::{Delivery, SubscribeOptions, Subscriber, Wire};
use feedgate::metrics::Transport;

const EVENTS: u64 = 40;

/// Reads every event of topic `big` from the start with `t` and `wire`, and
/// checks each one.
async fn read_all(s: &feedgate::RunningServer, t: Transport, wire: Wire) {
    let opts = SubscribeOptions {
        poll_interval: std::time::Duration::from_millis(20),
        longpoll_timeout: std::time::Duration::from_secs(5),
        resume: None,
    };
    let mut sub = Subscriber::connect_with(&endpoint(s), "big", t, after(0), opts, wire)
        .await
        .unwrap();
    for seq in 1..=EVENTS {
        let d = tokio::time::timeout(PATIENCE, sub.next())
            .await
            .expect("an event in time")
            .unwrap();
        let Delivery::Event(e) = d else {
            panic!("{t:?} {wire:?}: {d:?}")
        };
        assert_eq!(e.seq, seq, "{t:?} {wire:?}");
        let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        // The lean encoding hands over the data alone.
        let data = if wire.lean { &v } else { &v["data"] };
        assert_eq!(data["n"], seq, "{t:?} {wire:?}");
        assert_eq!(data["pad"].as_str().map(str::len), Some(50_000));
    }
    sub.close().await;
}

/// Every event 50 KB: 2 MB retained, and four forms of each made by the
/// readers below (SSE json and lean blocks, deflated json and lean).
async fn walk_every_encoding(budget: usize) -> f64 {
    let s = start(Config {
        encoding_cache: budget,
        ..Config::default()
    })
    .await;
    for n in 1..=EVENTS {
        // Varied, so deflate has something to do but cannot shrink it to nothing.
        let pad: String = (0..50_000u64)
            .map(|i| char::from(b'a' + ((i * 7 + n * 13) % 26) as u8))
            .collect();
        publish(&s, "big", &format!(r#"{{"n":{n},"pad":"{pad}"}}"#)).await;
    }
    for t in [Transport::Sse, Transport::Ws] {
        for lean in [false, true] {
            let deflate = t == Transport::Ws;
            read_all(&s, t, Wire { lean, deflate }).await;
        }
    }
    let m = scrape(s.addr()).await;
    let cached = sample(&m, "feedgate_encoding_cache_bytes");
    s.shutdown().await.unwrap();
    cached
}

#[tokio::test]
async fn cached_encodings_stay_within_the_budget() {
    let budget = 1 << 20;
    let bounded = walk_every_encoding(budget).await;
    assert!(bounded > 0.0, "the newest forms are kept");
    assert!(
        bounded <= budget as f64,
        "{bounded} bytes cached, budget {budget}"
    );
    // With room, the same readers keep far more: the budget is what bounds it.
    let roomy = walk_every_encoding(64 << 20).await;
    assert!(
        roomy > 3.0 * budget as f64,
        "{roomy} bytes cached without a tight budget"
    );
}
