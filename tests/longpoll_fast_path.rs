//! The long-poll fast path (src/transport/fanout.rs answering the polls
//! src/transport/poll.rs holds there): caught-up single-topic long polls on
//! keep-alive connections are answered by the publish's pass — head and
//! body made once per encoding and gzip, one `send` each — and their
//! clients' next requests are read on the same connections. Every poll gets
//! every event once and in order, whichever path answered it; a socket
//! that takes only part of an answer gets the rest from its task; the
//! server counts each request once and, to the byte, what the clients read;
//! a hold that runs out, a drain and an `Origin` are answered as before;
//! `--longpoll-fanout false` answers the same.

mod common;

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use feedgate::log::Retention;
use feedgate::{Config, FanoutSpread};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

const HELD: &str = "feedgate_longpoll_fanout_polls";
const ANSWERS: &str = "feedgate_longpoll_fanout_answers_total";

fn config(longpoll_fanout: bool) -> Config {
    Config {
        retention: Retention {
            max_events: 100_000,
            max_age: None,
        },
        longpoll_fanout,
        ..Config::default()
    }
}

/// A client that long-polls one topic on one keep-alive connection.
struct Poller {
    socket: TcpStream,
    /// The path and query, but for the cursor.
    base: String,
    /// Extra request header lines.
    headers: String,
    lean: bool,
    epoch: Option<String>,
    next: u64,
    /// Response bytes read, all told.
    read: u64,
    /// Requests sent.
    asked: u64,
}

impl Poller {
    async fn open(addr: SocketAddr, base: &str, headers: &str, rcvbuf: Option<u32>) -> Poller {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(n) = rcvbuf {
            socket.set_recv_buffer_size(n).unwrap();
        }
        Poller {
            socket: socket.connect(addr).await.unwrap(),
            base: base.to_owned(),
            headers: headers.to_owned(),
            lean: base.contains("encoding=lean"),
            epoch: None,
            next: 0,
            read: 0,
            asked: 0,
        }
    }

    /// Sends the next long poll, from where the last answer left it.
    async fn ask(&mut self) {
        let epoch = self
            .epoch
            .as_ref()
            .map_or(String::new(), |e| format!("&epoch={e}"));
        let req = format!(
            "GET {}&after={}{epoch} HTTP/1.1\r\nhost: test\r\n{}\r\n",
            self.base, self.next, self.headers
        );
        self.socket.write_all(req.as_bytes()).await.unwrap();
        self.asked += 1;
    }

    /// Reads the answer: its events' `k` (the publish's ordinal, which is
    /// its seq), checked against their seqs; the whole response.
    async fn answer(&mut self) -> (Vec<u64>, RawResponse) {
        let res = read_response(&mut self.socket).await;
        assert_eq!(res.status, 200, "{:?}", String::from_utf8_lossy(&res.body));
        self.read += res.wire_len as u64;
        let body = match res.header("content-encoding") {
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&res.body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            other => {
                assert_eq!(other, None);
                res.body.clone()
            }
        };
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let next = v["next"].as_u64().unwrap();
        let events = v["events"].as_array().unwrap();
        let first = next + 1 - events.len() as u64;
        let ks = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let data = if self.lean { e } else { &e["data"] };
                let k = data["k"].as_u64().unwrap();
                if !self.lean {
                    assert_eq!(e["seq"].as_u64(), Some(k), "{e}");
                }
                assert_eq!(k, first + i as u64, "seqs end at next");
                k
            })
            .collect();
        self.epoch = Some(v["epoch"].as_str().unwrap().to_owned());
        self.next = next;
        (ks, res)
    }
}

