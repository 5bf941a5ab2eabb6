//! `--links h1,h2,h1+tls,h2+tls`: the same load on each link — HTTP/1.1
//! or HTTP/2, in the clear or over TLS — with each transport run alone, so
//! that a run's server CPU is that transport's on that link. One table
//! (and, with `--svg`, one chart) compares them: wire bytes per event,
//! server CPU per delivery, latency.
//!
//! Runs go transport by transport, every link of a transport one after
//! the other, so the figures compared on one row were taken minutes
//! apart, under the same load.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::BenchError;
use super::args::Plan;
use super::report::Report;
use crate::client::Link;

/// The `schema` field of a links comparison's JSON.
pub const SCHEMA: &str = "feedgate-bench-links/1";

/// Every run of a links comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Links {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The links compared, in the order asked.
    pub links: Vec<String>,
    /// One run per transport and link.
    pub runs: Vec<LinkRun>,
}

/// One transport alone on one link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkRun {
    /// `h1`, `h2`, `h1+tls` or `h2+tls`.
    pub link: String,
    /// The one transport of the run.
    pub transport: String,
    /// The run's full report.
    pub report: Report,
}

/// The figures a row of the table shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Row {
    /// Wire bytes per delivered event, down.
    pub down: f64,
    /// Up.
    pub up: f64,
    /// Server CPU per delivery, µs (the bench's own server or `--pid`).
    pub server_us: Option<f64>,
    /// Median publish → delivery latency, µs.
    pub p50_us: u64,
    /// Its 99th percentile.
    pub p99_us: u64,
    /// Deliveries lost.
    pub lost: u64,
    /// Whether the server's counters equal the clients'.
    pub agree: Option<bool>,
}

impl LinkRun {
    /// Its row.
    pub fn row(&self) -> Row {
        let Some(t) = self.report.transports.first() else {
            return Row::default();
        };
        Row {
            down: t.bytes_per_event_down,
            up: t.bytes_per_event_up,
            server_us: self
                .report
                .cpu
                .server_s
                .filter(|_| t.delivered > 0)
                .map(|s| s * 1e6 / t.delivered as f64),
            p50_us: t.latency.p50_us,
            p99_us: t.latency.p99_us,
            lost: t.lost,
            agree: t.bytes_agree,
        }
    }
}

/// Runs `plan`'s transports one at a time on each of `links`.
///
/// # Errors
/// A link the plan cannot take (TLS against an `http://` `--url`), or the
/// first run that fails.
pub async fn run(plan: &Plan, links: &[Link]) -> Result<Links, BenchError> {
    let mut runs = Vec::with_capacity(links.len() * plan.transports.len());
    for t in &plan.transports {
        for link in links {
            let p = Plan {
                transports: vec![*t],
                link: *link,
                ..plan.clone()
            };
            p.validate()?;
            if plan.progress {
                eprintln!("links: {} on {link}", t.as_str());
            }
            runs.push(LinkRun {
                link: link.name().to_owned(),
                transport: t.as_str().to_owned(),
                report: super::run(&p).await?,
            });
        }
    }
    Ok(Links {
        schema: SCHEMA.to_owned(),
        links: links.iter().map(|l| l.name().to_owned()).collect(),
        runs,
    })
}

impl Links {
    /// The transports compared, in run order.
    pub fn transports(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.runs {
            if !out.contains(&r.transport.as_str()) {
                out.push(&r.transport);
            }
        }
        out
    }

    /// The run of `transport` on `link`.
    pub fn get(&self, transport: &str, link: &str) -> Option<&LinkRun> {
        self.runs
            .iter()
            .find(|r| r.transport == transport && r.link == link)
    }

    /// The table: a row per transport and link, with each figure also as
    /// a multiple of the transport's first link's.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(first) = self.runs.first() {
            let p = &first.report.params;
            let _ = writeln!(
                out,
                "links · {} · {} clients · {} ev/s × {} B · encoding {}{} · {:.0}s per run, each transport alone",
                first.report.target,
                p.clients,
                p.rate,
                p.payload,
                p.encoding,
                if p.deflate { " + deflate" } else { "" },
                p.duration_s
            );
        }
        let head = [
            "transport",
            "link",
            "B/event down",
            "up",
            "× first",
            "server µs/delivery",
            "× first",
            "p50",
            "p99",
            "lost",
            "links used",
            "bytes agree",
        ];
        let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
        for t in self.transports() {
            let base = self
                .runs
                .iter()
                .find(|r| r.transport == t)
                .map(LinkRun::row);
            for link in &self.links {
                let Some(run) = self.get(t, link) else {
                    continue;
                };
                let row = run.row();
                let times = |v: Option<f64>, b: Option<f64>| match (v, b) {
                    (Some(v), Some(b)) if b > 0.0 => format!("{:.2}", v / b),
                    _ => "-".into(),
                };
                let used = run
                    .report
                    .transports
                    .first()
                    .map(|f| {
                        f.links
                            .iter()
                            .map(|(l, n)| format!("{n}×{l}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                rows.push(vec![
                    t.to_owned(),
                    link.clone(),
                    format!("{:.1}", row.down),
                    format!("{:.1}", row.up),
                    times(Some(row.down + row.up), base.map(|b| b.down + b.up)),
                    row.server_us.map_or("?".into(), |u| format!("{u:.2}")),
                    times(row.server_us, base.and_then(|b| b.server_us)),
                    ms(row.p50_us),
                    ms(row.p99_us),
                    row.lost.to_string(),
                    used,
                    match row.agree {
                        Some(true) => "yes".into(),
                        Some(false) => "NO".into(),
                        None => "-".into(),
                    },
                ]);
            }
        }
        let widths: Vec<usize> = (0..head.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for (i, row) in rows.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, w))| match c {
                    0 | 1 => format!("{cell:<w$}"),
                    _ => format!("{cell:>w$}"),
                })
                .collect();
            let _ = writeln!(out, "{}", line.join(" | "));
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                let _ = writeln!(out, "{}", rule.join("-|-"));
            }
        }
        if let Some(first) = self.runs.first() {
            let m = &first.report.machine;
            let after = self
                .runs
                .last()
                .map_or(m.load_after, |r| r.report.machine.load_after);
            let _ = writeln!(
                out,
                "machine: {} × {} · load {:.2} → {:.2}",
                m.cpus, m.cpu_model, m.load_before, after
            );
        }
        out
    }
}

fn ms(us: u64) -> String {
    format!("{:.2}ms", us as f64 / 1000.0)
}
