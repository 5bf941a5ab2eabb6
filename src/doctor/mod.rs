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
//! - `report`: the table and the `--json` document.
//!
//! The poll probe runs first (it calibrates the clocks and reads the
//! server's keep-alive settings), then the two streams, the long poll and
//! the header sizes at once: a whole run takes about `--idle` plus a few
//! seconds, and never more than `--idle` + 30 s (10 s for the poll, the
//! streams' script plus 10 s).

mod checks;
mod report;
mod verdict;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

pub use verdict::Verdict;

use crate::client::Endpoint;
use crate::params::duration;
use crate::protocol::probe;
use checks::{Clock, Plan};

/// The long-poll hold tried when the server does not say its maximum.
const DEFAULT_LONGPOLL_MAX: Duration = Duration::from_secs(60);

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
    /// Timed events per stream probe.
    #[arg(long, default_value_t = 5)]
    pub count: u32,
    /// Gap between timed events.
    #[arg(long, default_value = "250ms", value_parser = duration)]
    pub interval: Duration,
}

/// Runs `feedgate doctor`.
///
/// # Errors
/// A bad URL or `--json` file; a run in which no transport works is not an
/// error here but the exit status of the binary (see [`Outcome::works`]).
pub async fn cli(args: DoctorArgs) -> Result<Outcome, String> {
    let ep = Endpoint::parse(&args.url).map_err(|e| e.to_string())?;
    let plan = Plan {
        count: args.count.min(probe::MAX_COUNT),
        interval: args.interval,
        idle: args.idle.min(probe::MAX_IDLE),
    };
    let doc = run(&ep, &args.url, plan).await;
    let table = report::table(&doc);
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => {
            eprint!("{table}");
            println!(
                "{}",
                serde_json::to_string_pretty(&doc.json).unwrap_or_default()
            );
        }
        Some(p) => {
            print!("{table}");
            let text = serde_json::to_string_pretty(&doc.json).unwrap_or_default() + "\n";
            std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
        None => print!("{table}"),
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

/// Checks every transport at `ep` and judges them.
async fn run(ep: &Endpoint, url: &str, plan: Plan) -> Doc {
    let clock = Clock::start();
    let poll = checks::poll(ep, &clock).await;
    let server_max = poll
        .hello
        .as_ref()
        .and_then(|h| h["longpoll_max_s"].as_f64())
        .map_or(DEFAULT_LONGPOLL_MAX, Duration::from_secs_f64);
    // A long poll is only ever held up to the server's maximum: a path
    // that cuts later than that never troubles a real one.
    let hold = plan.idle.min(server_max);
    let (ws, sse, long, headers) = tokio::join!(
        checks::ws(ep, &clock, plan),
        checks::sse(ep, &clock, plan),
        checks::long_poll(ep, &clock, hold),
        checks::header_limit(ep),
    );
    let to_unix = |at_s: f64| clock.unix_us(at_s);
    let mut reports = vec![
        verdict::stream("ws", &ws, &poll, plan, &to_unix),
        verdict::stream("sse", &sse, &poll, plan, &to_unix),
        verdict::long_poll(&long),
        verdict::poll(&poll),
    ];
    let (path, mut notes, mut path_advice) = verdict::path(&poll, &headers);
    if poll.status.is_none() {
        // Nothing answered HTTP at all: per-transport advice would only
        // be noise.
        for r in &mut reports {
            r.advice.clear();
        }
        notes.clear();
        path_advice = vec![format!(
            "nothing answered at {url}: check the URL, and that feedgate (or the proxy in front of it) listens there"
        )];
    }
    let recommended = verdict::recommended(&reports);
    let took_s = clock.now_s();
    let json = report::json(url, took_s, plan, &reports, &path, &notes, &recommended);
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
