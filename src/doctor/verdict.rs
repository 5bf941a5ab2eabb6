//! Turning measurements into verdicts and advice. Pure functions over the
//! runs of `checks.rs`, so every rule is unit-tested without a network.
//!
//! A verdict is one of:
//! - `ok`: delivers promptly, and survives idle times feedgate's keep-alive
//!   covers;
//! - `blocked`: refused, or opened but nothing came through;
//! - `buffered`: messages arrive late and together (a proxy holds them);
//! - `cut`: the path closes it before feedgate would (idle streams before
//!   the next heartbeat, long polls before their hold ends);
//! - `slow`: delivers, but late, without bunching (a long or loaded path).

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Value, json};

use super::checks::{Arrival, HeaderLimit, LongPollRun, Plan, PollRun, StreamRun};
use crate::client::Link;

/// Where docs/nginx/feedgate.conf is referenced from advice.
const CONF: &str = "docs/nginx/feedgate.conf";

/// The verdict rules and the cases that test them, shared with the browser
/// client's `diagnose()` so that both judge a path alike.
const FIXTURE: &str = include_str!("../../clients/js/src/doctor/verdicts.json");

/// The thresholds of the verdicts (their meaning is in the fixture's
/// `about`).
#[derive(Debug, Deserialize)]
struct Rules {
    /// A delay past this (plus the clock uncertainty) is late.
    late_s: f64,
    /// A delay past this without bunching is slow.
    slow_s: f64,
    /// Two messages sent `g` apart that arrive less than this share of
    /// `g` apart were held and released together.
    bunched_share: f64,
    /// Late, with at least this share of pairs bunched: buffered.
    buffered_share: f64,
    /// An idle stream cut within the keep-alive plus this was cut too early.
    keepalive_slack_s: f64,
    /// A long poll answered this much before its hold ended was cut.
    hold_slack_s: f64,
    /// A poll round trip past this is slow.
    slow_rtt_ms: f64,
}

/// The fixture's `rules`, parsed once (a unit test parses it at build
/// time's content, so a bad fixture fails `cargo test`, not a user).
static RULES: LazyLock<Rules> = LazyLock::new(|| {
    #[derive(Deserialize)]
    struct Fixture {
        rules: Rules,
    }
    serde_json::from_str::<Fixture>(FIXTURE)
        .expect("clients/js/src/doctor/verdicts.json holds the rules (checked by the tests)")
        .rules
});

/// The verdict on one transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Works.
    Ok,
    /// Refused or nothing came through.
    Blocked,
    /// Held back by the path.
    Buffered,
    /// Closed by the path too early.
    Cut,
    /// Delivers, late.
    Slow,
}

impl Verdict {
    /// The JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Blocked => "blocked",
            Verdict::Buffered => "buffered",
            Verdict::Cut => "cut",
            Verdict::Slow => "slow",
        }
    }
}

/// One line of the verdict table and its JSON.
#[derive(Debug, Clone)]
pub struct TransportReport {
    /// `ws`, `sse`, `longpoll` or `poll`.
    pub transport: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What was seen, in a sentence.
    pub detail: String,
    /// What to do about it (empty when nothing needs doing).
    pub advice: Vec<String>,
    /// The measured facts behind the verdict.
    pub facts: Value,
}

/// Server clock minus local clock, µs, with its uncertainty in seconds;
/// from the poll probe when it answered, else from the stream's own hello
/// (assumed on time: then only bunching can reveal buffering).
fn offset(poll: &PollRun, run: &StreamRun) -> (i64, f64) {
    if let Some(o) = poll.clock_offset {
        return o;
    }
    match run.hello_at {
        Some(h) => (h.sent_us as i64 - (h.at_s * 1e6) as i64, 0.0),
        None => (0, f64::INFINITY),
    }
}

/// Seconds from the server's send to local arrival.
fn delay(a: &Arrival, offset_us: i64, to_unix: &dyn Fn(f64) -> i64) -> f64 {
    (to_unix(a.at_s) + offset_us - a.sent_us as i64) as f64 / 1e6
}

