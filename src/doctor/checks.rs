//! The measurements: one run per transport against the server's
//! `/probe/…`, through whatever is in between. Nothing is judged here (see
//! `verdict.rs`); each run records what arrived and when, by the local
//! clock, next to the server's send times.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use flate2::write::GzDecoder;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Response};
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::progress::{Check, span};
use crate::client::{self, ClientError, Endpoint, HttpConn, Link, SseParser};
use crate::protocol::probe;
use crate::wire::ByteCount;

/// How long a single ordinary request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Request header sizes tried, smallest first (bytes of one header value).
pub const HEADER_SIZES: [usize; 5] = [2 << 10, 6 << 10, 12 << 10, 24 << 10, 48 << 10];
/// Padding asked of the poll probe: enough for a compressing proxy to
/// bother (nginx's `gzip_min_length` is 20 bytes; many CDNs use 1 KiB).
const POLL_PAD: usize = 2048;

/// Local time, as seconds since the run started and as Unix microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_unix_us: i64,
}

impl Clock {
    /// Starts the clock now.
    pub fn start() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        Clock {
            start: Instant::now(),
            start_unix_us: unix,
        }
    }

    /// Seconds since the start.
    pub fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Unix microseconds, by the local clock, of `at_s` since the start.
    pub fn unix_us(&self, at_s: f64) -> i64 {
        self.start_unix_us + (at_s * 1e6) as i64
    }
}

/// What the stream probes are asked for.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Timed events.
    pub count: u32,
    /// Gap between them.
    pub interval: Duration,
    /// Silence after them.
    pub idle: Duration,
}

impl Plan {
    fn query(&self) -> String {
        format!(
            "count={}&interval_ms={}&idle={}",
            self.count,
            self.interval.as_millis(),
            self.idle.as_secs_f64()
        )
    }

    /// The longest a stream probe may take before the doctor gives up on
    /// it: its script plus a margin for a slow path.
    pub fn deadline(&self) -> Duration {
        self.interval * self.count + self.idle + Duration::from_secs(10)
    }
}

/// One message of a stream probe as it arrived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Local arrival, seconds since the run started.
    pub at_s: f64,
    /// The server's send time, Unix µs.
    pub sent_us: u64,
}

/// A short-poll probe: what the server saw, and what the path did to the
/// answer.
#[derive(Debug, Clone, Default)]
pub struct PollRun {
    /// The status, when an answer came.
    pub status: Option<u16>,
    /// Why no usable answer came.
    pub error: Option<String>,
    /// Request sent → response complete, ms.
    pub rtt_ms: f64,
    /// The HTTP version of the answer the doctor got.
    pub http_version: String,
    /// What its connection agreed to speak.
    pub link: Option<Link>,
    /// The probe's body (decompressed if need be).
    pub hello: Option<Value>,
    /// `Content-Encoding` of the answer.
    pub content_encoding: Option<String>,
    /// Body bytes received (compressed, if it was).
    pub body_received: u64,
    /// Body bytes the server sent (`X-Feedgate-Probe-Bytes`).
    pub body_sent: Option<u64>,
    /// Server clock minus local clock, µs, and its uncertainty (half the
    /// round trip), s.
    pub clock_offset: Option<(i64, f64)>,
}

/// The largest request header that passed, and the first that did not.
#[derive(Debug, Clone, Default)]
pub struct HeaderLimit {
    /// Bytes of the largest header value answered `200`.
    pub accepted: Option<usize>,
    /// Bytes of the first header value refused, and how.
    pub refused: Option<(usize, String)>,
}

/// A stream probe (SSE or WebSocket).
#[derive(Debug, Clone, Default)]
pub struct StreamRun {
    /// The status of the response (`101` for an upgraded WebSocket).
    pub status: Option<u16>,
    /// Why the stream did not open, when it did not.
    pub error: Option<String>,
    /// The probe's hello, once it arrived.
    pub hello: Option<Value>,
    /// When the hello arrived.
    pub hello_at: Option<Arrival>,
    /// The timed events, as they arrived.
    pub events: Vec<Arrival>,
    /// The closing message, if it arrived.
    pub end: Option<Arrival>,
    /// When the last message arrived (seconds since the run started).
    pub last_at_s: f64,
    /// When the stream ended, whoever ended it.
    pub ended_at_s: f64,
    /// How it ended: `end` (the probe's script ran out), `eof`, `close
    /// CODE`, `error: …`, `deadline` (the doctor gave up waiting).
    pub ended_how: String,
    /// `Content-Encoding` of an SSE response.
    pub content_encoding: Option<String>,
    /// Body bytes received as they came (compressed, if they were).
    pub wire_bytes: u64,
    /// Body bytes once decompressed.
    pub decoded_bytes: u64,
    /// The server's `sent_bytes` in its `end` message.
    pub server_sent_bytes: Option<u64>,
    /// What its connection agreed to speak.
    pub link: Option<Link>,
    /// A WebSocket on an HTTP/2 path: whether it rode HTTP/2 (RFC 8441) or
    /// went over HTTP/1.1 because the path does not allow that.
    pub ws_over_h2: Option<bool>,
}

