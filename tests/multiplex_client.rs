//! The Rust client's subscription to a LIST of topics and `feedgate tail a
//! b c`: every topic's events once and in order on every transport, across
//! a resume from `list()`, with topics added and removed at run time,
//! through a server restart, and in the lean and compressed encodings.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use feedgate::client::{Delivery, Resume, SubscribeOptions, Subscriber, Wire, parse_list};
use feedgate::log::Fsync;
use feedgate::metrics::Transport;
use feedgate::{Config, LogBackend};

fn opts() -> SubscribeOptions {
    SubscribeOptions {
        poll_interval: Duration::from_millis(20),
        longpoll_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// The next `n` events, as `topic -> seqs`, failing on a gap or reset.
async fn take(sub: &mut Subscriber, n: usize) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for _ in 0..n {
        let (topic, d) = tokio::time::timeout(PATIENCE, sub.next_with_topic())
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
        let mut sub = Subscriber::connect_list(&endpoint(&s), &list, t, opts(), Wire::default())
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
        let mut sub = Subscriber::connect_list(&endpoint(&s), &resume, t, opts(), Wire::default())
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
        let mut sub = Subscriber::connect_list(&endpoint(&s), &list, t, opts(), Wire::default())
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

/// A subscriber of several topics rides through a drain and a restart by
/// itself, on every transport, exactly as a single-topic one does: it is
/// told the server is restarting (1012, an SSE `restart`, a long poll's
/// `Retry-After-Ms`; a short poller just finds it gone), waits its
/// jittered delay, reconnects to the new process from every topic's
/// cursor, and gets each topic's events once and in order, with no reset.
#[tokio::test]
async fn a_list_subscriber_rides_through_a_restart_on_every_transport() {
    let dir = TempDir::new("list-restart");
    let config = Config {
        log: LogBackend::File {
            dir: dir.path().to_owned(),
            fsync: Fsync::Always,
        },
        drain_timeout: Duration::from_secs(2),
        sse_retry: Duration::from_millis(100),
        reconnect_spread: Duration::from_millis(400),
        ..Config::default()
    };
    let s = start(config.clone()).await;
    let addr = s.addr();
    let ep = endpoint(&s);
    let topics = ["ra", "rb"];
    for t in topics {
        publish(&s, t, "1").await;
    }
    let opts = SubscribeOptions {
        resume: Some(Resume {
            spread: Duration::from_millis(400),
            base: Duration::from_millis(50),
            ..Default::default()
        }),
        ..opts()
    };
    let list = parse_list("ra@0,rb@0").unwrap();
    let (saw_2, mut seen_2) = tokio::sync::mpsc::channel::<()>(4);
    let mut tasks = Vec::new();
    for t in Transport::SUBSCRIBERS {
        let mut sub = Subscriber::connect_list(&ep, &list, t, opts.clone(), Wire::default())
            .await
            .unwrap();
        let saw_2 = saw_2.clone();
        tasks.push(tokio::spawn(async move {
            let mut got: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for n in 1..=8 {
                for (topic, seqs) in take(&mut sub, 1).await {
                    got.entry(topic).or_default().extend(seqs);
                }
                if n == 4 {
                    let _ = saw_2.send(()).await;
                }
            }
            (t, got, sub.reconnects(), sub.list())
        }));
    }
    for t in topics {
        publish(&s, t, "2").await;
    }
    // Every subscriber has both topics' first two events, and the long
    // poller is held again when the drain begins. Then restart on the same
    // port, with the same log.
    for _ in Transport::SUBSCRIBERS {
        tokio::time::timeout(PATIENCE, seen_2.recv()).await.unwrap();
    }
    wait_gauge(addr, "longpoll", 1.0).await;
    s.shutdown().await.unwrap();
    let s = start_at(addr, config).await;
    for seq in 3..=4 {
        for t in topics {
            assert_eq!(publish(&s, t, &seq.to_string()).await, seq);
        }
    }
    for task in tasks {
        let (t, got, reconnects, list) = task.await.unwrap();
        let want = [("ra", &[1u64, 2, 3, 4][..]), ("rb", &[1, 2, 3, 4])];
        assert_eq!(got, seqs(&want), "{t:?}");
        // A short poller has no held request to be told on: it may just
        // poll the new process.
        assert!(
            reconnects >= 1 || t == Transport::Poll,
            "{t:?} never reconnected"
        );
        let cursors: Vec<_> = parse_list(&list).unwrap();
        assert!(
            cursors.iter().all(|(_, c)| c.after == Some(4)),
            "{t:?}: {list}"
        );
    }
    s.shutdown().await.unwrap();
}

/// A LIST is read in every encoding the server writes: lean (its events
/// are the data alone, their seqs counted per topic) and compressed
/// (permessage-deflate, gzip), alone or together.
#[tokio::test]
async fn a_list_subscriber_reads_lean_and_compressed_forms() {
    let s = start(Config::default()).await;
    // Long enough to be compressed (and gzipped: over --gzip-min-bytes).
    let payload =
        |topic: &str, seq: u64| format!(r#"{{"{topic}":{seq},"pad":"{}"}}"#, "x".repeat(300));
    for (topic, seq) in [("la", 1), ("lb", 1), ("la", 2)] {
        publish(&s, topic, &payload(topic, seq)).await;
    }
    let wires = [
        Wire {
            lean: true,
            deflate: false,
        },
        Wire {
            lean: false,
            deflate: true,
        },
        Wire {
            lean: true,
            deflate: true,
        },
    ];
    for wire in wires {
        for t in Transport::SUBSCRIBERS {
            let list = parse_list("la@0,lb@0").unwrap();
            let mut sub = Subscriber::connect_list(&endpoint(&s), &list, t, opts(), wire)
                .await
                .unwrap();
            let mut got = BTreeMap::<String, Vec<u64>>::new();
            for _ in 0..3 {
                let (topic, d) = tokio::time::timeout(PATIENCE, sub.next_with_topic())
                    .await
                    .expect("a delivery in time")
                    .expect("delivery");
                let Delivery::Event(e) = d else {
                    panic!("{t:?} {wire:?}: expected an event, got {d:?}");
                };
                let json: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
                let data = if wire.lean { &json } else { &json["data"] };
                assert_eq!(data[&topic], e.seq, "{t:?} {wire:?}: {json}");
                got.entry(topic).or_default().push(e.seq);
            }
            let want = [("la", &[1u64, 2][..]), ("lb", &[1])];
            assert_eq!(got, seqs(&want), "{t:?} {wire:?}");
            if wire.deflate && t != Transport::Sse {
                // The events came compressed: fewer bytes, handshakes and
                // heads included, than their payloads alone.
                let payloads = 3 * payload("la", 1).len() as u64;
                let read = sub.bytes().read();
                assert!(read < payloads, "{t:?} {wire:?}: read {read} B");
            }
            sub.close().await;
        }
    }
}
