//! `feedgate bench` on tiny parameters against an in-process server: every
//! transport delivers every event exactly once and in order, the clients'
//! byte counts equal the server's, and the JSON report round-trips through
//! its documented schema. No timing is asserted.

#![cfg(feature = "bench")]

use std::sync::Arc;
use std::time::Duration;

use feedgate::bench::{self, Plan, Report};
use feedgate::client::{Endpoint, HttpConn, Link, SubscribeOptions, Subscriber};
use feedgate::log::Cursor;
use feedgate::metrics::Transport;
use hyper::Method;
use serde_json::Value;

fn tiny() -> Plan {
    Plan {
        transports: Transport::SUBSCRIBERS.to_vec(),
        clients: 3,
        rate: 20.0,
        payload: 100,
        duration: Duration::from_secs(2),
        poll_interval: Duration::from_millis(200),
        drain: Duration::from_secs(10),
        server_threads: 1,
        ..Plan::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_delivers_everything_once_and_bytes_agree() {
    let report = bench::run(&tiny()).await.expect("bench runs");
    assert_eq!(report.publish.errors, 0);
    assert_eq!(report.publish.published, 40);
    assert_eq!(report.transports.len(), 4);
    for t in &report.transports {
        let name = &t.transport;
        assert_eq!(t.connected, 3, "{name}: {:?}", t.first_error);
        assert_eq!(t.errors, 0, "{name}: {:?}", t.first_error);
        assert_eq!(t.expected, 120, "{name}");
        assert_eq!(t.delivered, 120, "{name}");
        assert_eq!((t.lost, t.dup, t.reordered), (0, 0, 0), "{name}");
        assert_eq!(t.latency.count, 120, "{name}");
        let server = t.server.clone().expect("feedgate reports server counts");
        assert_eq!(server.wire_out, t.client_bytes_down, "{name} down");
        assert_eq!(server.wire_in, t.client_bytes_up, "{name} up");
        assert_eq!(t.bytes_agree, Some(true), "{name}");
        // The server also delivered each subscriber the end marker.
        assert_eq!(server.delivered, 120 + 3, "{name}");
        assert_eq!(server.requests, t.requests, "{name}");
        assert!(
            t.bytes_per_event_down > 100.0,
            "{name}: the payload alone is 100 B"
        );
    }
    let by = |n: &str| report.transports.iter().find(|t| t.transport == n).unwrap();
    assert_eq!(by("ws").requests, 3);
    assert_eq!(by("sse").requests, 3);
    assert!(by("poll").requests > 3);

    // The JSON report: write it, read it back, check the schema.
    let dir = std::env::temp_dir().join(format!("feedgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.json");
    bench::write_json(&path, &report).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    check_schema(&v);
    let back: Report = serde_json::from_str(&text).expect("the schema parses back");
    assert_eq!(back.transports[0].delivered, report.transports[0].delivered);

    // The chart draws, without system fonts.
    let svg = bench::svg::comparison(&report).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("ws"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn check_schema(v: &Value) {
    let obj = |v: &Value, k: &str| -> Value {
        let f = v.get(k).unwrap_or_else(|| panic!("missing field {k}"));
        f.clone()
    };
    assert_eq!(obj(v, "schema"), "feedgate-bench/1");
    assert_eq!(obj(v, "target"), "feedgate");
    assert!(obj(v, "url").is_string());
    assert_eq!(obj(v, "in_process"), true);
    assert!(obj(v, "elapsed_s").is_f64());
    let params = obj(v, "params");
    for k in ["clients", "payload"] {
        assert!(obj(&params, k).is_u64(), "params.{k}");
    }
    for k in [
        "rate",
        "duration_s",
        "poll_interval_s",
        "longpoll_timeout_s",
    ] {
        assert!(obj(&params, k).is_number(), "params.{k}");
    }
    assert!(obj(&params, "transports").is_array());
    let machine = obj(v, "machine");
    assert!(obj(&machine, "cpus").is_u64());
    assert!(obj(&machine, "cpu_model").is_string());
    let publish = obj(v, "publish");
    for k in [
        "published",
        "errors",
        "client_bytes_up",
        "client_bytes_down",
    ] {
        assert!(obj(&publish, k).is_u64(), "publish.{k}");
    }
    let cpu = obj(v, "cpu");
    assert!(obj(&cpu, "bench_s").is_number());
    assert!(obj(&cpu, "wall_s").is_number());
    let rows = obj(v, "transports");
    let rows = rows.as_array().expect("transports is an array");
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert!(obj(row, "transport").is_string());
        for k in [
            "clients",
            "connected",
            "errors",
            "expected",
            "delivered",
            "lost",
            "dup",
            "reordered",
            "gaps",
            "resets",
            "client_bytes_down",
            "client_bytes_up",
            "message_bytes",
            "requests",
            "empty_responses",
        ] {
            assert!(obj(row, k).is_u64(), "transports[].{k}");
        }
        for k in [
            "deliveries_per_s",
            "bytes_per_event_down",
            "bytes_per_event_up",
            "overhead_x",
            "events_per_response",
        ] {
            assert!(obj(row, k).is_number(), "transports[].{k}");
        }
        let lat = obj(row, "latency");
        for k in ["count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
            assert!(obj(&lat, k).is_u64(), "latency.{k}");
        }
        let server = obj(row, "server");
        for k in ["wire_out", "wire_in", "delivered", "payload", "requests"] {
            assert!(obj(&server, k).is_u64(), "server.{k}");
        }
        assert_eq!(obj(row, "bytes_agree"), true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_draws_the_crossover_chart() {
    let plan = Plan {
        transports: vec![Transport::Poll, Transport::Ws],
        clients: 2,
        duration: Duration::from_secs(1),
        ..tiny()
    };
    let series = bench::sweep::run(&plan, bench::args::SweepParam::Rate, &[5.0, 20.0])
        .await
        .expect("sweep runs");
    assert_eq!(series.runs.len(), 2);
    for r in &series.runs {
        for t in &r.transports {
            assert_eq!((t.lost, t.dup, t.reordered), (0, 0, 0), "{}", t.transport);
        }
    }
    let svg = bench::svg::crossover(&series).unwrap();
    assert!(svg.contains("poll") && svg.contains("ws"));
    assert!(series.text().contains("rate"));
}

/// The same run on HTTP/2 in the clear (h2c), HTTP/1.1 over TLS and
/// HTTP/2 over TLS: every transport delivers everything once, each
/// subscriber's connection spoke the link asked for (WebSockets as
/// extended CONNECT streams where HTTP/2 is spoken), the server counted
/// every wire byte under that link, and the clients' counts — ciphertext
/// and handshakes included — equal the server's to the byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_over_h2c_tls_and_h2_tls_delivers_and_bytes_agree() {
    for link in ["h2", "h1+tls", "h2+tls"] {
        let link = Link::parse(link).unwrap();
        let plan = Plan {
            clients: 2,
            duration: Duration::from_secs(1),
            link,
            ..tiny()
        };
        let report = bench::run(&plan).await.expect("bench runs");
        assert_eq!(report.params.link, link.name());
        assert!(
            report
                .url
                .starts_with(if link.tls { "https://" } else { "http://" })
        );
        assert_eq!(report.publish.errors, 0, "{link}");
        for t in &report.transports {
            let name = format!("{} on {link}", t.transport);
            assert_eq!(t.errors, 0, "{name}: {:?}", t.first_error);
            assert_eq!(t.delivered, t.expected, "{name}");
            assert_eq!((t.lost, t.dup, t.reordered), (0, 0, 0), "{name}");
            let used: Vec<(&str, u64)> = t.links.iter().map(|(l, n)| (l.as_str(), *n)).collect();
            assert_eq!(used, [(link.name(), 2)], "{name}: links used");
            let server = t.server.clone().expect("server counts");
            let on: Vec<&str> = server.links.keys().map(String::as_str).collect();
            assert_eq!(on, [link.name()], "{name}: where the server counted");
            assert_eq!(server.wire_out, t.client_bytes_down, "{name} down");
            assert_eq!(server.wire_in, t.client_bytes_up, "{name} up");
            assert_eq!(t.bytes_agree, Some(true), "{name}");
            // No model of HTTP/2 or TLS framing: only of HTTP/1.1.
            assert!(t.model.is_none(), "{name}");
        }
        // One request per stream, as on HTTP/1.1.
        let ws = report
            .transports
            .iter()
            .find(|t| t.transport == "ws")
            .unwrap();
        assert_eq!(ws.requests, 2, "{link}");
    }
}

/// `--links`: each transport alone on each link, one table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_compare_each_transport_on_each_link() {
    let plan = Plan {
        transports: vec![Transport::Sse],
        clients: 2,
        duration: Duration::from_secs(1),
        ..tiny()
    };
    let links = bench::args::links(&["h1".into(), "h2+tls".into()]).unwrap();
    let compared = bench::links::run(&plan, &links).await.expect("runs");
    assert_eq!(compared.runs.len(), 2);
    let h1 = compared.get("sse", "h1").unwrap().row();
    let h2_tls = compared.get("sse", "h2+tls").unwrap().row();
    assert_eq!((h1.lost, h2_tls.lost), (0, 0));
    for link in ["h1", "h2+tls"] {
        let t = &compared.get("sse", link).unwrap().report.transports[0];
        let server = t.server.clone().expect("server counts");
        assert_eq!(
            (server.wire_out, server.wire_in),
            (t.client_bytes_down, t.client_bytes_up),
            "{link}: server (out, in) vs clients' (down, up)"
        );
    }
    assert_eq!((h1.agree, h2_tls.agree), (Some(true), Some(true)));
    // TLS adds a handshake, record headers and tags; HTTP/2 a frame
    // header per event: the same events cost more bytes on the wire.
    assert!(h2_tls.down > h1.down, "{} vs {}", h2_tls.down, h1.down);
    assert!(h1.server_us.is_some());
    let text = compared.text();
    assert!(
        text.contains("h2+tls") && text.contains("server µs/delivery"),
        "{text}"
    );
    let svg = bench::svg::links(&compared).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("h2+tls"));
    let json = serde_json::to_string(&compared).unwrap();
    assert!(json.contains(bench::links::SCHEMA));
}

/// A simulated browser on HTTP/2 (`Endpoint::shared`, what the bench's
/// `--split-topics` subscribers use): three event streams are streams of
/// one connection; without sharing they are three connections. The
/// server's connection gauge says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_endpoint_carries_its_streams_on_one_h2_connection() {
    let server =
        feedgate::RunningServer::start(([127, 0, 0, 1], 0).into(), feedgate::Config::default())
            .await
            .unwrap();
    let base = Endpoint::parse(&server.url()).unwrap();
    // Open SSE connections on HTTP/2, as the server counts them.
    let sse_on_h2 = || async {
        let mut http = HttpConn::connect(&base, Default::default()).await.unwrap();
        let (_, body) = http.request(Method::GET, "/metrics", None).await.unwrap();
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| {
                l.starts_with("feedgate_connections{")
                    && l.contains(r#"transport="sse""#)
                    && l.contains(r#"protocol="h2""#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    for (shared, want) in [(true, 1.0), (false, 3.0)] {
        let ep = match shared {
            true => base.clone().with_http2(true).shared(),
            false => base.clone().with_http2(true),
        };
        let mut subs = Vec::new();
        for t in ["a", "b", "c"] {
            let opts = SubscribeOptions::default();
            let sub = Subscriber::connect(&ep, t, Transport::Sse, Cursor::default(), opts)
                .await
                .unwrap();
            assert_eq!(sub.link().map(|l| l.name()), Some("h2"));
            subs.push(sub);
        }
        if shared {
            // One connection, one count: every subscription reports it.
            assert!(
                subs.windows(2)
                    .all(|w| Arc::ptr_eq(w[0].bytes(), w[1].bytes()))
            );
        }
        // Each stream was answered (its head read) before `connect`
        // returned, so the server counted its connection already.
        assert_eq!(sse_on_h2().await, want, "shared: {shared}");
        // The shared connection closes with the endpoint's last clone.
        drop(subs);
        drop(ep);
        // The next case starts when the server has seen these close.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while sse_on_h2().await > 0.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "connections never closed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    server.shutdown().await.unwrap();
}