/// Pairs of consecutive events that arrived much closer together than
/// they were sent, out of all pairs.
fn bunched_pairs(events: &[Arrival]) -> (usize, usize) {
    let pairs = events.len().saturating_sub(1);
    let bunched = events
        .windows(2)
        .filter(|w| {
            let sent_gap = (w[1].sent_us as f64 - w[0].sent_us as f64) / 1e6;
            let arrival_gap = w[1].at_s - w[0].at_s;
            sent_gap > 0.0 && arrival_gap < RULES.bunched_share * sent_gap
        })
        .count();
    (bunched, pairs)
}

/// The server setting that keeps an idle stream of `t` alive, seconds.
fn keepalive(t: &str, hello: Option<&Value>) -> Option<f64> {
    let key = if t == "ws" {
        "ws_ping_s"
    } else {
        "sse_heartbeat_s"
    };
    hello?.get(key)?.as_f64()
}

/// Judges a stream probe (`ws` or `sse`). `to_unix` maps local run time to
/// local Unix µs.
pub fn stream(
    t: &'static str,
    run: &StreamRun,
    poll: &PollRun,
    plan: Plan,
    to_unix: &dyn Fn(f64) -> i64,
) -> TransportReport {
    let (offset_us, uncertainty) = offset(poll, run);
    let delays: Vec<f64> = run
        .events
        .iter()
        .map(|a| delay(a, offset_us, to_unix))
        .collect();
    let max_delay = delays.iter().copied().fold(f64::NAN, f64::max);
    let (bunched, pairs) = bunched_pairs(&run.events);
    let silence = run.ended_at_s - run.last_at_s;
    let keep = keepalive(t, run.hello.as_ref());
    let mut facts = json!({
        "status": run.status,
        "events_expected": plan.count,
        "events_received": run.events.len(),
        "max_delay_ms": finite(max_delay * 1e3),
        "bunched_pairs": bunched,
        "pairs": pairs,
        "ended": run.ended_how,
        "stream_s": round(run.ended_at_s - run.hello_at.map_or(run.ended_at_s, |h| h.at_s)),
        "silence_before_end_s": round(silence),
        "keepalive_s": keep,
        "content_encoding": run.content_encoding,
        "wire_bytes": run.wire_bytes,
        "decoded_bytes": run.decoded_bytes,
        "server_sent_bytes": run.server_sent_bytes,
        "server_saw": run.hello.as_ref().and_then(|h| h.get("http")),
    });
    let mut r = TransportReport {
        transport: t,
        verdict: Verdict::Ok,
        detail: String::new(),
        advice: Vec::new(),
        facts: Value::Null,
    };
    let late = max_delay > RULES.late_s + uncertainty;
    if run.hello.is_none() && run.events.is_empty() {
        r.verdict = Verdict::Blocked;
        r.detail = match (&run.error, run.status) {
            (Some(e), _) if t == "ws" => format!("upgrade refused: {e}"),
            (Some(e), _) => format!("refused: {e}"),
            (None, Some(s)) => format!(
                "opened ({s}) but nothing arrived in {:.0} s ({})",
                run.ended_at_s, run.ended_how
            ),
            (None, None) => format!("nothing arrived ({})", run.ended_how),
        };
        if t == "ws" {
            r.advice.push(format!(
                "nginx: pass the upgrade — `proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;` with the `map $http_upgrade $connection_upgrade` block ({CONF})"
            ));
            r.advice.push(
                "FeedgateSocket: `transports: ['sse', 'longpoll', 'poll']` skips the failing upgrade (it falls back on its own after `probeTimeout` otherwise)".into(),
            );
        } else {
            r.advice.push(format!(
                "nginx: route it like the real stream: `location ~ ^/(topics/[^/]+|probe)/sse$` with `proxy_buffering off;` ({CONF})"
            ));
            r.advice
                .push("FeedgateSocket: `transports: ['ws', 'longpoll', 'poll']`".into());
        }
    } else if (late && pairs > 0 && bunched as f64 >= RULES.buffered_share * pairs as f64)
        || (late && run.events.len() < 2)
    {
        r.verdict = Verdict::Buffered;
        r.detail = format!(
            "events held back: up to {:.1} s late, {bunched} of {pairs} arrived together",
            max_delay
        );
        if t == "sse" {
            r.advice.push(format!(
                "nginx: `proxy_buffering off;` in the SSE location, and no `proxy_ignore_headers X-Accel-Buffering` ({CONF})"
            ));
            r.advice.push(
                "FeedgateSocket: `transports: ['ws', 'longpoll', 'poll']`, or keep `probeTimeout` short (default 4000 ms) so a held stream is dropped".into(),
            );
        } else {
            r.advice.push(
                "a proxy holds WebSocket frames: check for a TLS-inspecting or buffering middlebox; FeedgateSocket: `transports: ['sse', 'longpoll', 'poll']`".into(),
            );
        }
    } else if max_delay > RULES.slow_s + uncertainty {
        r.verdict = Verdict::Slow;
        r.detail = format!("events arrive, up to {max_delay:.1} s late (not bunched)");
        r.advice
            .push("the path adds latency: check proxies, their queues and the network".into());
    } else if run.end.is_none() && (run.events.len() as u32) < plan.count {
        r.verdict = Verdict::Cut;
        r.detail = format!(
            "closed after {:.1} s while delivering ({} of {} events; {})",
            run.ended_at_s,
            run.events.len(),
            plan.count,
            run.ended_how
        );
        r.advice.push(format!(
            "check the proxy's error log; {CONF} keeps streams open"
        ));
    } else if run.end.is_none() && run.ended_how != "deadline" {
        // The stream went silent and the path closed it.
        let keep_s = keep.unwrap_or(f64::INFINITY);
        if silence <= keep_s + RULES.keepalive_slack_s {
            r.verdict = Verdict::Cut;
            r.detail = format!(
                "idle stream cut after {silence:.1} s of silence ({}); feedgate's {} every {} would come too late",
                run.ended_how,
                if t == "ws" { "ping" } else { "heartbeat" },
                keep.map_or("?".to_owned(), |k| format!("{k:.0} s"))
            );
            let below = ((silence * 0.5).floor() as u64).max(1);
            let (location, flag) = if t == "ws" {
                ("WebSocket", "--ws-ping-interval")
            } else {
                ("SSE", "--sse-heartbeat")
            };
            r.advice.push(format!(
                "nginx: `proxy_read_timeout 60s;` in the {location} location ({CONF}), or run feedgate with `{flag} {below}s` (below the cut)"
            ));
            r.advice.push(
                "FeedgateSocket reconnects from its cursor on its own (nothing is lost), but each cut costs a reconnect".into(),
            );
        } else {
            r.detail = format!(
                "{} events prompt (max delay {}); idle connections are cut after {silence:.0} s, but feedgate's keep-alive every {:.0} s comes first",
                run.events.len(),
                ms(max_delay),
                keep_s
            );
        }
    } else {
        r.detail = format!(
            "{} events prompt (max delay {}); {}",
            run.events.len(),
            ms(max_delay),
            if run.end.is_some() {
                format!("no idle cut within {:.0} s", plan.idle.as_secs_f64())
            } else {
                format!("still open after {:.0} s", run.ended_at_s)
            }
        );
    }
    if let Some(enc) = &run.content_encoding
        && t == "sse"
        && r.verdict != Verdict::Blocked
    {
        r.detail.push_str(&format!(
            "; compressed on the path ({enc}: {} bytes for {})",
            run.wire_bytes, run.decoded_bytes
        ));
        r.advice.push(format!(
            "nginx: `gzip off;` in the SSE location ({CONF}): a compressor must flush after every event or it holds them"
        ));
    }
    if run.hello.as_ref().and_then(|h| h["http"].as_str()) == Some("HTTP/1.0") {
        // Streams then end only by closing, and a proxy buffers such a
        // body unless told not to: the usual root of `buffered`.
        r.detail
            .push_str("; the proxy speaks HTTP/1.0 to feedgate on this path");
        r.advice.push(format!(
            "nginx: `proxy_http_version 1.1;` for this location ({CONF})"
        ));
    }
    facts["delays_ms"] = delays.iter().map(|d| finite(d * 1e3)).collect();
    if t == "ws" {
        facts["over_h2"] = json!(run.ws_over_h2);
    }
    r.facts = facts;
    on_link(&mut r, run.link);
    r
}

