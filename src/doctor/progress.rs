//! What the doctor shows while it works, so a run that waits `--idle`
//! seconds on purpose never looks hung: one line per check that says what
//! it is waiting for — a spinner with the time spent, drawn on standard
//! error when that is a terminal, else a plain line on standard error each
//! time a check moves to its next phase — and each verdict row printed
//! to the report's stream the moment it is known.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a spinner redraws (its elapsed time moves with it).
const TICK: Duration = Duration::from_millis(120);

/// Where the report goes: standard output, or standard error when the
/// JSON document takes standard output (`--json -`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    Stdout,
    Stderr,
}

/// The live display of one run.
pub(crate) struct Live {
    out: Out,
    /// The spinners, when standard error is a terminal.
    bars: Option<MultiProgress>,
    /// The verdict rows' heading went out.
    headed: AtomicBool,
}

/// One check's line.
pub(crate) struct Check {
    name: &'static str,
    bar: Option<ProgressBar>,
    /// The phase last said (plain lines say each phase once).
    phase: Mutex<String>,
}

impl Live {
    /// A display for a report written to `out`.
    pub fn new(out: Out) -> Live {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Live {
            out,
            bars,
            headed: AtomicBool::new(false),
        }
    }

    /// Writes a verdict row, under the rows' heading.
    pub fn row(&self, row: &str) {
        if !self.headed.swap(true, Ordering::Relaxed) {
            self.say(&format!("\n{:<9} {:<9} detail\n", "transport", "verdict"));
        }
        self.say(row);
    }

    /// Writes report text (whole lines) now, above the spinners.
    pub fn say(&self, text: &str) {
        let write = || {
            let _ = match self.out {
                Out::Stdout => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(text.as_bytes()).and_then(|()| o.flush())
                }
                Out::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
            };
        };
        match &self.bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }

    /// A line for the check `name`, starting at `phase`.
    pub fn check(&self, name: &'static str, phase: &str) -> Check {
        let bar = self.bars.as_ref().map(|bars| {
            let style =
                ProgressStyle::with_template("{spinner} {prefix:9} {wide_msg} {elapsed:>4}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = bars.add(ProgressBar::new_spinner().with_style(style));
            bar.set_prefix(name);
            bar.enable_steady_tick(TICK);
            bar
        });
        let check = Check {
            name,
            bar,
            phase: Mutex::new(String::new()),
        };
        check.phase(phase);
        check
    }
}

impl Check {
    /// The check moved on to `phase` (its time starts again).
    pub fn phase(&self, phase: &str) {
        let mut last = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if *last == phase {
            return;
        }
        phase.clone_into(&mut last);
        match &self.bar {
            Some(bar) => {
                bar.reset_elapsed();
                bar.set_message(phase.to_owned());
            }
            None => eprintln!("feedgate doctor: {}: {phase}", self.name),
        }
    }

    /// A detail within the phase (spinners only: plain lines would be
    /// noise).
    pub fn detail(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        }
    }

    /// The check is over: its line goes.
    pub fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A duration as a person reads it: `250 ms`, `10 s`, `1 min 30 s`.
pub(crate) fn span(d: Duration) -> String {
    let s = d.as_secs();
    match (s, s / 60, s % 60) {
        (0, _, _) => format!("{} ms", d.as_millis()),
        (s, 0, _) => format!("{s} s"),
        (_, m, 0) => format!("{m} min"),
        (_, m, s) => format!("{m} min {s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_said() {
        let text = |ms| span(Duration::from_millis(ms));
        assert_eq!(text(250), "250 ms");
        assert_eq!(text(10_400), "10 s");
        assert_eq!(text(90_000), "1 min 30 s");
        assert_eq!(text(120_000), "2 min");
    }
}
