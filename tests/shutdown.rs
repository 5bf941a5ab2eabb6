//! Graceful shutdown: with clients on every transport, WebSockets get close
//! 1012 (service restart), SSE streams end with a jittered `retry:`, held
//! long polls answer with a jittered `Retry-After`, and the server returns
//! within its drain timeout — in-process and as a process sent SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::*;
use feedgate::Config;
use feedgate::client::{ClientError, Delivery};
use feedgate::log::Cursor;
use feedgate::metrics::Transport;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn draining_closes_every_transport_cleanly() {
    let s = start(Config {
        drain_timeout: Duration::from_secs(5),
        ..Config::default()
    })
    .await;
    publish(&s, "d", "1").await;

    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/topics/d/ws?after=0", s.addr()))
            .await
            .unwrap();
    let mut sse = subscribe(&s, "d", Transport::Sse, after(0)).await;
    assert!(matches!(next(&mut sse).await, Delivery::Event(e) if e.seq == 1));
    let addr = s.addr();
    let held = tokio::spawn(async move {
        http(
            addr,
            "GET",
            "/topics/d/longpoll?after=1&timeout=60",
            &[],
            b"",
        )
        .await
    });
    // The ready message and event 1 prove the socket is live.
    for _ in 0..2 {
        assert!(matches!(ws.next().await, Some(Ok(Message::Text(_)))));
    }
    wait_gauge(addr, "longpoll", 1.0).await;

    let began = Instant::now();
    s.shutdown().await.expect("clean shutdown");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "drained well within the timeout"
    );

    // The long poll was answered at once, empty, with its cursor and when
    // to come back: `--sse-retry` (2 s) plus up to `--reconnect-spread`
    // (5 s).
    let res = held.await.unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["events"], serde_json::json!([]));
    assert_eq!(res.json()["next"], 1);
    let ms: u64 = res.header("retry-after-ms").unwrap().parse().unwrap();
    assert!((2000..=7000).contains(&ms), "{ms}");
    let secs: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(secs, ms.div_ceil(1000));
    // The SSE stream ended with a restart hint in the same window.
    match sse.next().await {
        Err(ClientError::Restarting { retry: Some(d) }) => {
            assert!((2000..=7000).contains(&d.as_millis()), "{d:?}")
        }
        other => panic!("expected a restart, got {other:?}"),
    }
    // The WebSocket got 1012 Service Restart.
    let close = loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Restart));
    // And nobody can connect any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Every drained client is told its own delay: the hints of many SSE
/// streams and long polls are spread over `[--sse-retry, --sse-retry +
/// --reconnect-spread]`, not one value for all.
#[tokio::test]
async fn drain_hints_are_jittered_per_client() {
    const CLIENTS: usize = 12;
    let s = start(Config {
        sse_retry: Duration::from_millis(500),
        reconnect_spread: Duration::from_secs(3),
        ..Config::default()
    })
    .await;
    publish(&s, "j", "1").await;
    let addr = s.addr();
    let mut streams = Vec::new();
    for _ in 0..CLIENTS {
        let mut sse = subscribe(&s, "j", Transport::Sse, after(1)).await;
        streams.push(tokio::spawn(async move { sse.next().await }));
    }
    let polls: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(async move {
                http(
                    addr,
                    "GET",
                    "/topics/j/longpoll?after=1&timeout=60",
                    &[],
                    b"",
                )
                .await
            })
        })
        .collect();
    wait_gauge(addr, "longpoll", CLIENTS as f64).await;
    wait_gauge(addr, "sse", CLIENTS as f64).await;
    s.shutdown().await.expect("clean shutdown");

    let mut sse_hints = Vec::new();
    for t in streams {
        match t.await.unwrap() {
            Err(ClientError::Restarting { retry: Some(d) }) => sse_hints.push(d.as_millis()),
            other => panic!("expected a restart hint, got {other:?}"),
        }
    }
    let mut poll_hints = Vec::new();
    for p in polls {
        let res = p.await.unwrap();
        assert_eq!(res.status, 200);
        poll_hints.push(
            res.header("retry-after-ms")
                .unwrap()
                .parse::<u128>()
                .unwrap(),
        );
    }
    for hints in [&sse_hints, &poll_hints] {
        assert!(
            hints.iter().all(|ms| (500..=3500).contains(ms)),
            "{hints:?}"
        );
        let mut distinct = hints.clone();
        distinct.sort();
        distinct.dedup();
        // 12 draws from 3000 values: a repeat is possible, a clump is not.
        assert!(distinct.len() >= CLIENTS - 2, "not jittered: {hints:?}");
        let spread = distinct.last().unwrap() - distinct.first().unwrap();
        assert!(spread >= 1000, "hints bunched together: {hints:?}");
    }
}

/// `--reconnect-spread 0` turns the jitter off: every client is told
/// `--sse-retry` exactly.
#[tokio::test]
async fn a_zero_spread_gives_every_client_sse_retry() {
    let s = start(Config {
        sse_retry: Duration::from_millis(1500),
        reconnect_spread: Duration::ZERO,
        ..Config::default()
    })
    .await;
    let addr = s.addr();
    let poll =
        tokio::spawn(
            async move { http(addr, "GET", "/topics/z/longpoll?timeout=60", &[], b"").await },
        );
    wait_gauge(addr, "longpoll", 1.0).await;
    s.shutdown().await.expect("clean shutdown");
    let res = poll.await.unwrap();
    assert_eq!(res.header("retry-after-ms"), Some("1500"));
    assert_eq!(res.header("retry-after"), Some("2"));
}

#[tokio::test]
async fn sigterm_exits_zero_and_a_restart_means_a_new_epoch() {
    let (first, url) = spawn_binary(&[]);
    let ep = feedgate::client::Endpoint::parse(&url).unwrap();
    feedgate::client::publish(&ep, "restart", b"1".to_vec())
        .await
        .unwrap();
    let mut sub = feedgate::client::Subscriber::connect(
        &ep,
        "restart",
        Transport::Poll,
        after(0),
        Default::default(),
    )
    .await
    .unwrap();
    next(&mut sub).await;
    let old: Cursor = sub.cursor();
    let status = terminate(first);
    assert!(status.success(), "exit status {status:?}");

    let (second, url) = spawn_binary(&[]);
    let ep = feedgate::client::Endpoint::parse(&url).unwrap();
    feedgate::client::publish(&ep, "restart", b"2".to_vec())
        .await
        .unwrap();
    let mut sub = feedgate::client::Subscriber::connect(
        &ep,
        "restart",
        Transport::Ws,
        old,
        Default::default(),
    )
    .await
    .unwrap();
    match next(&mut sub).await {
        Delivery::Reset { reason, .. } => assert_eq!(reason, "epoch_changed"),
        other => panic!("expected a reset after a restart, got {other:?}"),
    }
    sub.close().await;
    assert!(terminate(second).success());
}
