//! `GET /echo` (only with `serve --echo`): a WebSocket that sends every text
//! and binary message back, for protocol conformance tests (the Autobahn
//! fuzzingclient cases, `scripts/autobahn-test.sh`).
//!
//! It is not a feature: it exists so that a conformance suite, which needs a
//! peer that answers, exercises the *same* WebSocket layer as the subscriber
//! endpoint — the handshake check ([`ws::accept_key`]), the socket settings
//! ([`ws::socket_config`]), the close codes after a protocol error
//! ([`ws::close_for`]) and the close handshake ([`ws::close`]). Only the
//! message size limit differs (`--echo-max-message`), so that the large
//! Autobahn 9.x messages fit without raising the subscribers' limit.
//!
//! Its bytes are counted as `ws`, request head included (as every upgraded
//! socket's are): it carries no events, so it would skew the `ws` wire bytes
//! per event of a benchmark — never run echo traffic next to one.

use futures_util::{SinkExt, StreamExt};
use hyper::Request;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{deflate, handshake as ws};
use crate::app::App;
use crate::error::ApiError;
use crate::server::Conn;
use crate::transport::Reply;

/// `GET /echo` (or an extended CONNECT): validates the handshake, answers
/// it, and echoes on the upgraded socket in a task tracked for drain.
pub(crate) fn accept(
    app: &App,
    req: &mut Request<Incoming>,
    conn: &Conn,
) -> Result<Reply, ApiError> {
    let opening = ws::opening(req)?;
    let deflate = ws::extension(app, req.headers());
    let params = deflate.as_ref().map(|d| d.0);
    let on_upgrade = hyper::upgrade::on(req);
    let session_app = app.clone();
    let mut reply = ws::switch_protocols(app, on_upgrade, conn, opening, move |upgraded| {
        run(session_app, upgraded, params)
    });
    ws::agree(&mut reply, deflate);
    Ok(reply)
}

/// Echoes until the peer closes, breaks the protocol, goes quiet for longer
/// than a subscriber may (`ws_ping_interval + ws_pong_timeout`), or the
/// server drains.
async fn run(app: App, upgraded: Upgraded, deflate: Option<deflate::Params>) {
    let cfg = app.config();
    let mut ws = ws::server_socket(upgraded, deflate, cfg.echo_max_message).await;
    let idle = cfg.ws_ping_interval + cfg.ws_pong_timeout;
    let mut stop = app.stop_watch();
    let close_frame = loop {
        let msg = tokio::select! {
            biased;
            _ = stop.stopped() => break Some(ws::restarting()),
            msg = tokio::time::timeout(idle, ws.next()) => msg,
        };
        let Ok(msg) = msg else {
            break Some(CloseFrame {
                code: CloseCode::Policy,
                reason: "idle".into(),
            });
        };
        let reply = match msg {
            None => break None,
            Some(Err(e)) => break ws::close_for(&e),
            // With permessage-deflate, echoes go compressed like any
            // message this server sends (each on its own).
            Some(Ok(Message::Text(t))) => Some(deflate::message(deflate, true, t.into())),
            Some(Ok(Message::Binary(b))) => Some(deflate::message(deflate, false, b)),
            // tungstenite queued the pong (or the close reply); `flush`
            // sends it now rather than on the next read.
            Some(Ok(Message::Ping(_))) => None,
            Some(Ok(Message::Close(_))) => {
                let _ = tokio::time::timeout(cfg.write_timeout, ws.flush()).await;
                break None;
            }
            Some(Ok(_)) => continue,
        };
        let write = async {
            if let Some(m) = reply {
                ws.feed(m).await?;
            }
            ws.flush().await
        };
        if !matches!(
            tokio::time::timeout(cfg.write_timeout, write).await,
            Ok(Ok(()))
        ) {
            break None;
        }
    };
    ws::close(&mut ws, close_frame).await;
}
