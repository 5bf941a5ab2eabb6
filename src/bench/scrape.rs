//! Reading a feedgate server's `/metrics`: the server's side of the byte,
//! delivery and request counts, compared with what the clients counted.
//!
//! The scrapes themselves are attributed to transport `other` by the
//! server, so they never disturb the subscriber transports' figures.
//!
//! The server labels its series by link too (`protocol` h1|h2, `tls`
//! true|false): a transport's figures are summed over them, and its wire
//! bytes are also kept per link, so a run can show where the server put
//! them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hyper::StatusCode;

use super::BenchError;
use crate::client::{Endpoint, HttpConn, Link};
use crate::protocol::Transport;
use crate::wire::ByteCount;

/// One scrape: series (name plus sorted `k="v"` labels) → value.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    series: HashMap<String, f64>,
}

/// Fetches and parses `GET /metrics`.
///
/// # Errors
/// When the server cannot be reached or does not answer 200.
pub async fn scrape(ep: &Endpoint) -> Result<Sample, BenchError> {
    let mut http = HttpConn::connect(ep, Arc::new(ByteCount::default())).await?;
    let (status, body) = http
        .request(hyper::Method::GET, &ep.path("metrics"), None)
        .await?;
    if status != StatusCode::OK {
        return Err(BenchError::Server(format!("/metrics answered {status}")));
    }
    Ok(parse(&String::from_utf8_lossy(&body)))
}

/// Scrapes every node and adds their series up: the counters of a
/// multi-node run, as if it were one server.
///
/// # Errors
/// As [`scrape`].
pub async fn scrape_all(eps: &[Endpoint]) -> Result<Sample, BenchError> {
    let mut total = Sample::default();
    for ep in eps {
        for (k, v) in scrape(ep).await?.series {
            *total.series.entry(k).or_insert(0.0) += v;
        }
    }
    Ok(total)
}

/// Parses the Prometheus text format (the subset feedgate writes).
pub fn parse(text: &str) -> Sample {
    let mut series = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        series.insert(normalize(key), v);
    }
    Sample { series }
}

/// `name{b="2",a="1"}` → `name{a="1",b="2"}`.
fn normalize(key: &str) -> String {
    let Some((name, labels)) = key.split_once('{') else {
        return key.to_owned();
    };
    let mut parts: Vec<&str> = labels
        .trim_end_matches('}')
        .split(',')
        .filter(|p| !p.is_empty())
        .collect();
    parts.sort_unstable();
    format!("{name}{{{}}}", parts.join(","))
}

impl Sample {
    /// A series' value, 0 when absent.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        parts.sort_unstable();
        let key = if parts.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{}}}", parts.join(","))
        };
        self.series.get(&key).copied().unwrap_or(0.0)
    }

    /// Sum of every series of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        self.series
            .iter()
            .filter(|(k, _)| {
                let (n, rest) = k.split_once('{').unwrap_or((k.as_str(), ""));
                n == name
                    && want
                        .iter()
                        .all(|w| rest.split(',').any(|p| p.trim_end_matches('}') == w))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// The server's figures for transport `t`, as this sample minus `before`.
    pub fn delta(&self, before: &Sample, t: Transport) -> ServerCounts {
        let l = t.as_str();
        let d = |name: &str, labels: &[(&str, &str)]| {
            (self.sum(name, labels) - before.sum(name, labels)).max(0.0) as u64
        };
        let links = Link::ALL
            .iter()
            .map(|link| {
                let on = [
                    ("transport", l),
                    ("protocol", link.protocol()),
                    ("tls", link.tls_label()),
                ];
                (link.name().to_owned(), d("feedgate_wire_bytes_total", &on))
            })
            .filter(|(_, bytes)| *bytes > 0)
            .collect();
        ServerCounts {
            links,
            wire_out: d(
                "feedgate_wire_bytes_total",
                &[("transport", l), ("direction", "out")],
            ),
            wire_in: d(
                "feedgate_wire_bytes_total",
                &[("transport", l), ("direction", "in")],
            ),
            delivered: d("feedgate_events_delivered_total", &[("transport", l)]),
            payload: d("feedgate_payload_bytes_total", &[("transport", l)]),
            requests: d("feedgate_requests_total", &[("transport", l)]),
            latency_p50_us: self.server_latency(before, t, 0.50),
            latency_p99_us: self.server_latency(before, t, 0.99),
        }
    }

    /// The server's delivery-latency histogram for `t`, summed over its
    /// links: (upper bound in seconds, cumulative count), ascending.
    fn buckets(&self, t: Transport) -> Vec<(f64, f64)> {
        let want = format!("transport=\"{}\"", t.as_str());
        let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        let series = self.series.iter().filter_map(|(k, v)| {
            let rest = k.strip_prefix("feedgate_delivery_latency_seconds_bucket{")?;
            let labels: Vec<&str> = rest.trim_end_matches('}').split(',').collect();
            if !labels.contains(&want.as_str()) {
                return None;
            }
            let le = labels.iter().find_map(|l| l.strip_prefix("le="))?;
            let le = le.trim_matches('"');
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, *v))
        });
        for (le, v) in series {
            // Keyed by the bound's bits: bounds are the same few numbers
            // on every link, and non-negative, so their bits sort as they do.
            by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += v;
        }
        by_le.into_values().collect()
    }

    /// Quantile `q` of the server's publish → socket latency for `t` over
    /// the run (this sample minus `before`), in µs, interpolated within the
    /// histogram's buckets (so only as fine as they are).
    pub fn server_latency(&self, before: &Sample, t: Transport, q: f64) -> Option<u64> {
        let a = before.buckets(t);
        let b = self.buckets(t);
        if a.len() != b.len() || b.is_empty() {
            return None;
        }
        let counts: Vec<(f64, f64)> = b.iter().zip(&a).map(|(b, a)| (b.0, b.1 - a.1)).collect();
        let total = counts.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut prev = (0.0, 0.0);
        for &(le, c) in &counts {
            if c >= rank {
                if le.is_infinite() {
                    return Some((prev.0 * 1e6) as u64);
                }
                let frac = if c > prev.1 {
                    (rank - prev.1) / (c - prev.1)
                } else {
                    1.0
                };
                return Some(((prev.0 + frac * (le - prev.0)) * 1e6) as u64);
            }
            prev = (le, c);
        }
        None
    }

    /// Open connections under transport `t`, on every link.
    pub fn connections(&self, t: Transport) -> u64 {
        self.sum("feedgate_connections", &[("transport", t.as_str())]) as u64
    }
}