/// Publishes event `k` (its seq, on a fresh topic) with `pad` bytes of
/// compressible padding.
async fn publish_k(s: &feedgate::RunningServer, topic: &str, k: u64, pad: usize) {
    let seq = publish(
        s,
        topic,
        &format!(r#"{{"k":{k},"pad":"{}"}}"#, "ab".repeat(pad / 2)),
    )
    .await;
    assert_eq!(seq, k);
}

/// A poller of `path` that has asked for what follows seq 1 (the event
/// each test publishes first).
async fn asking_after_1(
    addr: SocketAddr,
    path: &str,
    headers: &str,
    rcvbuf: Option<u32>,
) -> Poller {
    let mut p = Poller::open(addr, path, headers, rcvbuf).await;
    p.next = 1;
    p.ask().await;
    p
}

/// Twelve pollers (json saying `Connection: keep-alive`, lean, json with
/// gzip) held, a publish, every one
/// answered — by the pass when `fanout`, by their tasks otherwise — twenty
/// times on the same connections; the server counts what they got.
async fn rounds(fanout: bool, fanout_spread: FanoutSpread) {
    const ROUNDS: u64 = 20;
    let s = start(Config {
        fanout_spread,
        ..config(fanout)
    })
    .await;
    publish_k(&s, "lp", 1, 600).await;
    let mut pollers = Vec::new();
    for (query, headers) in [
        ("", "connection: keep-alive\r\n"),
        ("&encoding=lean", ""),
        ("", "accept-encoding: gzip\r\n"),
    ] {
        for _ in 0..4 {
            let base = format!("/topics/lp/longpoll?timeout=30{query}");
            let mut p = Poller::open(s.addr(), &base, headers, None).await;
            p.next = 1;
            pollers.push(p);
        }
    }
    let n = pollers.len() as u64;
    for k in 2..2 + ROUNDS {
        for p in &mut pollers {
            p.ask().await;
        }
        if fanout {
            wait_metric(&s, HELD, |v| v == n as f64).await;
        } else {
            wait_gauge(s.addr(), "longpoll", n as f64).await;
        }
        publish_k(&s, "lp", k, 600).await;
        for p in &mut pollers {
            let (ks, res) = p.answer().await;
            assert_eq!(ks, vec![k]);
            assert_eq!(
                res.header("content-encoding").is_some(),
                p.headers.contains("gzip"),
                "gzip when asked and it pays"
            );
        }
    }
    // The pass counts what it wrote just after the write: the counters
    // are waited for, then read.
    let requests = r#"feedgate_requests_total{result="events",transport="longpoll"}"#;
    wait_metric(&s, requests, |v| v as u64 == n * ROUNDS).await;
    let m = scrape(s.addr()).await;
    let answered = if fanout { n * ROUNDS } else { 0 };
    assert_eq!(sample(&m, ANSWERS) as u64, answered);
    let handbacks: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("feedgate_longpoll_fanout_handbacks_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(handbacks, 0.0, "every held poll answered by the pass");
    assert_eq!(
        sample(
            &m,
            r#"feedgate_requests_total{result="events",transport="longpoll"}"#
        ) as u64,
        n * ROUNDS,
        "each request counted once"
    );
    assert_eq!(
        sample(
            &m,
            r#"feedgate_events_delivered_total{transport="longpoll"}"#
        ) as u64,
        n * ROUNDS
    );
    let read: u64 = pollers.iter().map(|p| p.read).sum();
    let key = r#"feedgate_wire_bytes_total{direction="out",transport="longpoll"}"#;
    assert_eq!(
        wait_metric(&s, key, |v| v as u64 == read).await as u64,
        read
    );
    assert_eq!(sample(&m, HELD), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_polls_are_answered_by_the_pass_on_their_connections() {
    rounds(true, FanoutSpread::default()).await;
}

/// The same with the held polls sharing one deliverer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_with_one_deliverer_per_cursor() {
    rounds(true, FanoutSpread::Off).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_fast_path_polls_are_answered_the_same() {
    rounds(false, FanoutSpread::default()).await;
}

/// A poller whose socket takes only part of a large answer: the pass
/// writes what fits, the poll's task the rest; the client reads one whole
/// response, counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_socket_takes_in_part_is_finished_by_its_task() {
    let s = start(Config {
        max_body: 8 << 20,
        ..config(true)
    })
    .await;
    publish_k(&s, "big", 1, 10).await;
    let mut p = asking_after_1(s.addr(), "/topics/big/longpoll?timeout=30", "", Some(4096)).await;
    wait_metric(&s, HELD, |v| v == 1.0).await;
    // Far more than a loopback socket takes unread.
    publish_k(&s, "big", 2, 6 << 20).await;
    let blocked = r#"feedgate_longpoll_fanout_handbacks_total{reason="blocked"}"#;
    wait_metric(&s, blocked, |v| v == 1.0).await;
    let (ks, res) = p.answer().await;
    assert_eq!(ks, vec![2]);
    assert!(res.body.len() > 6 << 20);
    // The connection goes on: the next poll is held and answered.
    p.ask().await;
    wait_metric(&s, HELD, |v| v == 1.0).await;
    publish_k(&s, "big", 3, 10).await;
    assert_eq!(p.answer().await.0, vec![3]);
    let requests = r#"feedgate_requests_total{result="events",transport="longpoll"}"#;
    wait_metric(&s, requests, |v| v == 2.0).await;
    let m = scrape(s.addr()).await;
    assert_eq!(sample(&m, ANSWERS), 1.0, "the whole answer, once");
    assert_eq!(
        sample(
            &m,
            r#"feedgate_requests_total{result="events",transport="longpoll"}"#
        ),
        2.0
    );
    let key = r#"feedgate_wire_bytes_total{direction="out",transport="longpoll"}"#;
    assert_eq!(
        wait_metric(&s, key, |v| v as u64 == p.read).await as u64,
        p.read
    );
}

/// Pollers asking again as fast as they are answered while two publishers
/// publish: polls join the pass, miss it, are handed back or answered by
/// their tasks; each poller still gets every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_racing_publishes_get_every_event_once_in_order() {
    const TOTAL: u64 = 300;
    let s = start(config(true)).await;
    let ep = endpoint(&s);
    let (published_tx, _) = watch::channel(0u64);
    let published_tx = Arc::new(published_tx);
    let mut readers = Vec::new();
    for i in 0..10 {
        let query = if i % 2 == 0 { "" } else { "&encoding=lean" };
        let base = format!("/topics/race/longpoll?timeout=30{query}");
        let mut p = Poller::open(s.addr(), &base, "", None).await;
        readers.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            while (seqs.len() as u64) < TOTAL {
                p.ask().await;
                seqs.extend(p.answer_seqs().await);
            }
            (seqs, p.read)
        }));
    }
    wait_gauge(s.addr(), "longpoll", 10.0).await;
    publish_padded(&ep, "race", TOTAL, 64, &published_tx).await;
    let mut read = 0;
    for r in readers {
        let (seqs, bytes) = r.await.unwrap();
        assert_eq!(seqs, (1..=TOTAL).collect::<Vec<_>>());
        read += bytes;
    }
    let m = scrape(s.addr()).await;
    assert_eq!(
        sample(
            &m,
            r#"feedgate_events_delivered_total{transport="longpoll"}"#
        ) as u64,
        10 * TOTAL
    );
    assert!(sample(&m, ANSWERS) > 0.0, "the pass answered none");
    let key = r#"feedgate_wire_bytes_total{direction="out",transport="longpoll"}"#;
    assert_eq!(
        wait_metric(&s, key, |v| v as u64 == read).await as u64,
        read
    );
    wait_metric(&s, HELD, |v| v == 0.0).await;
}

