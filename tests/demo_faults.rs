//! `--demo` fault injection reaches connections that are already open: a
//! fault on SSE ends open streams, one on WebSocket closes open sockets
//! (1013), so their clients reconnect into the fault — which is what lets
//! the demo page (and tests/browser) watch a client fall back.

mod common;

use common::*;
use feedgate::Config;
use feedgate::client::{ClientError, Delivery};
use feedgate::log::Cursor;
use feedgate::metrics::Transport;

fn demo_config() -> Config {
    Config {
        demo: true,
        demo_rate: 50.0,
        ..Config::default()
    }
}

async fn set_faults(s: &feedgate::RunningServer, body: &str) {
    let res = http(s.addr(), "POST", "/demo/faults", &[], body.as_bytes()).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
}

/// Reads until the subscriber's stream ends; events before that are fine.
async fn until_closed(sub: &mut feedgate::client::Subscriber) -> ClientError {
    loop {
        match tokio::time::timeout(PATIENCE, sub.next())
            .await
            .expect("the stream ends in time")
        {
            Ok(Delivery::Event(_)) => continue,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => return e,
        }
    }
}

#[tokio::test]
async fn a_fault_ends_open_streams_of_its_transport_only() {
    let s = start(demo_config()).await;
    let mut sse = subscribe(&s, "demo", Transport::Sse, Cursor::default()).await;
    let mut ws = subscribe(&s, "demo", Transport::Ws, Cursor::default()).await;
    events(&mut sse, 2).await;
    events(&mut ws, 2).await;

    // A fault on WebSocket leaves SSE streams alone…
    set_faults(&s, r#"{"ws":"stall"}"#).await;
    assert!(matches!(until_closed(&mut ws).await, ClientError::Closed));
    events(&mut sse, 5).await;

    // …and one on SSE ends them.
    set_faults(&s, r#"{"sse":"refuse"}"#).await;
    assert!(matches!(until_closed(&mut sse).await, ClientError::Closed));

    // Cleared: new subscribers are served again.
    set_faults(&s, "{}").await;
    let mut sse = subscribe(&s, "demo", Transport::Sse, Cursor::default()).await;
    events(&mut sse, 2).await;
}