/// Adds what the transport's connection spoke to its facts (`link`,
/// `protocol`, `tls`) and, when it was not plain HTTP/1.1, to its detail.
fn on_link(r: &mut TransportReport, link: Option<Link>) {
    r.facts["link"] = json!(link.map(Link::name));
    r.facts["protocol"] = json!(link.map(Link::protocol));
    r.facts["tls"] = json!(link.map(|l| l.tls));
    if let Some(l) = link.filter(|l| *l != Link::default()) {
        r.detail.push_str(&format!("; over {l}"));
    }
}

/// Judges the long-poll probe.
pub fn long_poll(run: &LongPollRun) -> TransportReport {
    let mut r = TransportReport {
        transport: "longpoll",
        verdict: Verdict::Ok,
        detail: String::new(),
        advice: Vec::new(),
        facts: json!({
            "rtt_ms": run.quick_rtt_ms.map(round),
            "hold_s": run.hold_s,
            "answered_after_s": round(run.answered_after_s),
            "status": run.status,
            "server_held_s": run.server_held_s,
        }),
    };
    let held = run.error.is_none() && run.answered_after_s + RULES.hold_slack_s >= run.hold_s;
    if let Some(e) = &run.quick_error {
        r.verdict = Verdict::Blocked;
        r.detail = format!("refused: {e}");
        r.advice.push(format!(
            "route /probe/longpoll like /topics/…/longpoll ({CONF}); FeedgateSocket: `transports: ['poll']`"
        ));
    } else if !held {
        r.verdict = Verdict::Cut;
        let cut = run.answered_after_s;
        r.detail = format!(
            "a {:.0} s hold was cut after {cut:.1} s ({})",
            run.hold_s,
            run.error.as_deref().unwrap_or("answered early")
        );
        let below = ((cut * 0.8).floor() as u64).max(1);
        r.advice.push(format!(
            "FeedgateSocket: `longpollTimeout: {below}` (seconds, below the cut), or nginx: `proxy_read_timeout 75s;` in the long-poll location, above feedgate's --longpoll-max ({CONF})"
        ));
    } else if run.quick_rtt_ms.is_some_and(|ms| ms > RULES.slow_rtt_ms) {
        r.verdict = Verdict::Slow;
        r.detail = format!(
            "held {:.0} s, but a round trip takes {:.0} ms",
            run.hold_s,
            run.quick_rtt_ms.unwrap_or(0.0)
        );
    } else {
        r.detail = format!(
            "held {:.0} s and answered; round trip {:.0} ms",
            run.hold_s,
            run.quick_rtt_ms.unwrap_or(0.0)
        );
    }
    on_link(&mut r, run.link);
    r
}

