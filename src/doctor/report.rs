//! The doctor's output: what it will check, a verdict row per transport
//! (printed as each is known), what to do, and the `--json` document
//! (`{"url":…,"transports":[…],"recommended":[…],…}`).

use std::fmt::Write;
use std::time::Duration;

use serde_json::{Value, json};

use super::Doc;
use super::checks::Plan;
use super::progress::span;
use super::verdict::TransportReport;

/// The JSON document of a run.
pub(crate) fn json(
    url: &str,
    took_s: f64,
    plan: Plan,
    reports: &[TransportReport],
    path: &Value,
    notes: &[String],
    recommended: &[&str],
) -> Value {
    let transports: Vec<Value> = reports
        .iter()
        .map(|r| {
            json!({
                "transport": r.transport,
                "verdict": r.verdict.as_str(),
                "detail": r.detail,
                "advice": r.advice,
                "facts": r.facts,
            })
        })
        .collect();
    json!({
        "url": url,
        "took_s": (took_s * 10.0).round() / 10.0,
        "plan": {
            "count": plan.count,
            "interval_ms": plan.interval.as_millis() as u64,
            "idle_s": plan.idle.as_secs_f64(),
        },
        "transports": transports,
        "recommended": recommended,
        "path": path,
        "notes": notes,
    })
}

/// What a run will check and for how long, said before it starts.
pub(crate) fn header(url: &str, plan: Plan, quick: bool) -> String {
    // The streams' script and silence, plus a moment for the first poll;
    // the long poll and the header sizes run meanwhile.
    let about = plan.interval * plan.count + plan.idle + Duration::from_secs(1);
    let first_look = match quick {
        true => "",
        false => "; --quick: a 10 s first look",
    };
    format!(
        "feedgate doctor {url}: checking WebSocket, SSE, long poll, short poll and request header limits; about {} (streams stay silent {} to find the path's idle timeout{first_look})\n",
        span(about),
        span(plan.idle)
    )
}

/// One transport's verdict row.
pub(crate) fn row(r: &TransportReport) -> String {
    format!(
        "{:<9} {:<9} {}\n",
        r.transport,
        r.verdict.as_str(),
        r.detail
    )
}

/// What follows the rows once every check is done: the time taken, notes
/// on the path, the recommendation and what to do.
pub(crate) fn summary(doc: &Doc) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "feedgate doctor {}: done in {:.1} s",
        doc.url, doc.took_s
    );
    for n in &doc.notes {
        let _ = writeln!(out, "  {n}");
    }
    let rec = if doc.recommended.is_empty() {
        "none: no transport works on this path".to_owned()
    } else {
        doc.recommended.join(", ")
    };
    let _ = writeln!(out, "recommended: {rec}");
    if !doc.recommended.is_empty() {
        let list: Vec<String> = doc.recommended.iter().map(|t| format!("'{t}'")).collect();
        let _ = writeln!(
            out,
            "  FeedgateSocket: {{ transports: [{}] }} skips what fails here",
            list.join(", ")
        );
    }
    let advice: Vec<(&str, &String)> = doc
        .reports
        .iter()
        .flat_map(|r| r.advice.iter().map(move |a| (r.transport, a)))
        .chain(doc.path_advice.iter().map(|a| ("path", a)))
        .collect();
    if !advice.is_empty() {
        let _ = writeln!(out, "what to do:");
        for (t, a) in advice {
            let _ = writeln!(out, "  {t}: {a}");
        }
    }
    out
}
