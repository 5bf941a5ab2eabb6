//! `feedgate doctor` as a new user runs it: it says at once what it will
//! check and for how long, prints each transport's verdict as soon as it
//! is known (long before the run ends), and keeps `--json -` standard
//! output a JSON document alone.

mod common;
mod tls_proxy;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use feedgate::Config;
use tls_proxy::{Edge, TlsProxy};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// `feedgate doctor URL --quick …`, its standard output piped.
fn doctor(url: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_feedgate"))
        .args([
            "doctor",
            url,
            "--quick",
            "--count",
            "2",
            "--interval",
            "50ms",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs")
}

/// The longest a `--quick` run may go without printing: its 10 s of
/// silence and the doctor's own margin, with room for a loaded machine.
const QUICK_PATIENCE: Duration = Duration::from_secs(40);

/// The next line of output, failing the test if none comes in time.
async fn line(lines: &mut Lines<BufReader<ChildStdout>>) -> Option<String> {
    tokio::time::timeout(QUICK_PATIENCE, lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
}

#[tokio::test]
async fn says_what_it_checks_at_once_and_each_verdict_as_it_is_known() {
    let s = start(Config::default()).await;
    let mut child = doctor(&s.url(), &[]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    // The first line says what it checks and for how long, while the run
    // has only begun.
    let header = line(&mut lines).await.expect("a header line");
    assert!(
        header.starts_with(&format!("feedgate doctor {}: checking", s.url())),
        "{header}"
    );
    assert!(header.contains("about 11 s"), "{header}");
    assert!(header.contains("silent 10 s"), "{header}");
    assert!(child.try_wait().unwrap().is_none(), "exited already");

    // Each transport's verdict comes on its own; the short poll's first,
    // while the streams still wait out their 10 s of silence.
    let mut rows = Vec::new();
    let mut rest = Vec::new();
    while let Some(l) = line(&mut lines).await {
        let fields: Vec<&str> = l.split_whitespace().collect();
        match fields.as_slice() {
            [t @ ("ws" | "sse" | "longpoll" | "poll"), verdict, ..] => {
                if *t == "poll" {
                    assert!(
                        child.try_wait().unwrap().is_none(),
                        "the poll verdict came only at the end"
                    );
                }
                let summary = rest.iter().any(|r: &String| r.contains(": done in "));
                assert!(!summary, "a verdict after the summary: {l}");
                rows.push((t.to_string(), verdict.to_string()));
            }
            _ => rest.push(l),
        }
    }
    assert!(child.wait().await.unwrap().success());
    assert_eq!(rows[0].0, "poll", "{rows:?}");
    let mut transports: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    transports.sort();
    assert_eq!(transports, ["longpoll", "poll", "sse", "ws"]);
    assert!(rows.iter().all(|(_, v)| v == "ok"), "{rows:?}");
    let done = rest
        .iter()
        .find(|l| l.contains(": done in "))
        .unwrap_or_else(|| panic!("no summary in {rest:?}"));
    assert!(done.starts_with(&format!("feedgate doctor {}", s.url())));
    assert!(
        rest.iter()
            .any(|l| l == "recommended: ws, sse, longpoll, poll"),
        "{rest:?}"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn json_to_standard_output_stays_a_document_alone() {
    let s = start(Config::default()).await;
    let out = doctor(&s.url(), &["--json", "-"])
        .wait_with_output()
        .await
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort();
    assert_eq!(
        keys,
        [
            "advice",
            "notes",
            "path",
            "plan",
            "recommended",
            "took_s",
            "transports",
            "url"
        ]
    );
    let transports: Vec<&str> = doc["transports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transport"].as_str().unwrap())
        .collect();
    assert_eq!(transports, ["ws", "sse", "longpoll", "poll"]);
    assert_eq!(doc["plan"]["idle_s"], 10.0);
    // The words went to standard error.
    let words = String::from_utf8(out.stderr).unwrap();
    assert!(words.starts_with("feedgate doctor "), "{words}");
    assert!(
        words.contains("recommended: ws, sse, longpoll, poll"),
        "{words}"
    );
    s.shutdown().await.unwrap();
}

/// `feedgate doctor URL --tls-insecure --json -`, which must succeed: its
/// document.
async fn doctor_json(url: &str) -> serde_json::Value {
    let out = doctor(url, &["--tls-insecure", "--json", "-"])
        .wait_with_output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// `feedgate doctor https://…` against feedgate's own TLS.
async fn doctor_https(config: Config) -> serde_json::Value {
    let config = Config {
        tls: Some(feedgate::tls::TlsSource::SelfSigned),
        ..config
    };
    let s = start(config).await;
    let doc = doctor_json(&format!("https://{}", s.addr())).await;
    s.shutdown().await.unwrap();
    doc
}

/// `feedgate doctor https://…` through a [`TlsProxy`] broken as `edge`,
/// in front of a cleartext feedgate.
async fn doctor_through(edge: Edge) -> serde_json::Value {
    let s = start(Config::default()).await;
    let proxy = TlsProxy::start(s.addr(), edge).await;
    let doc = doctor_json(&proxy.url()).await;
    drop(proxy);
    s.shutdown().await.unwrap();
    doc
}

/// Every line of the report a person reads, notes and advice together.
fn said(doc: &serde_json::Value) -> String {
    format!("{} {}", doc["notes"], doc["advice"])
}

/// The verdict and link of each transport.
fn verdicts(doc: &serde_json::Value) -> Vec<(String, String, String)> {
    doc["transports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
            (s(&t["transport"]), s(&t["verdict"]), s(&t["facts"]["link"]))
        })
        .collect()
}

#[tokio::test]
async fn over_https_every_transport_rides_http2_websockets_too() {
    let doc = doctor_https(Config::default()).await;
    for (t, verdict, link) in verdicts(&doc) {
        assert_eq!(verdict, "ok", "{t}");
        assert_eq!(link, "h2+tls", "{t}: ALPN chose h2");
    }
    // The line a person reads says it too.
    for t in doc["transports"].as_array().unwrap() {
        let detail = t["detail"].as_str().unwrap();
        assert!(detail.ends_with("over h2+tls"), "{detail}");
    }
    let h2 = &doc["path"]["http2"];
    assert_eq!(h2["ws_over_h2"], true, "{h2}");
    assert_eq!(h2["downgraded_at_edge"], false, "{h2}");
    assert_eq!(h2["downgraded_upstream"], false, "{h2}");
    assert_eq!(h2["server_saw"]["sse"], "HTTP/2.0", "{h2}");
    let notes = doc["notes"].to_string();
    assert!(notes.contains("HTTP/2: end to end"), "{notes}");
}

#[tokio::test]
async fn a_server_without_http2_is_flagged_as_a_downgrade() {
    let doc = doctor_https(Config {
        http2: false,
        ..Config::default()
    })
    .await;
    for (t, verdict, link) in verdicts(&doc) {
        assert_eq!(verdict, "ok", "{t}");
        assert_eq!(link, "h1+tls", "{t}: ALPN chose http/1.1");
    }
    let h2 = &doc["path"]["http2"];
    assert_eq!(h2["downgraded_at_edge"], true, "{h2}");
    // HTTP/2 was never spoken: no question of WebSockets over it.
    assert_eq!(h2["ws_over_h2"], serde_json::Value::Null, "{h2}");
    let advice: Vec<&str> = doc["transports"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            t["advice"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|a| a.as_str())
        })
        .collect();
    assert!(advice.is_empty(), "per-transport advice: {advice:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_by_default() {
    let s = start(Config {
        tls: Some(feedgate::tls::TlsSource::SelfSigned),
        ..Config::default()
    })
    .await;
    let url = format!("https://{}", s.addr());
    let out = doctor(&url, &["--json", "-"])
        .wait_with_output()
        .await
        .unwrap();
    // Nothing works on a path whose certificate is not trusted, and the
    // doctor says why rather than trusting it.
    assert!(!out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let poll = doc["transports"][3].to_string();
    assert!(poll.contains("blocked") && poll.contains("tls"), "{poll}");
    s.shutdown().await.unwrap();
}

/// An edge that terminates TLS offering only `http/1.1`: every transport
/// still works, each says it went over HTTP/1.1 and TLS, and the path is
/// flagged as a downgrade with the fix.
#[tokio::test]
async fn a_proxy_offering_only_http11_is_flagged_as_a_downgrade() {
    let doc = doctor_through(Edge::Http11Only).await;
    for (t, verdict, link) in verdicts(&doc) {
        assert_eq!(verdict, "ok", "{t}");
        assert_eq!(link, "h1+tls", "{t}: the edge's ALPN chose http/1.1");
    }
    let h2 = &doc["path"]["http2"];
    assert_eq!(h2["downgraded_at_edge"], true, "{h2}");
    assert_eq!(h2["server_saw"]["sse"], "HTTP/1.1", "{h2}");
    assert_eq!(h2["ws_over_h2"], serde_json::Value::Null, "{h2}");
    let said = said(&doc);
    assert!(said.contains("does not offer it"), "{said}");
    assert!(said.contains("ssl http2"), "{said}");
}

/// An edge that speaks HTTP/2 but drops RFC 8441 from the server's
/// SETTINGS: requests and streams ride HTTP/2 end to end, the WebSocket
/// goes over a connection of its own (HTTP/1.1 over TLS) and the path is
/// flagged for stripping WebSockets over HTTP/2.
#[tokio::test]
async fn a_proxy_stripping_websockets_over_http2_is_flagged() {
    let doc = doctor_through(Edge::NoWebSocketOverH2).await;
    for (t, verdict, link) in verdicts(&doc) {
        assert_eq!(verdict, "ok", "{t}");
        let want = if t == "ws" { "h1+tls" } else { "h2+tls" };
        assert_eq!(link, want, "{t}");
    }
    let h2 = &doc["path"]["http2"];
    assert_eq!(h2["ws_over_h2"], false, "{h2}");
    assert_eq!(h2["downgraded_at_edge"], false, "{h2}");
    assert_eq!(h2["downgraded_upstream"], false, "{h2}");
    assert_eq!(h2["server_saw"]["sse"], "HTTP/2.0", "{h2}");
    assert_eq!(h2["server_saw"]["ws"], "HTTP/1.1", "{h2}");
    let said = said(&doc);
    assert!(said.contains("does not take it"), "{said}");
    assert!(said.contains("RFC 8441"), "{said}");
}
