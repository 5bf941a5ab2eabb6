//! What every subscriber's Feed promises, whatever the transport: the end
//! conditions (here: drain) reach a subscriber that lags behind a busy
//! topic between batches, not after the backlog; and any event the server
//! accepted can be delivered on every transport.

mod common;

use std::time::{Duration, Instant};

use common::*;
use feedgate::Config;
use feedgate::log::Retention;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn a_lagging_websocket_hears_the_drain_before_its_backlog() {
    const EVENTS: usize = 4000;
    let s = start(Config {
        max_batch: 10,
        retention: Retention {
            max_events: EVENTS,
            max_age: None,
        },
        drain_timeout: Duration::from_secs(20),
        write_timeout: Duration::from_secs(60),
        ..Config::default()
    })
    .await;
    // 32 MB of backlog: far more than the socket buffers between the two.
    let payload = format!("\"{}\"", "x".repeat(8 << 10));
    let publishers: Vec<_> = (0..8)
        .map(|_| {
            let ep = endpoint(&s);
            let body = payload.clone().into_bytes();
            tokio::spawn(async move {
                for _ in 0..EVENTS / 8 {
                    feedgate::client::publish(&ep, "busy", body.clone())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    let url = format!("ws://{}/topics/busy/ws?after=0", s.addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // `ready` and a first event: the session is live and now lags.
    for _ in 0..2 {
        assert!(matches!(ws.next().await, Some(Ok(Message::Text(_)))));
    }
    let began = Instant::now();
    let drain = tokio::spawn(s.shutdown());
    let mut received = 0;
    let close = loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("no hang")
        {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close: {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Restart));
    assert!(
        received < EVENTS - 1,
        "the close came after the whole backlog ({received} events): shutdown was not checked between batches"
    );
    drain.await.unwrap().expect("clean shutdown");
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "drained before its timeout"
    );
}

#[tokio::test]
async fn a_large_event_after_others_reaches_websocket_subscribers() {
    // The default --max-body (1 MiB): an event that size, after one just
    // small enough to sit in the 16 KiB write buffer unflushed (with the
    // `ready` message): the two together overflowed tungstenite's old cap.
    let s = start(Config::default()).await;
    let max = Config::default().max_body;
    publish(&s, "big", &format!("\"{}\"", "a".repeat(16_240))).await;
    publish(&s, "big", &format!("\"{}\"", "b".repeat(max - 2))).await;
    let url = format!("ws://{}/topics/big/ws?after=0", s.addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut sizes = Vec::new();
    while sizes.len() < 3 {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("no hang")
        {
            Some(Ok(Message::Text(t))) => sizes.push(t.len()),
            other => panic!("expected ready and both events, got {other:?}"),
        }
    }
    assert!(sizes[1] > 16_240, "{sizes:?}");
    assert!(sizes[2] > max, "the 1 MiB event arrived whole: {sizes:?}");
}
