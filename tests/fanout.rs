//! Hundreds of subscribers over WebSocket, SSE and long polling each get
//! every event exactly once, in order, while several publishers append
//! concurrently.

mod common;

use std::time::Duration;

use common::*;
use feedgate::Config;
use feedgate::client::{Delivery, SubscribeOptions, Subscriber};
use feedgate::log::Cursor;
use feedgate::metrics::Transport;

const PUBLISHERS: u64 = 4;
const PER_PUBLISHER: u64 = 50;
const TOTAL: u64 = PUBLISHERS * PER_PUBLISHER;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_subscribers_get_every_event_once_in_order() {
    let s = start(Config::default()).await;
    let ep = endpoint(&s);
    // Subscribe from the (empty) head: every subscriber must see seq 1..=TOTAL.
    let start_at = Cursor {
        after: Some(0),
        epoch: None,
    };
    let opts = SubscribeOptions {
        poll_interval: Duration::from_millis(10),
        longpoll_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let mix = [
        (Transport::Ws, 150),
        (Transport::Sse, 150),
        (Transport::LongPoll, 100),
    ];
    let mut readers = Vec::new();
    for (t, n) in mix {
        for _ in 0..n {
            let sub = Subscriber::connect(&ep, "fan", t, start_at, opts.clone())
                .await
                .expect("subscribe");
            readers.push(tokio::spawn(collect(sub)));
        }
    }
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let ep = ep.clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..PER_PUBLISHER {
                feedgate::client::publish(
                    &ep,
                    "fan",
                    format!(r#"{{"p":{p},"i":{i}}}"#).into_bytes(),
                )
                .await
                .expect("publish");
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let mut reference: Option<Vec<bytes::Bytes>> = None;
    for r in readers {
        let (t, events) = r.await.unwrap();
        let seqs: Vec<u64> = events.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=TOTAL).collect::<Vec<_>>(), "{t:?}");
        // Each publisher's events appear in the order it published them.
        for p in 0..PUBLISHERS {
            let is: Vec<u64> = events
                .iter()
                .filter_map(|(_, json)| {
                    let v: serde_json::Value = serde_json::from_slice(json).unwrap();
                    (v["data"]["p"] == p).then(|| v["data"]["i"].as_u64().unwrap())
                })
                .collect();
            assert_eq!(
                is,
                (0..PER_PUBLISHER).collect::<Vec<_>>(),
                "{t:?} publisher {p}"
            );
        }
        let jsons: Vec<bytes::Bytes> = events.into_iter().map(|(_, j)| j).collect();
        match &reference {
            None => reference = Some(jsons),
            Some(r) => assert_eq!(r, &jsons, "{t:?} saw different bytes"),
        }
    }
    let m = scrape(s.addr()).await;
    assert_eq!(sample(&m, "feedgate_events_published_total"), TOTAL as f64);
    let delivered: f64 = ["ws", "sse", "longpoll"]
        .iter()
        .map(|t| {
            sample(
                &m,
                &format!("feedgate_events_delivered_total{{transport=\"{t}\"}}"),
            )
        })
        .sum();
    assert_eq!(delivered, (400 * TOTAL) as f64);
}

/// Reads until TOTAL events arrived; panics on a gap or reset (none may
/// happen: retention is far above TOTAL).
async fn collect(mut sub: Subscriber) -> (Transport, Vec<(u64, bytes::Bytes)>) {
    let mut out = Vec::with_capacity(TOTAL as usize);
    while (out.len() as u64) < TOTAL {
        match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
            Ok(Ok(Delivery::Event(e))) => out.push((e.seq, e.json)),
            other => panic!(
                "{:?}: {other:?} after {} events",
                sub.transport(),
                out.len()
            ),
        }
    }
    let t = sub.transport();
    sub.close().await;
    (t, out)
}
