//! `feedgate bench`: the side-by-side comparison instrument.
//!
//! One publisher sends the same schedule to subscribers of every transport
//! at once; each published payload carries the bench's own counter and send
//! time ([`payload`]), so loss, duplication, reordering and latency are
//! measured from the payload alone, whatever the gateway ([`dialect`]:
//! feedgate or Nchan). Every subscriber counts its bytes at its socket; the
//! bench also reads feedgate's `/metrics` and checks that both sides agree.
//!
//! - [`args`]: the flags and the validated [`Plan`];
//! - [`driver`]: one comparison run;
//! - [`dialect`], [`nchan`]: the gateways' URL shapes;
//! - [`payload`]: the stamped payload;
//! - [`tally`]: per-subscriber sequence checks, per-transport totals and
//!   HDR latency histograms;
//! - [`scrape`]: the server's `/metrics`;
//! - [`model`]: the protocol's predicted bytes per event;
//! - [`report`], [`svg`]: the table, the JSON schema, the charts;
//! - [`sweep`]: a series of runs and the crossover chart;
//! - [`links`]: each transport on each link (HTTP/1.1, HTTP/2, TLS);
//! - [`idle`]: idle subscribers and the server's memory per connection;
//! - [`inproc`], [`child`], [`sys`]: the server in-process or as a child
//!   process, `/proc` and rlimits.

pub mod args;
pub mod child;
pub mod dialect;
pub mod driver;
pub mod idle;
pub mod inproc;
pub mod links;
pub mod model;
pub mod nchan;
pub mod payload;
pub mod report;
pub mod scrape;
pub mod svg;
pub mod sweep;
pub mod sys;
pub mod tally;

use std::path::Path;

pub use args::{BenchArgs, Plan, Target};
pub use driver::run;
pub use report::Report;

use crate::client::ClientError;

/// Why a bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A bad flag.
    #[error("{0}")]
    Usage(String),
    /// Reaching the server failed.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// A local failure (runtime, file, socket).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server misbehaved.
    #[error("server: {0}")]
    Server(String),
}

/// `feedgate bench …`: runs what the flags ask and prints the results.
///
/// # Errors
/// As [`run`], plus failures writing `--json` / `--svg`.
pub async fn cli(args: BenchArgs) -> Result<(), BenchError> {
    if let Some(path) = &args.from_json {
        return redraw(path, args.svg.as_deref());
    }
    if let Some(n) = args.idle {
        let report = idle::run(&args, n).await?;
        println!("{}", report.text());
        if let Some(path) = &args.json {
            write_json(path, &report)?;
        }
        return Ok(());
    }
    let plan = args.plan()?;
    let links = args::links(&args.links)?;
    if !links.is_empty() {
        if args.sweep.is_some() {
            return Err(BenchError::Usage(
                "--links and --sweep: one comparison at a time".into(),
            ));
        }
        let compared = links::run(&plan, &links).await?;
        print!("{}", compared.text());
        if let Some(path) = &args.json {
            write_json(path, &compared)?;
        }
        if let Some(path) = &args.svg {
            std::fs::write(path, svg::links(&compared)?)?;
        }
        return Ok(());
    }
    if let Some(spec) = &args.sweep {
        let (param, values) = args::sweep(spec)?;
        let series = sweep::run(&plan, param, &values).await?;
        println!("{}", series.text());
        if let Some(path) = &args.json {
            write_json(path, &series)?;
        }
        if let Some(path) = &args.svg {
            std::fs::write(path, svg::crossover(&series)?)?;
        }
        return Ok(());
    }
    let report = run(&plan).await?;
    print!("{}", report::table(&report));
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, svg::comparison(&report)?)?;
    }
    Ok(())
}

/// Prints the table of a saved report or sweep and, with `svg`, redraws
/// its chart.
fn redraw(path: &Path, svg: Option<&Path>) -> Result<(), BenchError> {
    let text = std::fs::read_to_string(path)?;
    let bad = |e: serde_json::Error| BenchError::Usage(format!("{}: {e}", path.display()));
    if text.contains(links::SCHEMA) {
        let compared: links::Links = serde_json::from_str(&text).map_err(bad)?;
        print!("{}", compared.text());
        if let Some(out) = svg {
            std::fs::write(out, svg::links(&compared)?)?;
        }
    } else if text.contains(sweep::SCHEMA) {
        let series: sweep::Series = serde_json::from_str(&text).map_err(bad)?;
        println!("{}", series.text());
        if let Some(out) = svg {
            std::fs::write(out, svg::crossover(&series)?)?;
        }
    } else {
        let report: Report = serde_json::from_str(&text).map_err(bad)?;
        print!("{}", report::table(&report));
        if let Some(out) = svg {
            std::fs::write(out, svg::comparison(&report)?)?;
        }
    }
    Ok(())
}

/// Writes `value` as pretty JSON to `path`.
///
/// # Errors
/// When the file cannot be written.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")?;
    Ok(())
}