/// What the server counted for one transport during a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerCounts {
    /// Wire bytes, in and out, by link (`h1`, `h2`, `h1+tls`, `h2+tls`;
    /// only those that carried any).
    #[serde(default)]
    pub links: BTreeMap<String, u64>,
    /// Bytes written to the transport's sockets.
    pub wire_out: u64,
    /// Bytes read from them.
    pub wire_in: u64,
    /// Events delivered.
    pub delivered: u64,
    /// Bytes of event JSON delivered.
    pub payload: u64,
    /// Requests answered.
    pub requests: u64,
    /// Median publish → handed-to-the-socket latency the server measured
    /// (µs, interpolated in its histogram buckets).
    pub latency_p50_us: Option<u64>,
    /// Its 99th percentile.
    pub latency_p99_us: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_subtracts() {
        let a = parse(
            "# HELP x\nfeedgate_wire_bytes_total{transport=\"ws\",direction=\"out\"} 100\n\
             feedgate_requests_total{transport=\"ws\",result=\"stream\"} 2\n\
             feedgate_requests_total{transport=\"ws\",result=\"error\"} 1\n\
             feedgate_connections{transport=\"ws\"} 3\n",
        );
        let b = parse(
            "feedgate_wire_bytes_total{direction=\"out\",transport=\"ws\"} 350\n\
             feedgate_requests_total{transport=\"ws\",result=\"stream\"} 7\n\
             feedgate_requests_total{transport=\"ws\",result=\"error\"} 1\n",
        );
        let d = b.delta(&a, Transport::Ws);
        assert_eq!(d.wire_out, 250);
        assert_eq!(d.requests, 5);
        assert_eq!(a.connections(Transport::Ws), 3);
        let h0 = parse(
            "feedgate_delivery_latency_seconds_bucket{transport=\"ws\",le=\"0.001\"} 0\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"ws\",le=\"0.01\"} 0\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"ws\",le=\"+Inf\"} 0\n",
        );
        let h1 = parse(
            "feedgate_delivery_latency_seconds_bucket{transport=\"ws\",le=\"0.001\"} 50\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"ws\",le=\"0.01\"} 100\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"ws\",le=\"+Inf\"} 100\n",
        );
        assert_eq!(h1.server_latency(&h0, Transport::Ws, 0.5), Some(1000));
        assert_eq!(h1.server_latency(&h0, Transport::Ws, 0.99), Some(9820));
    }

    #[test]
    fn sums_over_links_and_keeps_each() {
        let a = parse(
            "feedgate_wire_bytes_total{transport=\"sse\",direction=\"out\",protocol=\"h1\",tls=\"false\"} 0\n\
             feedgate_wire_bytes_total{transport=\"sse\",direction=\"out\",protocol=\"h2\",tls=\"true\"} 0\n\
             feedgate_connections{transport=\"sse\",protocol=\"h1\",tls=\"false\"} 1\n\
             feedgate_connections{transport=\"sse\",protocol=\"h2\",tls=\"true\"} 2\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"sse\",protocol=\"h1\",tls=\"false\",le=\"0.001\"} 0\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"sse\",protocol=\"h2\",tls=\"true\",le=\"0.001\"} 0\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"sse\",protocol=\"h1\",tls=\"false\",le=\"+Inf\"} 0\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"sse\",protocol=\"h2\",tls=\"true\",le=\"+Inf\"} 0\n",
        );
        let b = parse(
            "feedgate_wire_bytes_total{transport=\"sse\",direction=\"out\",protocol=\"h1\",tls=\"false\"} 10\n\
             feedgate_wire_bytes_total{transport=\"sse\",direction=\"out\",protocol=\"h2\",tls=\"true\"} 90\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"sse\",protocol=\"h1\",tls=\"false\",le=\"0.001\"} 1\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"sse\",protocol=\"h2\",tls=\"true\",le=\"0.001\"} 1\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"sse\",protocol=\"h1\",tls=\"false\",le=\"+Inf\"} 1\n\
             feedgate_delivery_latency_seconds_bucket{transport=\"sse\",protocol=\"h2\",tls=\"true\",le=\"+Inf\"} 3\n",
        );
        assert_eq!(a.connections(Transport::Sse), 3);
        let d = b.delta(&a, Transport::Sse);
        assert_eq!(d.wire_out, 100);
        assert_eq!(d.links.get("h2+tls"), Some(&90));
        assert_eq!(d.links.get("h1"), Some(&10));
        assert!(!d.links.contains_key("h2"));
        // Half of the four deliveries under 1 ms, summed over both links.
        assert_eq!(b.server_latency(&a, Transport::Sse, 0.5), Some(1000));
    }
}