/// Judges the short-poll probe; also reports what the path did to the
/// request and the answer.
pub fn poll(run: &PollRun) -> TransportReport {
    let hello = run.hello.as_ref();
    let server_http = hello.and_then(|h| h["http"].as_str()).unwrap_or("?");
    let mut r = TransportReport {
        transport: "poll",
        verdict: Verdict::Ok,
        detail: String::new(),
        advice: Vec::new(),
        facts: json!({
            "status": run.status,
            "rtt_ms": round(run.rtt_ms),
            "http_client": run.http_version,
            "http_server_saw": server_http,
            "content_encoding": run.content_encoding,
            "body_received": run.body_received,
            "body_sent": run.body_sent,
        }),
    };
    if let Some(e) = &run.error {
        r.verdict = Verdict::Blocked;
        r.detail = format!("refused: {e}");
        r.advice.push(format!(
            "is this feedgate, and does the proxy pass /probe/ to it? ({CONF}: `location /`)"
        ));
        on_link(&mut r, run.link);
        return r;
    }
    if run.rtt_ms > RULES.slow_rtt_ms {
        r.verdict = Verdict::Slow;
        r.detail = format!("answered in {:.0} ms", run.rtt_ms);
    } else {
        r.detail = format!("answered in {:.0} ms", run.rtt_ms);
    }
    if let Some(enc) = &run.content_encoding {
        r.detail.push_str(&format!(
            "; compressed on the path ({enc}: {} bytes for {})",
            run.body_received,
            run.body_sent.unwrap_or(0)
        ));
    }
    on_link(&mut r, run.link);
    r
}

