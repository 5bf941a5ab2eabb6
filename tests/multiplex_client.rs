//! The Rust client's multiplexed subscription and `feedgate tail a b c`:
//! every topic's events once and in order on every transport, across a
//! resume from `list()`, and with topics added and removed at run time.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use feedgate::Config;
use feedgate::client::{Delivery, MultiSubscriber, SubscribeOptions, parse_list};
use feedgate::metrics::Transport;

fn opts() -> SubscribeOptions {
    SubscribeOptions {
        poll_interval: Duration::from_millis(20),
        longpoll_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// The next `n` events, as `topic -> seqs`, failing on a gap or reset.
async fn take(sub: &mut MultiSubscriber, n: usize) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for _ in 0..n {
        let (topic, d) = tokio::time::timeout(PATIENCE, sub.next())
            .await
            .expect("a delivery in time")
            .expect("delivery");
        match d {
            Delivery::Event(e) => out.entry(topic).or_default().push(e.seq),
            other => panic!("expected an event of {topic}, got {other:?}"),
        }
    }
    out
}

fn seqs(list: &[(&str, &[u64])]) -> BTreeMap<String, Vec<u64>> {
    list.iter()
        .map(|(t, s)| (t.to_string(), s.to_vec()))
        .collect()
}

#[tokio::test]
async fn every_transport_delivers_every_topic_once_in_order_and_resumes() {
    let s = start(Config::default()).await;
    for t in Transport::SUBSCRIBERS {
        let [a, b, c] = ["a", "b", "c"].map(|x| format!("{x}{}", t.as_str()));
        for (topic, n) in [(&a, 2), (&b, 1)] {
            for _ in 0..n {
                publish(&s, topic, "1").await;
            }
        }
        let list = parse_list(&format!("{a}@0,{b}@0,{c}@0")).unwrap();
        let mut sub = MultiSubscriber::connect(&endpoint(&s), &list, t, opts())
            .await
            .unwrap();
        publish(&s, &c, "2").await;
        publish(&s, &a, "3").await;
        let got = take(&mut sub, 5).await;
        let want = [
            (a.as_str(), &[1u64, 2, 3][..]),
            (b.as_str(), &[1]),
            (c.as_str(), &[1]),
        ];
        assert_eq!(got, seqs(&want), "{t:?}");
        // Resume elsewhere from the LIST: only what came after.
        let resume = parse_list(&sub.list()).unwrap();
        drop(sub);
        publish(&s, &b, "4").await;
        publish(&s, &c, "5").await;
        let mut sub = MultiSubscriber::connect(&endpoint(&s), &resume, t, opts())
            .await
            .unwrap();
        let got = take(&mut sub, 2).await;
        assert_eq!(
            got,
            seqs(&[(b.as_str(), &[2]), (c.as_str(), &[2])]),
            "{t:?}"
        );
    }
}

#[tokio::test]
async fn topics_come_and_go_at_run_time_on_every_transport() {
    let s = start(Config::default()).await;
    for t in Transport::SUBSCRIBERS {
        let [a, b] = ["x", "y"].map(|x| format!("{x}{}", t.as_str()));
        publish(&s, &a, "1").await;
        let list = parse_list(&format!("{a}@0")).unwrap();
        let mut sub = MultiSubscriber::connect(&endpoint(&s), &list, t, opts())
            .await
            .unwrap();
        assert_eq!(
            take(&mut sub, 1).await,
            seqs(&[(a.as_str(), &[1])]),
            "{t:?}"
        );
        publish(&s, &b, "2").await;
        sub.subscribe(&b, feedgate::log::Cursor::at(0, feedgate::log::Epoch::NONE))
            .await
            .unwrap();
        assert_eq!(
            take(&mut sub, 1).await,
            seqs(&[(b.as_str(), &[1])]),
            "{t:?}"
        );
        sub.unsubscribe(&a).await.unwrap();
        publish(&s, &a, "3").await;
        publish(&s, &b, "4").await;
        assert_eq!(
            take(&mut sub, 1).await,
            seqs(&[(b.as_str(), &[2])]),
            "{t:?}: {a} is gone"
        );
    }
}

#[test]
fn tail_prints_every_topics_events() {
    let (server, url) = spawn_binary(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ep = feedgate::client::Endpoint::parse(&url).unwrap();
    rt.block_on(async {
        for (t, v) in [("p", "1"), ("q", "2"), ("p", "3")] {
            feedgate::client::publish(&ep, t, v.as_bytes().to_vec())
                .await
                .unwrap();
        }
    });
    for transport in ["ws", "sse", "longpoll", "poll"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_feedgate"))
            .args([
                "tail",
                "p",
                "q",
                "--after",
                "0",
                "--count",
                "3",
                "--transport",
                transport,
            ])
            .args(["--poll-interval", "20ms", "--url", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut got: Vec<(String, u64)> = lines
            .iter()
            .map(|v| {
                (
                    v["topic"].as_str().unwrap().to_owned(),
                    v["seq"].as_u64().unwrap(),
                )
            })
            .collect();
        got.sort();
        let want = [("p", 1), ("p", 2), ("q", 1)].map(|(t, n)| (t.to_owned(), n));
        assert_eq!(got, want, "{transport}");
    }
    terminate(server);
}
