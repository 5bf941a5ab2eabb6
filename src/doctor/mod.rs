//! `feedgate doctor URL`: says which transports work on the network path
//! from here to a feedgate server, and why the others do not.
//!
//! Every check talks to the server's `/probe/…` endpoints (no token, no
//! topic; see docs/protocol.md) through whatever is in between — proxies,
//! load balancers, CDNs — and judges what arrived against what the server
//! says it sent:
//!
//! - `checks`: the measurements, one run per transport;
//! - `verdict`: the rules that turn them into `ok`, `blocked`, `buffered`,
//!   `cut` or `slow`, with advice;
//! - `http2`: what the path did to HTTPS and HTTP/2 (ALPN, the hop to
//!   feedgate, WebSockets over HTTP/2);
//! - `report`: the lines a person reads and the `--json` document;
//! - `progress`: what it shows while it waits.
//!
//! The poll probe runs first (it calibrates the clocks and reads the
//! server's keep-alive settings), then the two streams, the long poll and
//! the header sizes at once: a whole run takes about `--idle` plus a few
//! seconds, and never more than `--idle` + 30 s (10 s for the poll, the
//! streams' script plus 10 s). So that it never looks hung, it says at
//! once what it checks and for how long, shows each check's progress, and
//! prints each transport's verdict as soon as it is known; `--quick` makes
//! the idle probe 10 s for a first look.

mod checks;
mod http2;
mod progress;
mod report;
mod verdict;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

pub use verdict::Verdict;

use crate::client::{Endpoint, Trust};
use crate::params::duration;
use crate::protocol::probe;
use checks::{Clock, Plan};
use progress::{Check, Live, Out};

/// The long-poll hold tried when the server does not say its maximum.
const DEFAULT_LONGPOLL_MAX: Duration = Duration::from_secs(60);
/// The idle probe of `--quick`.
const QUICK_IDLE: Duration = Duration::from_secs(10);

/// `feedgate doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The server's base URL, as clients reach it (through the proxy).
    pub url: String,
    /// Also write the verdicts as JSON to this file (`-`: standard output,
    /// and the table goes to standard error).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// How long streams stay silent, to find the path's idle timeout; the
    /// long poll holds this long too (at most the server's --longpoll-max).
    #[arg(long, default_value = "90s", value_parser = duration)]
    pub idle: Duration,
    /// A first look: streams stay silent 10 s (not `--idle`), which finds
    /// no idle timeout longer than that.
    #[arg(long, conflicts_with = "idle")]
    pub quick: bool,
    /// Timed events per stream probe.
    #[arg(long, default_value_t = 5)]
    pub count: u32,
    /// Gap between timed events.
    #[arg(long, default_value = "250ms", value_parser = duration)]
    pub interval: Duration,
    /// With an https:// URL: trust this PEM file's certificates (a private
    /// CA, or the server's own) instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// With an https:// URL: accept any certificate (a loopback server
    /// started with `serve --tls-self-signed`).
    #[arg(long)]
    pub tls_insecure: bool,
}

/// Runs `feedgate doctor`.
///
/// # Errors
/// A bad URL or `--json` file; a run in which no transport works is not an
/// error here but the exit status of the binary (see [`Outcome::works`]).
pub async fn cli(args: DoctorArgs) -> Result<Outcome, String> {
    // Over https:// the doctor offers HTTP/2 by ALPN, as browsers do; over
    // http:// it speaks HTTP/1.1, as they do.
    let trust = Trust::from_flags(args.tls_ca.as_deref(), args.tls_insecure);
    let ep = Endpoint::parse_with(&args.url, trust).map_err(|e| e.to_string())?;
    let ep = ep.clone().with_http2(ep.is_tls());
    let idle = if args.quick { QUICK_IDLE } else { args.idle };
    let plan = Plan {
        count: args.count.min(probe::MAX_COUNT),
        interval: args.interval,
        idle: idle.min(probe::MAX_IDLE),
    };
    // The JSON document alone on standard output with `--json -`.
    let to_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let live = Live::new(if to_stdout { Out::Stderr } else { Out::Stdout });
    live.say(&report::header(&args.url, plan, args.quick));
    let doc = run(&ep, &args.url, plan, &live).await;
    live.say(&report::summary(&doc));
    let json = serde_json::to_string_pretty(&doc.json).unwrap_or_default();
    match args.json.as_deref() {
        Some(_) if to_stdout => println!("{json}"),
        Some(p) => std::fs::write(p, json + "\n")
            .map_err(|e| format!("cannot write {}: {e}", p.display()))?,
        None => {}
    }
    Ok(Outcome {
        works: !doc.recommended.is_empty(),
    })
}

