//! Redis connections per gateway node stay flat as topics grow: a node
//! follows any number of topics over a fixed few subscriber connections
//! per shard (`--redis-readers`), counted with `CLIENT LIST` on every
//! Redis node.

use std::collections::BTreeMap;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::*;

/// One SSE stream over `topics` (`GET /sse?topics=…`), held open.
async fn follow_all(s: &RunningServer, topics: &[String]) -> TcpStream {
    let mut sock = TcpStream::connect(s.addr()).await.unwrap();
    let req = format!(
        "GET /sse?topics={} HTTP/1.1\r\nhost: t\r\naccept: text/event-stream\r\n\r\n",
        topics.join(",")
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    sock
}

/// Waits until `n` channels are subscribed on the Redis side.
async fn wait_channels(redis: &Target, n: usize) {
    let deadline = Instant::now() + PATIENCE * 3;
    loop {
        let got = redis.channels().await.len();
        if got == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} channels subscribed, want {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connections per Redis node now, less `baseline`.
async fn added(redis: &Target, baseline: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    redis
        .clients_per_node()
        .await
        .into_iter()
        .map(|(node, n)| {
            let before = baseline.get(&node).copied().unwrap_or(0);
            (node, n.saturating_sub(before))
        })
        .collect()
}

on_both!(connections_stay_flat_as_topics_grow);
async fn connections_stay_flat_as_topics_grow(redis: Target) {
    const FEW: usize = 100;
    const MANY: usize = 1_000;
    let config = Config {
        max_topics_per_connection: MANY,
        ..node_config(&redis)
    };
    let baseline = redis.clients_per_node().await;
    let s = start(config).await;
    let topics: Vec<String> = (0..MANY).map(|i| format!("room{i}")).collect();
    for t in &topics {
        publish(&s, t, "1").await;
    }
    let _few = follow_all(&s, &topics[..FEW]).await;
    wait_channels(&redis, FEW).await;
    let at_few = added(&redis, &baseline).await;
    let _many = follow_all(&s, &topics[FEW..]).await;
    wait_channels(&redis, MANY).await;
    let at_many = added(&redis, &baseline).await;
    eprintln!("connections per Redis node: {FEW} topics {at_few:?}, {MANY} topics {at_many:?}");
    assert_eq!(at_few, at_many, "connections grew with topics");
    let masters = redis.masters().await.len();
    let total: usize = at_many.values().sum();
    assert!(
        total <= 8 + masters,
        "{total} connections for {masters} shards: {at_many:?}"
    );
    if let Target::Single(_) = redis {
        // The shared connection and the one reader (--redis-readers 1).
        assert_eq!(total, 2, "{at_many:?}");
    }
    s.shutdown().await.unwrap();
}

on_both!(topics_spread_over_the_readers);
async fn topics_spread_over_the_readers(redis: Target) {
    let config = Config {
        redis: feedgate::log::RedisOptions {
            readers: 3,
            ..Default::default()
        },
        ..node_config(&redis)
    };
    let baseline = redis.clients_per_node().await;
    let s = start(config).await;
    let topics: Vec<String> = (0..60).map(|i| format!("spread{i}")).collect();
    let mut subs = Vec::new();
    for t in &topics {
        subs.push(subscribe(&s, t, Transport::Ws, after(0)).await);
    }
    wait_channels(&redis, topics.len()).await;
    let total: usize = added(&redis, &baseline).await.values().sum();
    let masters = redis.masters().await.len();
    if let Target::Single(_) = redis {
        assert_eq!(total, 1 + 3, "the shared connection and three readers");
    } else {
        assert!(total <= 8 + 3 * masters, "{total}");
    }
    // Every topic is followed, whichever reader carries it.
    for (i, t) in topics.iter().enumerate() {
        assert_eq!(publish(&s, t, &payload(i as u64)).await, 1);
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        let got = events(sub, 1).await;
        assert_eq!(
            std::str::from_utf8(&got[0].json).unwrap(),
            expected_json(&topics[i], &got[0], &payload(i as u64))
        );
    }
    s.shutdown().await.unwrap();
}
