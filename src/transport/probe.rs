//! `GET /probe/{ws|sse|longpoll|poll}`: timed test traffic for diagnosing
//! the network path between a client and feedgate (`feedgate doctor`).
//!
//! A probe needs no token, names no topic and creates nothing in the log. It
//! sends what the real transport would send through the same proxy — the
//! same status, content type and headers (`X-Accel-Buffering: no` on SSE),
//! the same WebSocket handshake — but its messages carry the server's send
//! time and the body bytes sent so far, so that the client can see what the
//! path did to them:
//!
//! - streams (`sse`, `ws`) send a `hello`, then `count` events `interval`
//!   apart, then stay silent for `idle` seconds (no heartbeat, no ping) and
//!   end with an `end` message: late and bunched arrivals mean a buffering
//!   proxy; a stream cut during the silence names the path's idle timeout;
//! - `longpoll` holds the request `hold` seconds and answers: an earlier
//!   error or close means the path truncates long polls;
//! - `poll` answers at once with what the server saw of the request (HTTP
//!   version, proxy headers, `Accept-Encoding`) and `pad` bytes of
//!   compressible padding, whose uncompressed length is in
//!   `X-Feedgate-Probe-Bytes`: fewer bytes received means the path
//!   compresses.
//!
//! Every parameter is capped (see the constants); admission rate-limits
//! probes per client IP (as publishes are, `X-Forwarded-For` from a
//! `--trusted-proxy` believed) and bounds their number at once, per client
//! and in all (`ratelimit::ProbeGate`). Their wire bytes count under the transport they test
//! (they are that transport's traffic on the path); they deliver no event,
//! so `feedgate_events_delivered_total` and the latency histogram never see
//! them. The exact bytes are written down in docs/protocol.md.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::Reply;
use super::ws::handshake as ws;
use crate::app::App;
use crate::error::ApiError;
use crate::http::response;
use crate::log::unix_micros;
use crate::metrics::{Outcome, Transport};
use crate::ratelimit::ProbeSlot;
use crate::server::Conn;
use crate::sync::stop_signal::StopWatch;

pub use crate::protocol::probe::{BYTES_HEADER, MAX_COUNT, MAX_IDLE, MAX_PAD};

/// Timed events when the client names no `count`.
const DEFAULT_COUNT: u32 = 5;
/// Bounds and default of the gap between timed events.
const MIN_INTERVAL: Duration = Duration::from_millis(50);
const MAX_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);
/// Request headers that reveal a proxy on the path, reported back.
const PROXY_HEADERS: [&str; 5] = [
    "via",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-real-ip",
];

/// What a probe was asked for, capped.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Params {
    count: u32,
    interval: Duration,
    idle: Duration,
    hold: Duration,
    pad: usize,
}

impl Params {
    /// Reads `count`, `interval_ms`, `idle`, `hold` (seconds) and `pad`;
    /// values past a cap are lowered to it, unknown parameters ignored.
    fn parse(raw: Option<&str>, default_hold: Duration) -> Result<Params, ApiError> {
        let mut p = Params {
            count: DEFAULT_COUNT,
            interval: DEFAULT_INTERVAL,
            idle: Duration::ZERO,
            hold: default_hold.min(MAX_IDLE),
            pad: 0,
        };
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let num = || {
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| ApiError::InvalidQuery(format!("{k}={v}: expected a number")))
            };
            let secs = |n: f64| Duration::from_secs_f64(n.min(MAX_IDLE.as_secs_f64()));
            match &*k {
                "count" => p.count = num()?.min(f64::from(MAX_COUNT)) as u32,
                "interval_ms" => {
                    let ms = Duration::from_millis(num()?.min(1e6) as u64);
                    p.interval = ms.clamp(MIN_INTERVAL, MAX_INTERVAL);
                }
                "idle" => p.idle = secs(num()?),
                "hold" => p.hold = secs(num()?),
                "pad" => p.pad = num()?.min(MAX_PAD as f64) as usize,
                _ => {}
            }
        }
        Ok(p)
    }
}

/// What the server saw of the request, and its own timing settings: told
/// in every probe's first message.
fn hello(
    app: &App,
    t: Transport,
    p: &Params,
    headers: &HeaderMap,
    version: Version,
) -> serde_json::Value {
    let cfg = app.config();
    let proxy_headers: Vec<&str> = PROXY_HEADERS
        .into_iter()
        .filter(|h| headers.contains_key(*h))
        .collect();
    let accept_encoding = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    json!({
        "type": "hello",
        "probe": t.as_str(),
        "http": format!("{version:?}"),
        "proxy_headers": proxy_headers,
        "accept_encoding": accept_encoding,
        "count": p.count,
        "interval_ms": p.interval.as_millis() as u64,
        "idle_s": p.idle.as_secs_f64(),
        "hold_s": p.hold.as_secs_f64(),
        "sse_heartbeat_s": cfg.sse_heartbeat.as_secs_f64(),
        "ws_ping_s": cfg.ws_ping_interval.as_secs_f64(),
        "longpoll_max_s": cfg.longpoll_max.as_secs_f64(),
        "sent_us": unix_micros(),
    })
}