impl StreamRun {
    /// Says on `check` what the stream waits for now.
    fn show(&self, check: &Check, plan: Plan) {
        let got = self.events.len();
        if self.hello.is_none() {
            check.phase("waiting for the probe's first message");
        } else if got < plan.count as usize {
            check.phase("timed events");
            check.detail(&format!("timed events: {got} of {}", plan.count));
        } else if self.end.is_none() {
            check.phase(&format!(
                "silent for up to {}, to find the path's idle timeout",
                span(plan.idle)
            ));
        }
    }

    /// Records one message of the probe that arrived at `at_s`.
    fn record(&mut self, kind: &str, json: &str, at_s: f64) {
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            return;
        };
        let sent_us = v.get("sent_us").and_then(Value::as_u64).unwrap_or(0);
        let arrival = Arrival { at_s, sent_us };
        self.last_at_s = at_s;
        match kind {
            "hello" => {
                self.hello_at = Some(arrival);
                self.hello = Some(v);
            }
            "probe" => self.events.push(arrival),
            "end" => {
                self.server_sent_bytes = v.get("sent_bytes").and_then(Value::as_u64);
                self.end = Some(arrival);
            }
            _ => {}
        }
    }
}

/// A long-poll probe: a quick one (hold 0) and one held.
#[derive(Debug, Clone, Default)]
pub struct LongPollRun {
    /// The quick one's round trip, ms, when it was answered `200`.
    pub quick_rtt_ms: Option<f64>,
    /// Why the quick one failed, when it did.
    pub quick_error: Option<String>,
    /// The hold asked for, s.
    pub hold_s: f64,
    /// When the held one was answered (or failed), s after it was sent.
    pub answered_after_s: f64,
    /// The held one's status, when it was answered.
    pub status: Option<u16>,
    /// How long the server says it held, s.
    pub server_held_s: Option<f64>,
    /// Why the held one failed, when it did.
    pub error: Option<String>,
    /// What its connection agreed to speak.
    pub link: Option<Link>,
}

fn err_text(e: &ClientError) -> String {
    match e {
        ClientError::Status { status, body } => {
            format!("{status}: {}", snippet(body))
        }
        e => e.to_string(),
    }
}

/// The first line of an error body, cut short.
fn snippet(body: &str) -> String {
    // A JSON error from feedgate: its message says it best.
    if let Ok(v) = serde_json::from_str::<Value>(body)
        && let Some(m) = v["error"]["message"].as_str()
    {
        return m.to_owned();
    }
    let line = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.chars().take(120).collect()
}

/// Sends one GET on a fresh connection, bounded by `within`; the answer
/// and what the connection agreed to speak.
async fn get(
    ep: &Endpoint,
    path: &str,
    headers: &[(&str, String)],
    within: Duration,
) -> Result<(Response<Incoming>, Link), String> {
    let attempt = async {
        let mut http = HttpConn::connect(ep, Arc::new(ByteCount::default())).await?;
        let res = http.send(Method::GET, path, headers, None).await?;
        Ok::<_, ClientError>((res, http.link()))
    };
    match tokio::time::timeout(within, attempt).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(err_text(&e)),
        Err(_) => Err(format!("no answer within {} s", within.as_secs())),
    }
}

/// Reads a whole body, bounded.
async fn collect(body: Incoming, within: Duration) -> Result<Bytes, String> {
    match tokio::time::timeout(within, body.collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) => Err(format!("body: {e}")),
        Err(_) => Err("body did not complete in time".into()),
    }
}

/// Decompresses a whole gzip body.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut d = GzDecoder::new(Vec::new());
    d.write_all(bytes)
        .and_then(|()| d.finish())
        .map_err(|e| format!("gzip: {e}"))
}

/// The short-poll probe, sent as a browser would (`Accept-Encoding: gzip`).
pub async fn poll(ep: &Endpoint, clock: &Clock) -> PollRun {
    match tokio::time::timeout(REQUEST_TIMEOUT, poll_inner(ep, clock)).await {
        Ok(run) => run,
        Err(_) => PollRun {
            error: Some(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())),
            ..Default::default()
        },
    }
}

