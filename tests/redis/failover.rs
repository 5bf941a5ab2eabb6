//! Failover without silent loss, and `--redis-wait`.
//!
//! On a Redis Cluster, the master of a topic is killed while four
//! publishers run through two gateway nodes (one with `--redis-wait 1`)
//! and subscribers on every transport follow it on both: afterwards every
//! publish acknowledged with `--redis-wait` is in the log with its data,
//! the topic's epoch changed (a promoted replica may lack the last writes
//! of an unwaited publish), every subscriber was told `reset`, and no
//! subscriber ever got two different events under one (epoch, seq).
//! On a single Redis with a replica, `--redis-wait 1` answers 201 while the
//! replica confirms and 503 with a clear error while it does not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use feedgate::log::{Epoch, RedisOptions};
use tokio::sync::watch;

use super::*;

/// What one subscriber saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Event {
        epoch: Epoch,
        seq: u64,
        json: String,
    },
    Reset {
        epoch: Epoch,
    },
}

/// Follows `topic` over `t` from seq 1, reconnecting (to the next node,
/// from its cursor) whenever a connection fails, recording everything,
/// until it has seen `until`'s (epoch, seq). A gap fails the test: nothing
/// here is old enough to fall out of retention.
async fn record(
    eps: Vec<Endpoint>,
    topic: String,
    t: Transport,
    mut until: watch::Receiver<Option<(Epoch, u64)>>,
) -> Vec<Seen> {
    let opts = client::SubscribeOptions {
        poll_interval: Duration::from_millis(20),
        longpoll_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut cursor = after(0);
    let mut node = 0;
    let deadline = Instant::now() + PATIENCE * 12;
    'connect: loop {
        assert!(Instant::now() < deadline, "{t:?}: never reached the end");
        let mut sub = match Subscriber::connect(&eps[node], &topic, t, cursor, opts.clone()).await {
            Ok(s) => s,
            Err(_) => {
                node = (node + 1) % eps.len();
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        loop {
            let target = *until.borrow_and_update();
            let last = seen.iter().rev().find_map(|s| match s {
                Seen::Event { epoch, seq, .. } => Some((*epoch, *seq)),
                Seen::Reset { .. } => None,
            });
            if target.is_some() && last == target {
                return seen;
            }
            let next = tokio::select! {
                n = tokio::time::timeout(PATIENCE, sub.next()) => match n {
                    Ok(n) => n,
                    Err(_) => Err(ClientError::Closed),
                },
                _ = until.changed() => continue,
            };
            match next {
                Ok(Delivery::Event(e)) => seen.push(Seen::Event {
                    // The cursor moved to this event: its epoch is the event's.
                    epoch: sub
                        .cursor()
                        .epoch
                        .expect("a cursor past an event has its epoch"),
                    seq: e.seq,
                    json: String::from_utf8(e.json.to_vec()).unwrap(),
                }),
                Ok(Delivery::Reset { epoch, .. }) => seen.push(Seen::Reset { epoch }),
                Ok(Delivery::Gap { missed, resume_seq }) => {
                    panic!("{t:?}: a gap of {missed} before {resume_seq}")
                }
                Err(_) => {
                    cursor = sub.cursor();
                    node = (node + 1) % eps.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue 'connect;
                }
            }
        }
    }
}

/// The whole retained log of `topic` read through `s`: its epoch and
/// seq → event JSON.
async fn whole_log(s: &RunningServer, topic: &str) -> (Epoch, HashMap<u64, String>) {
    let mut events = HashMap::new();
    let mut after = 0;
    loop {
        let r = http(
            s.addr(),
            "GET",
            &format!("/topics/{topic}/poll?after={after}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        let epoch: Epoch = v["epoch"].as_str().unwrap().parse().unwrap();
        assert!(v.get("gap").is_none() && v.get("reset").is_none(), "{v}");
        // The events' bytes as sent (a parsed value would reorder keys).
        #[derive(serde::Deserialize)]
        struct Body<'a> {
            #[serde(borrow)]
            events: Vec<&'a serde_json::value::RawValue>,
        }
        let body: Body = serde_json::from_slice(&r.body).unwrap();
        if body.events.is_empty() {
            return (epoch, events);
        }
        for e in body.events {
            let seq = serde_json::from_str::<serde_json::Value>(e.get()).unwrap()["seq"]
                .as_u64()
                .unwrap();
            events.insert(seq, e.get().to_owned());
        }
        after = v["next"].as_u64().unwrap();
    }
}

/// Publishes; a refusal is its body (anything but a 503 fails the test).
async fn try_publish(ep: &Endpoint, topic: &str, data: &str) -> Result<u64, String> {
    match client::publish(ep, topic, data.as_bytes().to_vec()).await {
        Ok(seq) => Ok(seq),
        Err(ClientError::Status { status, body }) if status == 503 => Err(body),
        // The node answered nothing (its connection to a dead master):
        // retried, as a client would.
        Err(e @ (ClientError::Io(_) | ClientError::Closed)) => Err(e.to_string()),
        Err(e) => panic!("publish failed other than 503: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_burst_loses_nothing_silently() {
    let Some(cluster) = Cluster::get().await else {
        return;
    };
    let topic = "burst";
    let log_key = format!("feedgate:{{{topic}}}:log");
    let old_master = cluster.master_of(&log_key).await;
    let redis = Target::Cluster(cluster);
    let waited = Config {
        redis: RedisOptions {
            wait: 1,
            wait_timeout: Duration::from_millis(500),
            ..Default::default()
        },
        ..node_config(&redis)
    };
    let a = start(waited).await;
    let b = node(&redis).await;
    let eps = vec![endpoint(&a), endpoint(&b)];
    publish(&a, topic, "0").await;
    let (first_epoch, _) = whole_log(&a, topic).await;

    let (until_tx, until_rx) = watch::channel(None);
    let mut recorders = Vec::new();
    for t in ALL {
        for start_at in 0..2 {
            let mut order = eps.clone();
            order.rotate_left(start_at);
            let f = record(order, topic.to_owned(), t, until_rx.clone());
            recorders.push((t, tokio::spawn(f)));
        }
    }

    // Publishers: two through A (acknowledged once a replica has it), two
    // through B (once the master has it). Each records (node, n, seq).
    let acked = Arc::new(Mutex::new(Vec::<(usize, u64, u64)>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let publishers: Vec<_> = (0..4u64)
        .map(|p| {
            let (ep, via) = (eps[(p % 2) as usize].clone(), (p % 2) as usize);
            let (acked, refused, running) = (acked.clone(), refused.clone(), running.clone());
            tokio::spawn(async move {
                let mut n = p * 1_000_000;
                while running.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    match try_publish(&ep, "burst", &payload(n)).await {
                        Ok(seq) => acked.lock().unwrap().push((via, n, seq)),
                        Err(body) => {
                            refused.lock().unwrap().push(body);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect();
    let count = |via: usize| acked.lock().unwrap().iter().filter(|a| a.0 == via).count();
    let wait_for = |via: usize, n: usize| {
        let count = &count;
        async move {
            let deadline = Instant::now() + PATIENCE * 6;
            while count(via) < n {
                assert!(
                    Instant::now() < deadline,
                    "publishes via {via} stalled at {}",
                    count(via)
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(0, 100).await;
    wait_for(1, 100).await;

    // Mid-burst: the topic's master dies; its replica takes over.
    let Target::Cluster(cluster) = &redis else {
        unreachable!()
    };
    cluster.kill(&old_master).await;
    let at_kill = (count(0), count(1));
    let deadline = Instant::now() + PATIENCE * 6;
    while cluster.master_of(&log_key).await == old_master {
        assert!(Instant::now() < deadline, "no replica took over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.wait_whole().await;
    // Unwaited publishes go on at once; waited ones need a replica again.
    wait_for(1, at_kill.1 + 100).await;
    cluster.restart(&old_master).await;
    wait_for(0, at_kill.0 + 100).await;
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    for p in publishers {
        p.await.unwrap();
    }

    let (final_epoch, log) = whole_log(&a, topic).await;
    assert_ne!(
        final_epoch, first_epoch,
        "a promoted replica starts a new epoch"
    );
    assert_eq!(
        whole_log(&b, topic).await,
        (final_epoch, log.clone()),
        "both nodes agree"
    );
    let head = log.keys().copied().max().unwrap();
    assert_eq!(log.len() as u64, head, "the log is gapless from 1");
    until_tx.send(Some((final_epoch, head))).unwrap();

    // Every publish acknowledged with --redis-wait is there, with its data;
    // so is every publish acknowledged after the failover.
    let acked = acked.lock().unwrap().clone();
    let mut lost_unwaited = 0;
    for (i, &(via, n, seq)) in acked.iter().enumerate() {
        let after_failover = i >= at_kill.0 + at_kill.1;
        let want = Event::build(
            &feedgate::log::Topic::new(topic).unwrap(),
            seq,
            0,
            payload(n).as_bytes(),
        );
        let data_of = |json: &str| {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            v["data"].to_string()
        };
        let present = log
            .get(&seq)
            .is_some_and(|json| data_of(json) == data_of(want.as_str()));
        if via == 0 || after_failover {
            assert!(
                present,
                "acknowledged publish {n} (via {via}) at {seq} is gone"
            );
        } else if !present {
            lost_unwaited += 1;
        }
    }
    // A waited publish refused while the shard had no replica says why.
    let refused = refused.lock().unwrap().clone();
    assert!(
        refused
            .iter()
            .all(|b| b.contains("\"code\":\"unavailable\"")),
        "{refused:?}"
    );
    eprintln!(
        "failover: {} acknowledged ({} via --redis-wait 1), {lost_unwaited} unwaited lost, \
         {} refused with 503",
        acked.len(),
        acked.iter().filter(|a| a.0 == 0).count(),
        refused.len()
    );

    // No subscriber misread: within an epoch seqs run on by one, a new
    // epoch is always announced by a reset, events of the final epoch are
    // the log's, and no two subscribers saw different events under one
    // (epoch, seq).
    let mut everyone: HashMap<(Epoch, u64), String> = HashMap::new();
    for (t, r) in recorders {
        let seen = r.await.unwrap();
        let mut current: Option<(Epoch, u64)> = None;
        let mut resets = 0;
        for s in &seen {
            match s {
                Seen::Reset { epoch } => {
                    resets += 1;
                    current = Some((*epoch, 0));
                }
                Seen::Event { epoch, seq, json } => {
                    match current {
                        Some((e, last)) if e == *epoch => {
                            assert!(
                                last == 0 || *seq == last + 1,
                                "{t:?}: {last} then {seq} in {epoch}"
                            );
                        }
                        Some((e, _)) => panic!("{t:?}: epoch {e} to {epoch} without a reset"),
                        None => {}
                    }
                    current = Some((*epoch, *seq));
                    if *epoch == final_epoch {
                        assert_eq!(Some(json), log.get(seq), "{t:?}: seq {seq} differs");
                    }
                    let prior = everyone
                        .entry((*epoch, *seq))
                        .or_insert_with(|| json.clone());
                    assert_eq!(prior, json, "{t:?}: two events at {epoch}:{seq}");
                }
            }
        }
        assert!(resets >= 1, "{t:?} was never told of the new epoch");
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_waits_for_its_replicas() {
    let master = redis_or_skip!(false);
    let mut replica = RedisServer::replica_of(&master).await;
    let config = Config {
        redis: RedisOptions {
            wait: 1,
            wait_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ..node_config(&master)
    };
    let s = start(config).await;
    let mut sub = subscribe(&s, "waited", Transport::Ws, after(0)).await;
    // Creates the topic and loads the script: the count below is of
    // publishes alone.
    assert_eq!(publish(&s, "waited", &payload(1)).await, 1);
    let before = master.command_calls().await;
    for i in 2..=6 {
        assert_eq!(publish(&s, "waited", &payload(i)).await, i);
    }
    let after_run = master.command_calls().await;
    let waits = after_run.get("wait").unwrap_or(&0) - before.get("wait").unwrap_or(&0);
    assert_eq!(waits, 5, "one WAIT per publish");
    // Without the replica, a publish is stored but not acknowledged.
    replica.kill().await;
    let err = client::publish(&endpoint(&s), "waited", payload(7).into_bytes())
        .await
        .unwrap_err();
    let ClientError::Status { status, body } = err else {
        panic!("{err}")
    };
    assert_eq!(status, 503);
    assert!(body.contains(r#""code":"unavailable""#), "{body}");
    assert!(
        body.contains("0 of 1 replicas confirmed"),
        "the error says why: {body}"
    );
    // It was written (subscribers get it); a retry may store it twice.
    assert_eq!(
        seqs(&events(&mut sub, 7).await),
        (1..=7).collect::<Vec<_>>()
    );
    // With the replica back (and synced), publishes are confirmed again.
    drop(replica);
    let _replica = RedisServer::replica_of(&master).await;
    assert_eq!(publish(&s, "waited", &payload(8)).await, 8);
    s.shutdown().await.unwrap();
}
