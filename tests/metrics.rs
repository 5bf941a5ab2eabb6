//! `/metrics` of a fresh server: every labelled series the code can
//! produce is there at 0 from the first scrape, so `increase(…)` alerts and
//! dashboard rates see the first occurrence instead of a series appearing
//! from nothing; and no series is made up for what cannot happen.

mod common;

use common::*;
use feedgate::Config;
use feedgate::metrics::{Limit, Outcome, Transport};

/// The limit names the docs, alerts and dashboards use.
const LIMITS: [&str; 8] = [
    "max_connections",
    "publish_rate",
    "write_timeout",
    "pong_timeout",
    "max_topics",
    "probe_rate",
    "probe_slots",
    "telemetry_rate",
];

/// (transport, result) pairs a request can end with. Every route can
/// answer a CORS preflight (`ok`) and an error; `empty`, `not_modified` and
/// `timeout` are poll-only (scripts/check_dashboard.py relies on that).
const REQUESTS: &[(&str, &[&str])] = &[
    ("poll", &["events", "empty", "not_modified", "ok", "error"]),
    ("longpoll", &["events", "empty", "timeout", "ok", "error"]),
    ("sse", &["stream", "ok", "error"]),
    ("ws", &["stream", "ok", "error"]),
    ("publish", &["published", "ok", "error"]),
    ("other", &["ok", "error"]),
];

#[tokio::test]
async fn every_known_series_exists_at_zero_from_the_start() {
    let s = start(Config::default()).await;
    let m = scrape(s.addr()).await;
    let zero = |key: String| {
        assert_eq!(m.get(&key), Some(&0.0), "{key} should be exported at 0");
    };

    assert_eq!(
        Limit::ALL.map(Limit::as_str),
        LIMITS,
        "a new limit needs its docs"
    );
    for limit in LIMITS {
        zero(format!(
            "feedgate_limit_rejections_total{{limit=\"{limit}\"}}"
        ));
    }

    for (transport, results) in REQUESTS {
        for result in *results {
            // The scrape itself is counted once it is answered, so even
            // other/ok is still 0 in its own body.
            zero(format!(
                "feedgate_requests_total{{result=\"{result}\",transport=\"{transport}\"}}"
            ));
        }
        for outcome in Outcome::ALL.map(Outcome::as_str) {
            if !results.contains(&outcome) {
                let key = format!(
                    "feedgate_requests_total{{result=\"{outcome}\",transport=\"{transport}\"}}"
                );
                assert!(!m.contains_key(&key), "{key} cannot happen");
            }
        }
    }
    let requests = m
        .keys()
        .filter(|k| k.starts_with("feedgate_requests_total{"))
        .count();
    assert_eq!(
        requests,
        REQUESTS.iter().map(|(_, r)| r.len()).sum::<usize>()
    );

    for t in Transport::ALL.map(Transport::as_str) {
        for direction in ["in", "out"] {
            let key =
                format!("feedgate_wire_bytes_total{{direction=\"{direction}\",transport=\"{t}\"}}");
            // The scrape's own request bytes are `other`, in.
            assert!(m.contains_key(&key), "{key}");
            if t != "other" {
                zero(key);
            }
        }
        for family in [
            "feedgate_payload_bytes_total",
            "feedgate_events_delivered_total",
            "feedgate_delivery_latency_seconds_count",
            "feedgate_gaps_total",
            "feedgate_resets_total",
        ] {
            zero(format!("{family}{{transport=\"{t}\"}}"));
        }
        // The scrape's own connection is open while it is answered.
        let open = if t == "other" { 1.0 } else { 0.0 };
        let key = format!("feedgate_connections{{transport=\"{t}\"}}");
        assert_eq!(m.get(&key), Some(&open), "{key}");
    }

    // Issue 20, case 10: what clients report (POST /telemetry/switch) is
    // there before the first report, so the dashboard's fallback panel
    // says 0, not "No data".
    let reported = ["ws", "sse", "longpoll", "poll", "other"];
    for from in reported {
        zero(format!(
            "feedgate_client_stream_cut_after_seconds_count{{transport=\"{from}\"}}"
        ));
        for to in reported {
            zero(format!(
                "feedgate_client_transport_switches_total{{from=\"{from}\",reason=\"cut\",to=\"{to}\"}}"
            ));
        }
    }

    zero("feedgate_log_corrupt_entries_total".into());
    zero("feedgate_events_published_total".into());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn limit_rejections_count_under_their_typed_name() {
    let m = feedgate::metrics::Metrics::new();
    m.limit_hit(Limit::PongTimeout);
    m.limit_hit(Limit::PongTimeout);
    m.observe_corrupt_entries(3);
    m.observe_corrupt_entries(2); // never backwards
    m.observe_corrupt_entries(5);
    let text = String::from_utf8(m.render()).unwrap();
    let samples = parse_metrics(&text);
    assert_eq!(
        samples["feedgate_limit_rejections_total{limit=\"pong_timeout\"}"],
        2.0
    );
    assert_eq!(
        samples["feedgate_limit_rejections_total{limit=\"write_timeout\"}"],
        0.0
    );
    assert_eq!(samples["feedgate_log_corrupt_entries_total"], 5.0);
}