/// What the path did to requests, from the poll probe and the header
/// sizes: `(facts, notes, advice)`.
pub fn path(poll: &PollRun, headers: &HeaderLimit) -> (Value, Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    let mut advice = Vec::new();
    let hello = poll.hello.as_ref();
    let server_http = hello.and_then(|h| h["http"].as_str());
    let proxies: Vec<String> = hello
        .and_then(|h| h["proxy_headers"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let accept_encoding = hello.and_then(|h| h["accept_encoding"].as_str());
    if let Some(v) = server_http {
        notes.push(format!(
            "HTTP: the doctor spoke {} and got {}; feedgate was spoken to in {v}{}",
            match poll.link {
                Some(l) if l.tls => "HTTPS, offering h2 and http/1.1",
                _ => "HTTP/1.1",
            },
            poll.http_version,
            if proxies.is_empty() {
                " (no proxy headers seen)".to_owned()
            } else {
                format!(", through a proxy ({})", proxies.join(", "))
            }
        ));
        if v == "HTTP/1.0" {
            advice.push(format!(
                "nginx: `proxy_http_version 1.1;` — over HTTP/1.0 there is no WebSocket upgrade, no chunked streaming and no upstream keep-alive ({CONF})"
            ));
        }
    }
    if let Some(ae) = accept_encoding
        && !ae.contains("gzip")
    {
        notes.push(format!(
            "compression: the path removed `Accept-Encoding: gzip` on the way in (feedgate saw {ae:?}): it compresses itself, or strips compression"
        ));
    }
    if let Some(enc) = &poll.content_encoding {
        notes.push(format!("compression: the path compresses answers ({enc})"));
    }
    match (&headers.accepted, &headers.refused) {
        (a, Some((size, how))) => {
            notes.push(format!(
                "headers: a {} KiB header was refused ({how}){}",
                size >> 10,
                a.map_or(String::new(), |a| format!("; {} KiB passed", a >> 10))
            ));
            // nginx's default (8 KiB a line) passes 6 KiB: advise only
            // below that.
            if *size <= 6 << 10 {
                advice.push(
                    "nginx: `large_client_header_buffers 4 16k;` if tokens or cookies are large (a JWT in Authorization counts)".into(),
                );
            }
        }
        (Some(a), None) => notes.push(format!("headers: {} KiB passed", a >> 10)),
        (None, None) => {}
    }
    let facts = json!({
        "http_client": poll.http_version,
        "http_server_saw": server_http,
        "proxy_headers": proxies,
        "accept_encoding_seen": accept_encoding,
        "clock_offset_ms": poll.clock_offset.map(|(o, _)| round(o as f64 / 1e3)),
        "rtt_ms": round(poll.rtt_ms),
        "header_accepted_bytes": headers.accepted,
        "header_refused_bytes": headers.refused.as_ref().map(|r| r.0),
        "header_refused_by": headers.refused.as_ref().map(|r| r.1.clone()),
        "server": hello.map(|h| json!({
            "sse_heartbeat_s": h["sse_heartbeat_s"],
            "ws_ping_s": h["ws_ping_s"],
            "longpoll_max_s": h["longpoll_max_s"],
        })),
    });
    (facts, notes, advice)
}

/// The transports that work, best first; the slow ones only when none is
/// `ok`.
pub fn recommended(reports: &[TransportReport]) -> Vec<&'static str> {
    let pick = |v: Verdict| -> Vec<&'static str> {
        ["ws", "sse", "longpoll", "poll"]
            .into_iter()
            .filter(|t| reports.iter().any(|r| r.transport == *t && r.verdict == v))
            .collect()
    };
    let ok = pick(Verdict::Ok);
    if ok.is_empty() {
        pick(Verdict::Slow)
    } else {
        ok
    }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then(|| round(x))
}