impl Poller {
    /// The seqs of the next answer (events published by `publish_padded`
    /// carry no `k`: their order is the log's).
    async fn answer_seqs(&mut self) -> Vec<u64> {
        let res = read_response(&mut self.socket).await;
        assert_eq!(res.status, 200);
        self.read += res.wire_len as u64;
        let v = res.json();
        let next = v["next"].as_u64().unwrap();
        let events = v["events"].as_array().unwrap();
        if !self.lean {
            let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
            assert!(seqs.last().is_none_or(|&l| l == next));
        }
        self.epoch = Some(v["epoch"].as_str().unwrap().to_owned());
        self.next = next;
        (next + 1 - events.len() as u64..=next).collect()
    }
}

/// A held poll whose hold runs out is answered empty by its task, and the
/// connection's next poll is held and answered by the pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_that_runs_out_is_answered_empty_and_the_next_is_held() {
    let s = start(config(true)).await;
    publish_k(&s, "t", 1, 10).await;
    let mut p = asking_after_1(s.addr(), "/topics/t/longpoll?timeout=0.3", "", None).await;
    wait_metric(&s, HELD, |v| v == 1.0).await;
    let (ks, _) = p.answer().await;
    assert!(ks.is_empty());
    assert_eq!(p.next, 1);
    wait_metric(&s, HELD, |v| v == 0.0).await;
    p.ask().await;
    wait_metric(&s, HELD, |v| v == 1.0).await;
    publish_k(&s, "t", 2, 10).await;
    assert_eq!(p.answer().await.0, vec![2]);
    wait_metric(&s, ANSWERS, |v| v >= 1.0).await;
    let m = scrape(s.addr()).await;
    assert_eq!(sample(&m, ANSWERS), 1.0);
    assert_eq!(
        sample(
            &m,
            r#"feedgate_requests_total{result="timeout",transport="longpoll"}"#
        ),
        1.0
    );
}