/// `pad` bytes of compressible text (a gzip on the path shrinks it ~20×).
fn padding(pad: usize) -> String {
    "feedgate-probe-padding;"
        .chars()
        .cycle()
        .take(pad)
        .collect()
}

/// `GET /probe/{transport}`, admitted with its `slot` (given back when the
/// probe ends).
pub(crate) async fn probe(
    app: &App,
    t: Transport,
    slot: ProbeSlot,
    req: &mut Request<Incoming>,
    conn: &Conn,
) -> Result<Reply, ApiError> {
    let p = Params::parse(req.uri().query(), app.config().longpoll_default)?;
    // A refused upgrade (the path dropped `Upgrade`) answers the same 400
    // as a real subscription would.
    let opening = match t {
        Transport::Ws => Some(ws::opening(req)?),
        _ => None,
    };
    let hello = hello(app, t, &p, req.headers(), req.version());
    let mut reply = match (t, opening) {
        (Transport::Poll, _) => poll(hello, &p),
        (Transport::LongPoll, _) => long_poll(app, hello, &p, slot).await,
        (Transport::Sse, _) => sse(app, hello, p, slot),
        (_, Some(opening)) => {
            let on_upgrade = hyper::upgrade::on(req);
            let session_app = app.clone();
            return Ok(ws::switch_protocols(
                app,
                on_upgrade,
                conn,
                opening,
                move |up| ws_session(session_app, up, hello, p, slot),
            ));
        }
        (_, None) => return Err(ApiError::NotFound(req.uri().path().to_owned())),
    };
    // A probe's connection is the doctor's, used once: kept alive it would
    // stay counted under the probed transport in `feedgate_connections`.
    // (HTTP/2 has no `Connection` header: its streams end by themselves.)
    if conn.h1.is_some() {
        reply
            .response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(reply)
}

/// The short-poll probe: the hello and the padding, at once.
fn poll(mut hello: serde_json::Value, p: &Params) -> Reply {
    hello["pad"] = padding(p.pad).into();
    let body = serde_json::to_vec(&hello).unwrap_or_default();
    let mut res = response::json(StatusCode::OK, body.clone());
    let h = res.headers_mut();
    h.insert(BYTES_HEADER, HeaderValue::from(body.len()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Reply::new(res, Outcome::Ok)
}

/// The long-poll probe: holds `hold`, then answers the hello with
/// `held_ms` (shorter when the server drains: `"ended":"shutdown"`).
async fn long_poll(app: &App, mut hello: serde_json::Value, p: &Params, slot: ProbeSlot) -> Reply {
    let start = Instant::now();
    let mut stop = app.stop_watch();
    let ended = tokio::select! {
        _ = tokio::time::sleep(p.hold) => "hold",
        _ = stop.stopped() => "shutdown",
    };
    drop(slot);
    hello["held_ms"] = (start.elapsed().as_millis() as u64).into();
    hello["ended"] = ended.into();
    hello["sent_us"] = unix_micros().into();
    let mut res = response::json(
        StatusCode::OK,
        serde_json::to_vec(&hello).unwrap_or_default(),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Reply::new(res, Outcome::Ok)
}

/// Where a stream probe is in its script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The next message is timed event `seq` (1-based), due at the time.
    Event(u32),
    /// All events sent; silent until the time, then `end`.
    Idle,
    Done,
}

/// A stream probe's script, shared by SSE and WebSocket: what to send
/// next and when.
struct Script {
    p: Params,
    step: Step,
    due: Instant,
    pad: String,
    /// Body bytes (SSE) or message bytes (WebSocket) sent so far.
    sent_bytes: u64,
}

impl Script {
    fn new(p: Params) -> Self {
        Script {
            step: if p.count == 0 {
                Step::Idle
            } else {
                Step::Event(1)
            },
            due: Instant::now() + if p.count == 0 { p.idle } else { p.interval },
            pad: padding(p.pad),
            p,
            sent_bytes: 0,
        }
    }

    /// The next message's JSON and SSE event name once it is due; `None`
    /// when the script is over. `shutdown` ends the silence at once.
    async fn next(&mut self, stop: &mut StopWatch) -> Option<(&'static str, String)> {
        if self.step == Step::Done {
            return None;
        }
        let ended = tokio::select! {
            _ = tokio::time::sleep_until(self.due) => "script",
            _ = stop.stopped() => "shutdown",
        };
        let now = unix_micros();
        let msg = match self.step {
            Step::Event(seq) if ended == "script" => {
                let more = seq < self.p.count;
                self.step = if more {
                    Step::Event(seq + 1)
                } else {
                    Step::Idle
                };
                self.due += if more { self.p.interval } else { self.p.idle };
                (
                    "probe",
                    json!({"type": "probe", "seq": seq, "sent_us": now,
                           "sent_bytes": self.sent_bytes, "pad": self.pad})
                    .to_string(),
                )
            }
            _ => {
                self.step = Step::Done;
                (
                    "end",
                    json!({"type": "end", "ended": ended, "sent_us": now,
                           "sent_bytes": self.sent_bytes})
                    .to_string(),
                )
            }
        };
        Some(msg)
    }
}

/// The SSE probe: `text/event-stream` with the real stream's headers.
fn sse(app: &App, hello: serde_json::Value, p: Params, slot: ProbeSlot) -> Reply {
    let stop = app.stop_watch();
    let first = Bytes::from(format!(
        "retry: {}\nevent: hello\ndata: {hello}\n\n",
        app.config().sse_retry.as_millis()
    ));
    let mut script = Script::new(p);
    script.sent_bytes = first.len() as u64;
    let opening = futures_util::stream::once(async move { first });
    let rest =
        futures_util::stream::unfold((script, stop, slot), |(mut s, mut stop, slot)| async move {
            let (event, data) = s.next(&mut stop).await?;
            let mut b = BytesMut::with_capacity(data.len() + 24);
            b.extend_from_slice(format!("event: {event}\ndata: {data}\n\n").as_bytes());
            s.sent_bytes += b.len() as u64;
            Some((b.freeze(), (s, stop, slot)))
        });
    let frames = opening.chain(rest).map(|b| Ok(Frame::data(b)));
    let mut res = Response::new(StreamBody::new(frames.boxed()).boxed_unsync());
    crate::http::event_stream::headers(res.headers_mut());
    Reply::new(res, Outcome::Stream)
}

/// The WebSocket probe: one text frame per message, then a close 1000.
/// No ping is sent, so the silence is real; the peer's close, pings and
/// messages are answered or ignored as on a subscriber socket.
async fn ws_session(
    app: App,
    upgraded: Upgraded,
    hello: serde_json::Value,
    p: Params,
    slot: ProbeSlot,
) {
    let cfg = app.config();
    let conf = ws::socket_config(4096);
    let mut sock =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(conf)).await;
    let write_timeout = cfg.write_timeout;
    let mut script = Script::new(p);
    let hello = hello.to_string();
    script.sent_bytes = hello.len() as u64;
    let sent = tokio::time::timeout(write_timeout, sock.send(Message::text(hello))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let mut stop = app.stop_watch();
    let close = loop {
        tokio::select! {
            msg = sock.next() => match msg {
                None => break None,
                Some(Err(e)) => break ws::close_for(&e),
                Some(Ok(Message::Close(_))) => {
                    let _ = tokio::time::timeout(write_timeout, sock.flush()).await;
                    break None;
                }
                Some(Ok(Message::Ping(_))) => {
                    let _ = tokio::time::timeout(write_timeout, sock.flush()).await;
                }
                Some(Ok(_)) => {}
            },
            next = script.next(&mut stop) => match next {
                Some((kind, text)) => {
                    script.sent_bytes += text.len() as u64;
                    let sent = tokio::time::timeout(write_timeout, sock.send(Message::text(text))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break None;
                    }
                    if kind == "end" {
                        break Some(if stop.is_stopped() {
                            ws::restarting()
                        } else {
                            CloseFrame { code: CloseCode::Normal, reason: "probe done".into() }
                        });
                    }
                }
                None => break None,
            },
        }
    };
    ws::close(&mut sock, close).await;
    drop(slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_capped_not_refused() {
        let d = Duration::from_secs(30);
        let p = Params::parse(
            Some("count=1000&interval_ms=1&idle=1e9&hold=7.5&pad=99999&x=y"),
            d,
        )
        .unwrap();
        assert_eq!(p.count, MAX_COUNT);
        assert_eq!(p.interval, MIN_INTERVAL);
        assert_eq!(p.idle, MAX_IDLE);
        assert_eq!(p.hold, Duration::from_millis(7500));
        assert_eq!(p.pad, MAX_PAD);
        let p = Params::parse(None, d).unwrap();
        assert_eq!(
            (p.count, p.interval, p.idle, p.hold, p.pad),
            (5, DEFAULT_INTERVAL, Duration::ZERO, d, 0)
        );
        for bad in ["count=-1", "idle=NaN", "pad=x", "hold=inf"] {
            assert!(Params::parse(Some(bad), d).is_err(), "{bad}");
        }
    }

    #[test]
    fn padding_has_the_asked_length() {
        assert_eq!(padding(0), "");
        assert_eq!(padding(100).len(), 100);
    }
}