async fn poll_inner(ep: &Endpoint, clock: &Clock) -> PollRun {
    let mut run = PollRun::default();
    let path = ep.path(&format!("probe/poll?pad={POLL_PAD}"));
    let t0 = clock.now_s();
    let headers = [("accept-encoding", "gzip".to_owned())];
    let res = match get(ep, &path, &headers, REQUEST_TIMEOUT).await {
        Ok((r, link)) => {
            run.link = Some(link);
            r
        }
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    let t_head = clock.now_s();
    run.status = Some(res.status().as_u16());
    run.http_version = format!("{:?}", res.version());
    let h = res.headers();
    run.content_encoding = h
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    run.body_sent = h
        .get(probe::BYTES_HEADER)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let ok = res.status().is_success();
    let body = match collect(res.into_body(), REQUEST_TIMEOUT).await {
        Ok(b) => b,
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    run.rtt_ms = (clock.now_s() - t0) * 1e3;
    run.body_received = body.len() as u64;
    if !ok {
        run.error = Some(format!(
            "{}: {}",
            run.status.unwrap_or(0),
            snippet(&String::from_utf8_lossy(&body))
        ));
        return run;
    }
    let plain = match run.content_encoding.as_deref() {
        Some("gzip") => match gunzip(&body) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                run.error = Some(e);
                return run;
            }
        },
        _ => body,
    };
    match serde_json::from_slice::<Value>(&plain) {
        Ok(v) => {
            if let Some(sent) = v.get("sent_us").and_then(Value::as_u64) {
                // The server stamped its answer between sending our
                // request and our reading its head: its midpoint is the
                // best guess, off by at most half of that.
                let mid = (clock.unix_us(t0) + clock.unix_us(t_head)) / 2;
                run.clock_offset = Some((sent as i64 - mid, (t_head - t0) / 2.0));
            }
            run.hello = Some(v);
        }
        Err(e) => {
            run.error = Some(format!(
                "not a probe answer ({e}): is this a feedgate server?"
            ))
        }
    }
    run
}

/// Sends ever larger request headers until one is refused (each within
/// 5 s: a proxy that hangs on a large head counts as refusing it).
pub async fn header_limit(ep: &Endpoint, check: &Check) -> HeaderLimit {
    const WITHIN: Duration = Duration::from_secs(5);
    let mut limit = HeaderLimit::default();
    let path = ep.path("probe/poll");
    for size in HEADER_SIZES {
        check.detail(&format!("a request header of {} KiB", size >> 10));
        let headers = [("x-feedgate-probe-header", "h".repeat(size))];
        let refused = match get(ep, &path, &headers, WITHIN).await {
            Ok((res, _)) if res.status().is_success() => {
                let _ = collect(res.into_body(), WITHIN).await;
                None
            }
            Ok((res, _)) => Some(res.status().as_u16().to_string()),
            Err(e) => Some(e),
        };
        match refused {
            None => limit.accepted = Some(size),
            Some(how) => {
                limit.refused = Some((size, how));
                break;
            }
        }
    }
    limit
}