/// A drain answers held polls at once, empty, with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_answers_held_polls() {
    let s = start(config(true)).await;
    publish_k(&s, "d", 1, 10).await;
    let mut pollers = Vec::new();
    for _ in 0..3 {
        pollers.push(asking_after_1(s.addr(), "/topics/d/longpoll?timeout=30", "", None).await);
    }
    wait_metric(&s, HELD, |v| v == 3.0).await;
    let down = tokio::spawn(s.shutdown());
    for p in &mut pollers {
        let (ks, res) = p.answer().await;
        assert!(ks.is_empty());
        assert!(res.header("retry-after").is_some(), "{:?}", res.headers);
    }
    down.await.unwrap().unwrap();
}

/// A poll with an `Origin` gets its own CORS headers: it is held by its
/// task, beside one held on the fast path, and both get the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_with_an_origin_is_answered_with_its_cors_headers() {
    let s = start(config(true)).await;
    publish_k(&s, "o", 1, 10).await;
    let base = "/topics/o/longpoll?timeout=30";
    let mut plain = asking_after_1(s.addr(), base, "", None).await;
    let mut cors = asking_after_1(s.addr(), base, "origin: http://test\r\n", None).await;
    wait_gauge(s.addr(), "longpoll", 2.0).await;
    wait_metric(&s, HELD, |v| v == 1.0).await;
    publish_k(&s, "o", 2, 10).await;
    let (ks, res) = cors.answer().await;
    assert_eq!(ks, vec![2]);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("http://test")
    );
    let (ks, res) = plain.answer().await;
    assert_eq!(ks, vec![2]);
    assert_eq!(res.header("access-control-allow-origin"), None);
    wait_metric(&s, ANSWERS, |v| v >= 1.0).await;
    assert_eq!(sample(&scrape(s.addr()).await, ANSWERS), 1.0);
}

/// A request pipelined behind a poll held on the fast path is answered
/// right after it, not when the hold ends: the poll leaves the fast path
/// when its client sends something, and its task answers it; the
/// pipelined poll is then held on the fast path in its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_pipelined_behind_a_held_poll_is_not_kept_waiting() {
    let s = start(config(true)).await;
    publish_k(&s, "pipe", 1, 10).await;
    // Held far longer than the test's patience.
    let mut p = asking_after_1(s.addr(), "/topics/pipe/longpoll?timeout=60", "", None).await;
    wait_metric(&s, HELD, |v| v == 1.0).await;
    // The next poll, before the first is answered; the first leaves the
    // fast path when it arrives.
    p.next = 2;
    p.ask().await;
    wait_metric(&s, HELD, |v| v == 0.0).await;
    publish_k(&s, "pipe", 2, 10).await;
    assert_eq!(p.answer().await.0, vec![2]);
    // The pipelined poll, read on, is held on the fast path in its turn.
    wait_metric(&s, HELD, |v| v == 1.0).await;
    publish_k(&s, "pipe", 3, 10).await;
    assert_eq!(p.answer().await.0, vec![3]);
    wait_metric(&s, ANSWERS, |v| v >= 1.0).await;
    assert_eq!(sample(&scrape(s.addr()).await, ANSWERS), 1.0);
}
