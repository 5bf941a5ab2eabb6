//! Graceful shutdown: with clients on every transport, WebSockets get close
//! 1001, SSE streams end, held long polls answer, and the server returns
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

    // The long poll was answered at once, empty, with its cursor.
    let res = held.await.unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["events"], serde_json::json!([]));
    assert_eq!(res.json()["next"], 1);
    // The SSE stream ended.
    assert!(matches!(sse.next().await, Err(ClientError::Closed)));
    // The WebSocket got 1001 Going Away.
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
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));
    // And nobody can connect any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
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
