//! A series of runs varying one parameter (`--sweep rate=1,10,100,1000`),
//! for the crossover chart: at which event rate long polling beats short
//! polling in bytes, and where streaming wins.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::BenchError;
use super::args::{Plan, SweepParam};
use super::report::Report;

/// The `schema` field of a sweep's JSON.
pub const SCHEMA: &str = "feedgate-bench-sweep/1";

/// Every run of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// What varied.
    pub param: SweepParam,
    /// Its values, in run order.
    pub values: Vec<f64>,
    /// One full report per value.
    pub runs: Vec<Report>,
}

/// Runs `plan` once per value of `param`, each on a fresh topic (and, when
/// in-process, a fresh server).
///
/// # Errors
/// The first run that fails.
pub async fn run(plan: &Plan, param: SweepParam, values: &[f64]) -> Result<Series, BenchError> {
    let mut runs = Vec::with_capacity(values.len());
    for &v in values {
        let p = param.apply(plan, v);
        p.validate()?;
        if plan.progress {
            eprintln!("sweep: {}={v}", param.as_str());
        }
        runs.push(super::run(&p).await?);
    }
    Ok(Series {
        schema: SCHEMA.to_owned(),
        param,
        values: values.to_vec(),
        runs,
    })
}

impl Series {
    /// Bytes per event (down + up) by transport, one row per value.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let names: Vec<String> = self
            .runs
            .first()
            .map(|r| r.transports.iter().map(|t| t.transport.clone()).collect())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "wire bytes per event (down + up), by {}:",
            self.param.as_str()
        );
        let _ = write!(out, "{:>10}", self.param.as_str());
        for n in &names {
            let _ = write!(out, " | {n:>10} | {:>9}", "p99");
        }
        let _ = writeln!(out);
        for (v, r) in self.values.iter().zip(&self.runs) {
            let _ = write!(out, "{v:>10}");
            for t in &r.transports {
                let lost = if t.lost > 0 {
                    format!(" ({} lost)", t.lost)
                } else {
                    String::new()
                };
                let _ = write!(
                    out,
                    " | {:>10.1} | {:>7.1}ms{lost}",
                    t.bytes_per_event_down + t.bytes_per_event_up,
                    t.latency.p99_us as f64 / 1000.0
                );
            }
            let _ = writeln!(out);
        }
        out
    }
}