fn ms(s: f64) -> String {
    if s.is_finite() {
        format!("{:.0} ms", (s * 1e3).max(0.0))
    } else {
        "n/a".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PLAN: Plan = Plan {
        count: 4,
        interval: Duration::from_millis(250),
        idle: Duration::from_secs(10),
    };

    /// Local run time 0 is Unix µs 1e12; the server's clock agrees.
    fn to_unix(at_s: f64) -> i64 {
        1_000_000_000_000 + (at_s * 1e6) as i64
    }

    fn poll_run() -> PollRun {
        PollRun {
            status: Some(200),
            rtt_ms: 2.0,
            clock_offset: Some((0, 0.001)),
            ..Default::default()
        }
    }

    /// A stream whose events were sent at 0.25 s steps and arrived at
    /// `arrivals`; then `end` at `end_at`, or the stream ended otherwise.
    fn stream_run(arrivals: &[f64], end_at: Option<f64>, ended_at: f64, how: &str) -> StreamRun {
        let sent = |k: usize| (to_unix(0.25 * k as f64)) as u64;
        let hello = json!({"sse_heartbeat_s": 15.0, "ws_ping_s": 20.0, "http": "HTTP/1.1"});
        StreamRun {
            status: Some(200),
            hello: Some(hello),
            hello_at: Some(Arrival {
                at_s: arrivals.first().copied().unwrap_or(0.0).min(0.01),
                sent_us: sent(0),
            }),
            events: arrivals
                .iter()
                .enumerate()
                .map(|(k, &at_s)| Arrival {
                    at_s,
                    sent_us: sent(k + 1),
                })
                .collect(),
            end: end_at.map(|at_s| Arrival {
                at_s,
                sent_us: to_unix(10.0) as u64,
            }),
            last_at_s: end_at.or(arrivals.last().copied()).unwrap_or(0.0),
            ended_at_s: ended_at,
            ended_how: how.into(),
            ..Default::default()
        }
    }

    #[test]
    fn prompt_stream_with_its_end_is_ok() {
        let run = stream_run(&[0.251, 0.502, 0.752, 1.001], Some(11.0), 11.0, "end");
        let r = stream("sse", &run, &poll_run(), PLAN, &to_unix);
        assert_eq!(r.verdict, Verdict::Ok, "{}", r.detail);
        assert!(r.advice.is_empty());
    }

    #[test]
    fn events_released_together_at_the_end_are_buffered() {
        let run = stream_run(&[11.0, 11.0, 11.0, 11.0], Some(11.0), 11.0, "end");
        let r = stream("sse", &run, &poll_run(), PLAN, &to_unix);
        assert_eq!(r.verdict, Verdict::Buffered, "{}", r.detail);
        assert!(r.advice.iter().any(|a| a.contains("proxy_buffering off")));
    }

    #[test]
    fn late_but_evenly_spaced_is_slow() {
        let run = stream_run(&[2.25, 2.5, 2.75, 3.0], Some(13.0), 13.0, "end");
        let r = stream("ws", &run, &poll_run(), PLAN, &to_unix);
        assert_eq!(r.verdict, Verdict::Slow, "{}", r.detail);
    }

    #[test]
    fn a_silence_cut_before_the_keepalive_is_cut_after_it_ok() {
        let run = stream_run(&[0.25, 0.5, 0.75, 1.0], None, 6.0, "eof");
        let r = stream("sse", &run, &poll_run(), PLAN, &to_unix);
        assert_eq!(r.verdict, Verdict::Cut, "{}", r.detail);
        assert!(
            r.advice.iter().any(|a| a.contains("--sse-heartbeat 2s")),
            "{:?}",
            r.advice
        );
        // Cut after 60 s: the 20 s ping keeps a real socket open.
        let run = stream_run(&[0.25, 0.5, 0.75, 1.0], None, 61.0, "close 1006");
        let r = stream("ws", &run, &poll_run(), PLAN, &to_unix);
        assert_eq!(r.verdict, Verdict::Ok, "{}", r.detail);
        assert!(r.detail.contains("cut after 60 s"), "{}", r.detail);
    }

    #[test]
    fn a_refused_upgrade_is_blocked() {
        let run = StreamRun {
            status: Some(400),
            error: Some("400 Bad Request: expected `Upgrade: websocket`".into()),
            ended_how: "error".into(),
            ..Default::default()
        };
        let r = stream("ws", &run, &poll_run(), PLAN, &to_unix);
        assert_eq!(r.verdict, Verdict::Blocked);
        assert!(
            r.advice
                .iter()
                .any(|a| a.contains("proxy_set_header Upgrade"))
        );
    }

    #[test]
    fn long_polls_held_or_cut() {
        let mut run = LongPollRun {
            quick_rtt_ms: Some(3.0),
            hold_s: 10.0,
            answered_after_s: 10.01,
            status: Some(200),
            server_held_s: Some(10.0),
            ..Default::default()
        };
        assert_eq!(long_poll(&run).verdict, Verdict::Ok);
        run.answered_after_s = 5.0;
        run.status = Some(503);
        run.error = Some("503: feedgate is not reachable from the proxy".into());
        let r = long_poll(&run);
        assert_eq!(r.verdict, Verdict::Cut);
        assert!(r.advice[0].contains("longpollTimeout: 4"), "{:?}", r.advice);
        run.quick_error = Some("404".into());
        assert_eq!(long_poll(&run).verdict, Verdict::Blocked);
    }

    #[test]
    fn recommends_what_works_best_first() {
        let rep = |t, v| TransportReport {
            transport: t,
            verdict: v,
            detail: String::new(),
            advice: vec![],
            facts: Value::Null,
        };
        let all = [
            rep("poll", Verdict::Ok),
            rep("ws", Verdict::Blocked),
            rep("sse", Verdict::Ok),
            rep("longpoll", Verdict::Cut),
        ];
        assert_eq!(recommended(&all), ["sse", "poll"]);
        let slow = [rep("poll", Verdict::Slow), rep("ws", Verdict::Blocked)];
        assert_eq!(recommended(&slow), ["poll"]);
    }

    /// A case of the fixture shared with the browser client.
    #[derive(Deserialize)]
    struct Case {
        name: String,
        kind: String,
        verdict: String,
        #[serde(default)]
        transport: String,
        #[serde(default = "yes")]
        hello: bool,
        #[serde(default)]
        arrivals_s: Vec<f64>,
        end_at_s: Option<f64>,
        #[serde(default)]
        ended_at_s: f64,
        #[serde(default)]
        ended: String,
        rtt_ms: Option<f64>,
        #[serde(default)]
        hold_s: f64,
        #[serde(default)]
        answered_after_s: f64,
        error: Option<String>,
        quick_error: Option<String>,
    }

    fn yes() -> bool {
        true
    }

    /// The stream probe the cases assume.
    #[derive(Deserialize)]
    struct CasePlan {
        count: u32,
        interval_s: f64,
        idle_s: f64,
        sse_heartbeat_s: f64,
        ws_ping_s: f64,
    }

    #[test]
    fn the_shared_cases_get_their_verdicts() {
        #[derive(Deserialize)]
        struct Fixture {
            plan: CasePlan,
            cases: Vec<Case>,
        }
        let fixture: Fixture = serde_json::from_str(FIXTURE).expect("the fixture parses");
        let plan = &fixture.plan;
        assert_eq!(plan.count, PLAN.count);
        assert_eq!(plan.interval_s, PLAN.interval.as_secs_f64());
        assert_eq!(plan.idle_s, PLAN.idle.as_secs_f64());
        let hello = stream_run(&[], None, 0.0, "").hello.expect("a hello");
        assert_eq!(hello["sse_heartbeat_s"], plan.sse_heartbeat_s);
        assert_eq!(hello["ws_ping_s"], plan.ws_ping_s);
        assert!(fixture.cases.len() >= 10, "{} cases", fixture.cases.len());
        for c in &fixture.cases {
            let r = match c.kind.as_str() {
                "stream" => {
                    let t = if c.transport == "ws" { "ws" } else { "sse" };
                    let mut run = stream_run(&c.arrivals_s, c.end_at_s, c.ended_at_s, &c.ended);
                    if !c.hello {
                        run.hello = None;
                        run.hello_at = None;
                    }
                    stream(t, &run, &poll_run(), PLAN, &to_unix)
                }
                "longpoll" => long_poll(&LongPollRun {
                    quick_rtt_ms: c.rtt_ms,
                    quick_error: c.quick_error.clone(),
                    hold_s: c.hold_s,
                    answered_after_s: c.answered_after_s,
                    error: c.error.clone(),
                    status: Some(200),
                    ..Default::default()
                }),
                "poll" => poll(&PollRun {
                    status: Some(200),
                    rtt_ms: c.rtt_ms.unwrap_or_default(),
                    error: c.error.clone(),
                    ..Default::default()
                }),
                other => panic!("{}: unknown kind {other}", c.name),
            };
            assert_eq!(r.verdict.as_str(), c.verdict, "{}: {}", c.name, r.detail);
        }
    }
}