/// What a doctor run concluded, for the exit status.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// At least one transport works.
    pub works: bool,
}

/// A finished run: the verdicts and the JSON document.
pub(crate) struct Doc {
    url: String,
    took_s: f64,
    reports: Vec<verdict::TransportReport>,
    notes: Vec<String>,
    path_advice: Vec<String>,
    recommended: Vec<&'static str>,
    json: serde_json::Value,
}

/// Checks every transport at `ep` and judges them, printing each verdict
/// on `live` as soon as it is known.
async fn run(ep: &Endpoint, url: &str, plan: Plan, live: &Live) -> Doc {
    let clock = Clock::start();
    let checking = live.check("poll", "a short poll");
    let poll = checks::poll(ep, &clock).await;
    let poll_report = verdict::poll(&poll);
    finish(live, &checking, &poll_report);
    let server_max = poll
        .hello
        .as_ref()
        .and_then(|h| h["longpoll_max_s"].as_f64())
        .map_or(DEFAULT_LONGPOLL_MAX, Duration::from_secs_f64);
    // A long poll is only ever held up to the server's maximum: a path
    // that cuts later than that never troubles a real one.
    let hold = plan.idle.min(server_max);
    let to_unix = |at_s: f64| clock.unix_us(at_s);
    let stream = |t: &'static str| {
        let checking = live.check(t, "connecting");
        let (poll, to_unix, clock) = (&poll, &to_unix, &clock);
        async move {
            let run = checks::stream(t, ep, clock, plan, &checking).await;
            let report = verdict::stream(t, &run, poll, plan, to_unix);
            finish(live, &checking, &report);
            (report, run)
        }
    };
    let long = async {
        let checking = live.check("longpoll", "a quick request");
        let run = checks::long_poll(ep, &clock, hold, &checking).await;
        let report = verdict::long_poll(&run);
        finish(live, &checking, &report);
        (report, run)
    };
    let headers = async {
        let checking = live.check("headers", "ever larger request headers");
        let limit = checks::header_limit(ep, &checking).await;
        checking.done();
        limit
    };
    let ((ws, ws_run), (sse, sse_run), (long, long_run), headers) =
        tokio::join!(stream("ws"), stream("sse"), long, headers);
    let mut reports = vec![ws, sse, long, poll_report];
    let (mut path, mut notes, mut path_advice) = verdict::path(&poll, &headers);
    let (h2, h2_notes, h2_advice) = http2::judge(&http2::Seen {
        poll: &poll,
        long_poll: &long_run,
        sse: &sse_run,
        ws: &ws_run,
    });
    path["http2"] = h2;
    notes.extend(h2_notes);
    path_advice.extend(h2_advice);
    if poll.status.is_none() {
        // Nothing answered HTTP at all: per-transport advice would only
        // be noise.
        for r in &mut reports {
            r.advice.clear();
        }
        notes.clear();
        let tls_refused = poll.error.as_deref().is_some_and(|e| e.starts_with("tls:"));
        path_advice = vec![match tls_refused {
            true => format!(
                "the certificate at {url} was refused ({}): trust its CA with `--tls-ca FILE` (or, for a loopback server started with --tls-self-signed, `--tls-insecure`); browsers refuse it too",
                poll.error.as_deref().unwrap_or_default()
            ),
            false => format!(
                "nothing answered at {url}: check the URL, and that feedgate (or the proxy in front of it) listens there"
            ),
        }];
    }
    let recommended = verdict::recommended(&reports);
    let took_s = clock.now_s();
    let mut json = report::json(url, took_s, plan, &reports, &path, &notes, &recommended);
    // What to do about the path as a whole (per transport: each one's own).
    json["advice"] = serde_json::json!(path_advice);
    Doc {
        url: url.to_owned(),
        took_s,
        reports,
        notes,
        path_advice,
        recommended,
        json,
    }
}

/// A check is over: its line goes, and its verdict row is printed now.
fn finish(live: &Live, check: &Check, r: &verdict::TransportReport) {
    check.done();
    live.row(&report::row(r));
}
