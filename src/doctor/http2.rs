//! What the path did to HTTPS and HTTP/2, from what each check's
//! connection agreed: whether ALPN gave HTTP/2 (an edge that offers only
//! `http/1.1` downgrades every browser), whether feedgate itself was
//! spoken to in HTTP/2 or a proxy in between turned it into HTTP/1.1, and
//! whether a WebSocket may ride HTTP/2 (RFC 8441) or must take a
//! connection of its own. Over `http://` the doctor speaks HTTP/1.1, as
//! browsers do, and there is nothing to say.
//!
//! None of it changes a transport's verdict — every transport works either
//! way — so it is said as notes, advice and the `path.http2` facts of the
//! `--json` document.

use serde_json::{Value, json};

use super::checks::{LongPollRun, PollRun, StreamRun};
use crate::client::Link;

/// What the checks' connections saw.
pub struct Seen<'a> {
    /// The short poll.
    pub poll: &'a PollRun,
    /// The long poll.
    pub long_poll: &'a LongPollRun,
    /// The SSE stream.
    pub sse: &'a StreamRun,
    /// The WebSocket.
    pub ws: &'a StreamRun,
}

/// What HTTP/2 became on this path: `(facts, notes, advice)`.
pub fn judge(seen: &Seen) -> (Value, Vec<String>, Vec<String>) {
    let (mut notes, mut advice) = (Vec::new(), Vec::new());
    let links = [
        ("ws", seen.ws.link),
        ("sse", seen.sse.link),
        ("longpoll", seen.long_poll.link),
        ("poll", seen.poll.link),
    ];
    let tls = links.iter().any(|(_, l)| l.is_some_and(|l| l.tls));
    let server_saw =
        |hello: Option<&Value>| hello.and_then(|h| h["http"].as_str()).map(str::to_owned);
    let saw = json!({
        "ws": server_saw(seen.ws.hello.as_ref()),
        "sse": server_saw(seen.sse.hello.as_ref()),
        "poll": server_saw(seen.poll.hello.as_ref()),
    });
    let link_names: serde_json::Map<String, Value> = links
        .iter()
        .map(|(t, l)| (t.to_string(), json!(l.map(Link::name))))
        .collect();
    if !tls {
        let facts = json!({ "offered": ["http/1.1"], "links": link_names, "server_saw": saw });
        return (facts, notes, advice);
    }
    // The connections that carry requests (a WebSocket's may be HTTP/1.1
    // by design: see below).
    let requests = [seen.poll.link, seen.long_poll.link, seen.sse.link];
    let agreed: Vec<Link> = requests.into_iter().flatten().collect();
    let at_edge = !agreed.is_empty() && agreed.iter().all(|l| !l.http2);
    let h2 = agreed.iter().any(|l| l.http2);
    let upstream: Vec<String> = [&seen.poll.hello, &seen.sse.hello]
        .into_iter()
        .filter_map(|h| server_saw(h.as_ref()))
        .collect();
    let downgraded_upstream = h2 && upstream.iter().any(|v| v.starts_with("HTTP/1"));
    if at_edge {
        notes.push(
            "HTTP/2: the path does not offer it (ALPN chose http/1.1): browsers repeat every request's headers in full and open at most six connections to it, which polls and streams of several tabs share".into(),
        );
        advice.push(
            "nginx: `listen 443 ssl http2;` (from nginx 1.25.1: `http2 on;`); feedgate's own TLS offers h2 unless run with `--http2 false`".into(),
        );
    } else if downgraded_upstream {
        notes.push(format!(
            "HTTP/2 ends at a proxy: the doctor spoke HTTP/2, feedgate was spoken to in {} (nginx speaks HTTP/1.1 to its upstreams); feedgate's wire counters then measure that hop, not the browsers' HTTP/2",
            upstream.first().map_or("HTTP/1.1", String::as_str)
        ));
    } else if h2 {
        notes.push("HTTP/2: end to end (ALPN h2, and feedgate was spoken to in HTTP/2)".into());
    }
    match seen.ws.ws_over_h2 {
        Some(false) => {
            notes.push(format!(
                "WebSocket over HTTP/2: the path does not take it (its SETTINGS lack ENABLE_CONNECT_PROTOCOL, RFC 8441), so the WebSocket went over a connection of its own ({}), as a browser's does: one more connection and TLS handshake per page",
                seen.ws.link.map_or("HTTP/1.1", Link::name)
            ));
            advice.push(
                "WebSockets over HTTP/2 need every hop to speak RFC 8441: nginx does not; feedgate's own TLS (`serve --tls-cert … --tls-key …`) does, as do Envoy and HAProxy 2.4+".into(),
            );
        }
        Some(true) => {
            notes.push("WebSocket over HTTP/2: yes, an extended CONNECT stream (RFC 8441)".into())
        }
        None => {}
    }
    let facts = json!({
        "offered": ["h2", "http/1.1"],
        "links": link_names,
        "server_saw": saw,
        "downgraded_at_edge": at_edge,
        "downgraded_upstream": downgraded_upstream,
        "ws_over_h2": seen.ws.ws_over_h2,
    });
    (facts, notes, advice)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1_TLS: Link = Link {
        http2: false,
        tls: true,
    };
    const H2_TLS: Link = Link {
        http2: true,
        tls: true,
    };

    fn poll(link: Link, saw: &str) -> PollRun {
        PollRun {
            link: Some(link),
            hello: Some(json!({ "http": saw })),
            ..Default::default()
        }
    }

    fn stream(link: Link, saw: &str, over_h2: Option<bool>) -> StreamRun {
        StreamRun {
            link: Some(link),
            hello: Some(json!({ "http": saw })),
            ws_over_h2: over_h2,
            ..Default::default()
        }
    }

    /// What `judge` says when the poll, long poll and SSE went over
    /// `link` and feedgate saw `saw`, and the WebSocket went as `ws`.
    fn judged(link: Link, saw: &str, ws: StreamRun) -> (Value, Vec<String>, Vec<String>) {
        let (p, sse) = (poll(link, saw), stream(link, saw, None));
        let long = LongPollRun {
            link: Some(link),
            ..Default::default()
        };
        judge(&Seen {
            poll: &p,
            long_poll: &long,
            sse: &sse,
            ws: &ws,
        })
    }

    #[test]
    fn h2_end_to_end_says_so() {
        let ws = stream(H2_TLS, "HTTP/2.0", Some(true));
        let (facts, notes, advice) = judged(H2_TLS, "HTTP/2.0", ws);
        assert_eq!(facts["downgraded_at_edge"], false);
        assert_eq!(facts["downgraded_upstream"], false);
        assert_eq!(facts["ws_over_h2"], true);
        assert_eq!(facts["links"]["ws"], "h2+tls");
        assert!(advice.is_empty(), "{advice:?}");
        assert!(notes.iter().any(|n| n.contains("end to end")), "{notes:?}");
    }

    #[test]
    fn nginx_downgrades_upstream_and_strips_websockets_over_h2() {
        let ws = stream(H1_TLS, "HTTP/1.1", Some(false));
        let (facts, notes, advice) = judged(H2_TLS, "HTTP/1.1", ws);
        assert_eq!(facts["downgraded_upstream"], true);
        assert_eq!(facts["ws_over_h2"], false);
        assert!(
            notes.iter().any(|n| n.contains("ends at a proxy")),
            "{notes:?}"
        );
        assert!(advice.iter().any(|a| a.contains("RFC 8441")), "{advice:?}");
    }

    #[test]
    fn an_edge_without_h2_is_a_downgrade() {
        let ws = stream(H1_TLS, "HTTP/1.1", None);
        let (facts, _, advice) = judged(H1_TLS, "HTTP/1.1", ws);
        assert_eq!(facts["downgraded_at_edge"], true);
        assert!(advice.iter().any(|a| a.contains("ssl http2")), "{advice:?}");
    }

    #[test]
    fn cleartext_says_nothing() {
        let l = Link::default();
        let (facts, notes, advice) = judged(l, "HTTP/1.1", stream(l, "HTTP/1.1", None));
        assert!(notes.is_empty() && advice.is_empty());
        assert_eq!(facts["offered"], json!(["http/1.1"]));
    }
}
