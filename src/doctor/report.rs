//! The doctor's output: a verdict table with what to do, and the `--json`
//! document (`{"url":…,"transports":[…],"recommended":[…],…}`).

use std::fmt::Write;

use serde_json::{Value, json};

use super::Doc;
use super::checks::Plan;
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

/// The human-readable report.
pub(crate) fn table(doc: &Doc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "feedgate doctor {} ({:.1} s)", doc.url, doc.took_s);
    for n in &doc.notes {
        let _ = writeln!(out, "  {n}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<9} {:<9} detail", "transport", "verdict");
    for r in &doc.reports {
        let _ = writeln!(
            out,
            "{:<9} {:<9} {}",
            r.transport,
            r.verdict.as_str(),
            r.detail
        );
    }
    let _ = writeln!(out);
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