/// The long-poll probe: once with no hold (the round trip), then held for
/// `hold`.
pub async fn long_poll(ep: &Endpoint, clock: &Clock, hold: Duration, check: &Check) -> LongPollRun {
    let mut run = LongPollRun {
        hold_s: hold.as_secs_f64(),
        ..Default::default()
    };
    let t0 = clock.now_s();
    let quick = match get(ep, &ep.path("probe/longpoll?hold=0"), &[], REQUEST_TIMEOUT).await {
        Ok((res, link)) => {
            run.link = Some(link);
            let status = res.status().as_u16();
            match collect(res.into_body(), REQUEST_TIMEOUT).await {
                Ok(_) if status == 200 => Ok((clock.now_s() - t0) * 1e3),
                Ok(b) => Err(format!(
                    "{status}: {}",
                    snippet(&String::from_utf8_lossy(&b))
                )),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match quick {
        Ok(ms) => run.quick_rtt_ms = Some(ms),
        Err(e) => {
            run.quick_error = Some(e);
            return run;
        }
    }
    let path = ep.path(&format!("probe/longpoll?hold={}", hold.as_secs_f64()));
    let within = hold + REQUEST_TIMEOUT;
    check.phase(&format!("a request the server holds {}", span(hold)));
    let t0 = clock.now_s();
    let answer = async {
        let (res, _) = get(ep, &path, &[], within).await?;
        let status = res.status().as_u16();
        let body = collect(res.into_body(), within).await?;
        Ok::<_, String>((status, body))
    };
    match answer.await {
        Ok((status, body)) => {
            run.status = Some(status);
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            run.server_held_s = v.get("held_ms").and_then(Value::as_f64).map(|ms| ms / 1e3);
            if status != 200 {
                run.error = Some(format!(
                    "{status}: {}",
                    snippet(&String::from_utf8_lossy(&body))
                ));
            }
        }
        Err(e) => run.error = Some(e),
    }
    run.answered_after_s = clock.now_s() - t0;
    run
}

/// A stream probe, `ws` or else `sse`, given up at the plan's deadline.
pub async fn stream(t: &str, ep: &Endpoint, clock: &Clock, plan: Plan, check: &Check) -> StreamRun {
    let mut run = StreamRun::default();
    let inner = async {
        match t {
            "ws" => ws(ep, clock, plan, &mut run, check).await,
            _ => sse(ep, clock, plan, &mut run, check).await,
        }
    };
    let outcome = tokio::time::timeout(plan.deadline(), inner).await;
    run.ended_how = match outcome {
        Ok(Ok(how)) => how,
        Ok(Err(e)) => e,
        Err(_) => "deadline".into(),
    };
    run.ended_at_s = clock.now_s();
    run
}

/// The SSE probe, read as a browser's `EventSource` would (it accepts
/// gzip); `Ok` says how it ended.
async fn sse(
    ep: &Endpoint,
    clock: &Clock,
    plan: Plan,
    run: &mut StreamRun,
    check: &Check,
) -> Result<String, String> {
    let path = ep.path(&format!("probe/sse?{}", plan.query()));
    let headers = [
        ("accept", "text/event-stream".to_owned()),
        ("accept-encoding", "gzip".to_owned()),
        ("cache-control", "no-cache".to_owned()),
    ];
    let (res, link) = get(ep, &path, &headers, plan.deadline())
        .await
        .map_err(|e| {
            run.error = Some(e.clone());
            format!("error: {e}")
        })?;
    run.link = Some(link);
    let status = res.status();
    run.status = Some(status.as_u16());
    if !status.is_success() {
        let body = collect(res.into_body(), REQUEST_TIMEOUT)
            .await
            .unwrap_or_default();
        let e = format!("{status}: {}", snippet(&String::from_utf8_lossy(&body)));
        run.error = Some(e.clone());
        return Err(format!("error: {e}"));
    }
    run.content_encoding = res
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut gzip = match run.content_encoding.as_deref() {
        None | Some("identity") => None,
        Some("gzip") => Some(GzDecoder::new(Vec::new())),
        Some(other) => return Err(format!("error: cannot decode Content-Encoding {other}")),
    };
    run.show(check, plan);
    let mut parser = SseParser::new(1 << 20);
    let mut body = res.into_body();
    let mut events = Vec::new();
    loop {
        let Some(frame) = body.frame().await else {
            return Ok("eof".into());
        };
        let frame = frame.map_err(|e| format!("error: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let at = clock.now_s();
        run.wire_bytes += data.len() as u64;
        let plain: Vec<u8> = match &mut gzip {
            None => data.to_vec(),
            Some(d) => {
                // A proxy that compresses a stream flushes per write (or
                // it buffers, which is what is measured): decode what came.
                d.write_all(&data)
                    .and_then(|()| d.flush())
                    .map_err(|e| format!("error: gzip: {e}"))?;
                std::mem::take(d.get_mut())
            }
        };
        run.decoded_bytes += plain.len() as u64;
        parser
            .feed(&plain, &mut events)
            .map_err(|e| format!("error: {e}"))?;
        for ev in events.drain(..) {
            run.record(&ev.event, &ev.data, at);
        }
        run.show(check, plan);
        if run.end.is_some() {
            return Ok("end".into());
        }
    }
}

/// The WebSocket probe; `Ok` says how it ended.
async fn ws(
    ep: &Endpoint,
    clock: &Clock,
    plan: Plan,
    run: &mut StreamRun,
    check: &Check,
) -> Result<String, String> {
    let path = ep.path(&format!("probe/ws?{}", plan.query()));
    let bytes = Arc::new(ByteCount::default());
    let mut sock = match client::open_websocket_route(ep, &bytes, &path, false).await {
        Ok((s, route)) => {
            run.link = Some(route.link);
            run.ws_over_h2 = route.over_h2;
            s
        }
        Err(e) => {
            if let ClientError::Status { status, .. } = &e {
                run.status = Some(status.as_u16());
            }
            let e = err_text(&e);
            run.error = Some(e.clone());
            return Err(format!("error: {e}"));
        }
    };
    run.status = Some(101);
    run.show(check, plan);
    loop {
        let Some(msg) = sock.next().await else {
            return Ok("eof".into());
        };
        let at = clock.now_s();
        match msg.map_err(|e| format!("error: {e}"))? {
            Message::Text(t) => {
                run.wire_bytes += t.len() as u64;
                run.decoded_bytes += t.len() as u64;
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                let kind = v
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                run.record(&kind, &t, at);
                run.show(check, plan);
                if kind == "end" {
                    // Complete the close handshake, briefly; the verdict
                    // does not depend on it.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(Ok(_)) = sock.next().await {}
                    })
                    .await;
                    return Ok("end".into());
                }
            }
            Message::Close(frame) => {
                return Ok(match frame {
                    Some(f) => format!("close {}", u16::from(f.code)),
                    None => "close".into(),
                });
            }
            _ => {}
        }
    }
}
