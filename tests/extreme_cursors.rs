//! Cursors and numbers at the edges of their types, on every transport: a
//! client may send any `u64` (or more digits than fit) as `after`, in a
//! LIST, in `Last-Event-ID` or in a `subscribe` message, and a `timeout` of
//! any size. Each gets an answer — a reset, an error, events — and the
//! server goes on serving: no request may panic a task (a debug build
//! panics on any overflow, so these tests run with overflow checks on).

mod common;

use common::*;
use feedgate::Config;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const MAX: &str = "18446744073709551615";
const TOO_BIG: &str = "18446744073709551616";

#[tokio::test]
async fn edge_cursors_get_answers_on_every_transport() {
    let s = start(Config::default()).await;
    for i in 0..3 {
        publish(&s, "t", &i.to_string()).await;
    }
    let epoch = http(s.addr(), "GET", "/topics/t/poll?after=0", &[], b"")
        .await
        .json()["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    let cursors = [
        MAX.to_owned(),
        TOO_BIG.to_owned(),
        format!("{epoch}:{MAX}"),
        format!("ffffffffffffffff:{MAX}"),
        format!("{epoch}:{TOO_BIG}"),
        "-1".to_owned(),
    ];
    for c in &cursors {
        for path in [
            format!("/topics/t/poll?after={c}"),
            format!("/topics/t/longpoll?after={c}&timeout=0"),
            format!("/poll?topics=t@{c}"),
            format!("/longpoll?topics=t@{c},u@{c}&timeout=0"),
            format!("/topics/t/poll?after={c}&timeout={MAX}"),
            format!("/topics/t/longpoll?after=0&timeout={TOO_BIG}"),
        ] {
            let res = http(s.addr(), "GET", &path, &[], b"").await;
            assert!(
                res.status == 200 || res.status == 400,
                "{path}: {} {}",
                res.status,
                String::from_utf8_lossy(&res.body)
            );
        }
        // SSE: the answer's head (200 with a reset, or 400), via
        // Last-Event-ID and `after`.
        for (path, id) in [
            (format!("/topics/t/sse?after={c}"), None),
            ("/topics/t/sse".to_owned(), Some(c.clone())),
            ("/sse?topics=t,u".to_owned(), Some(format!("t@{c},u@{c}"))),
        ] {
            let head = sse_head(s.addr(), &path, id.as_deref()).await;
            assert!(
                head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 400"),
                "{path} {id:?}: {head}"
            );
        }
        // WebSocket: in the URL, and in a subscribe message.
        let url = format!("ws://{}/topics/t/ws?after={c}", s.addr());
        match tokio_tungstenite::connect_async(url).await {
            Ok((mut ws, _)) => {
                let first = tokio::time::timeout(PATIENCE, ws.next())
                    .await
                    .expect("an answer");
                assert!(
                    matches!(first, Some(Ok(Message::Text(_)))),
                    "{c}: {first:?}"
                );
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status(), 400, "{c}");
            }
            Err(e) => panic!("{c}: {e}"),
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", s.addr()))
            .await
            .unwrap();
        let msg = serde_json::json!({"type":"subscribe","topic":"t","after":c}).to_string();
        ws.send(Message::text(msg)).await.unwrap();
        let answer = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("an answer");
        let Some(Ok(Message::Text(text))) = answer else {
            panic!("{c}: {answer:?}")
        };
        assert!(
            text.contains(r#""type":"subscribed""#) || text.contains(r#""type":"error""#),
            "{c}: {text}"
        );
    }
    // Still serving, and the events are intact.
    let res = http(s.addr(), "GET", "/topics/t/poll?after=0", &[], b"").await;
    assert_eq!(res.json()["events"].as_array().unwrap().len(), 3);
}

/// The head of an SSE answer.
async fn sse_head(addr: std::net::SocketAddr, path: &str, id: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let id = id.map_or(String::new(), |id| format!("last-event-id: {id}\r\n"));
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n{id}\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, conn.read(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
