//! Origin checks, CORS, and the expected-`Host` allow-list.
//!
//! Browsers send `Origin` on cross-site requests, and on every WebSocket
//! upgrade. By default only the server's own origin and non-browser clients
//! (no `Origin`) are allowed; `--allowed-origin` adds origins (or `*` for
//! any). The server's own origin is its scheme — `https://` on a TLS
//! connection, `http://` in the clear — + the `Host` header (HTTP/2's
//! `:authority`, which the router copies into `Host`; port 443 or 80
//! implied when absent): another scheme, such as an `https://` page in
//! front of a cleartext server, is only allowed when listed (as behind a
//! TLS-terminating proxy).
//!
//! - A WebSocket upgrade or a publish from a disallowed origin is refused
//!   with 403: this stops cross-site WebSocket hijacking and cross-site
//!   publishing through a victim's browser.
//! - Reads from an allowed origin get `Access-Control-Allow-Origin`; from
//!   others they get no CORS headers, so the browser withholds the response.
//! - Preflights (`OPTIONS`) are answered 204 for allowed origins, 403
//!   otherwise.
//!
//! "Same origin" trusts the `Host` header, which a DNS-rebinding attacker
//! controls (their name resolving to this server makes the browser send
//! `Host: evil.example` and `Origin: http://evil.example`). [`Hosts`]
//! (`--allowed-host`) closes that: when set, a request for any other `Host`
//! is refused before it is routed.

use hyper::header::{self, HeaderMap, HeaderValue};

/// The origins a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    any: bool,
    list: Vec<String>,
}

impl Origins {
    /// From `--allowed-origin` values: exact origins such as
    /// `https://app.example.com`, or `*`.
    pub fn new(allowed: &[String]) -> Origins {
        Origins {
            any: allowed.iter().any(|o| o == "*"),
            list: allowed
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// The request's `Origin`, when it has one and it is not allowed
    /// (`tls`: the request came over TLS).
    pub fn refused<'a>(&self, headers: &'a HeaderMap, tls: bool) -> Option<&'a str> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().unwrap_or("(not text)");
        (!self.allows(headers, tls)).then_some(text)
    }

    /// Whether the request may proceed: no `Origin`, the server's own (its
    /// scheme: `https` when the request came over TLS), a listed one, or
    /// any when `*` was given.
    pub fn allows(&self, headers: &HeaderMap, tls: bool) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return headers.get(header::ORIGIN).is_none();
        };
        if self.any {
            return true;
        }
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.list.contains(&origin) {
            return true;
        }
        // Same origin: the scheme and the Host we were asked by. The scheme
        // counts: in the clear an https page is another origin (list it if
        // a TLS proxy fronts the server).
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let (scheme, port) = if tls {
            ("https://", 443)
        } else {
            ("http://", 80)
        };
        match (origin.strip_prefix(scheme), host) {
            (Some(authority), Some(host)) => same_authority(authority, host, port),
            _ => false,
        }
    }

    /// Adds CORS headers to a response when the request (over TLS when
    /// `tls`) came from an allowed cross-site origin.
    pub fn decorate(&self, request: &HeaderMap, tls: bool, response: &mut HeaderMap) {
        let Some(origin) = request.get(header::ORIGIN) else {
            return;
        };
        if !self.allows(request, tls) {
            return;
        }
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response.append(header::VARY, HeaderValue::from_static("Origin"));
        response.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag, Retry-After, Retry-After-Ms"),
        );
    }

    /// Headers answering a preflight from an allowed origin.
    pub fn preflight(&self, request: &HeaderMap, tls: bool, response: &mut HeaderMap) {
        self.decorate(request, tls, response);
        response.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, POST, OPTIONS"),
        );
        response.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, last-event-id, if-none-match"),
        );
        response.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
}

/// `host[:port]` as compared: lower case, trailing dot of a fully
/// qualified name dropped, the port (`default` when absent) apart.
fn split_authority(authority: &str, default: Option<u16>) -> Option<(String, Option<u16>)> {
    let a = authority.trim();
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{h}]"), port)
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (a.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => default,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    Some((host, port))
}

/// Whether an origin's authority and a `Host` header name the same host
/// and port (`port`, the scheme's default, when either leaves it out).
fn same_authority(origin: &str, host: &str, port: u16) -> bool {
    match (
        split_authority(origin, Some(port)),
        split_authority(host, Some(port)),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The `Host` values a server answers to (`--allowed-host`, repeatable):
/// the defence against DNS rebinding. Empty: any `Host` (the default).
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    /// `(host, port)`; no port matches the host on any port.
    list: Vec<(String, Option<u16>)>,
}

impl Hosts {
    /// From `--allowed-host` values, `HOST` or `HOST:PORT`.
    ///
    /// # Errors
    /// The first value that is not a host name or address with an optional
    /// port.
    pub fn new(allowed: &[String]) -> Result<Hosts, String> {
        let list = allowed
            .iter()
            .map(|h| split_authority(h, None).ok_or_else(|| h.clone()))
            .collect::<Result<_, _>>()?;
        Ok(Hosts { list })
    }

    /// The request's `Host` (or `"(none)"`) when an allow-list is set and
    /// the request's `Host` is not on it.
    pub fn refused(&self, headers: &HeaderMap) -> Option<String> {
        if self.list.is_empty() {
            return None;
        }
        let Some(host) = headers.get(header::HOST) else {
            return Some("(none)".into());
        };
        let text = host.to_str().unwrap_or("(not text)");
        let allowed = split_authority(text, None).is_some_and(|(h, p)| {
            self.list
                .iter()
                .any(|(lh, lp)| *lh == h && (lp.is_none() || *lp == p))
        });
        (!allowed).then(|| text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn defaults_to_same_origin_and_non_browsers() {
        let o = Origins::new(&[]);
        assert!(o.allows(&req(None, "gw:8080"), false));
        assert!(o.allows(&req(Some("http://gw:8080"), "gw:8080"), false));
        assert!(!o.allows(&req(Some("http://evil.example"), "gw:8080"), false));
        assert!(!o.allows(&req(Some("null"), "gw:8080"), false));
        assert_eq!(
            o.refused(&req(Some("http://evil.example"), "gw:8080"), false),
            Some("http://evil.example")
        );
    }

    #[test]
    fn listed_and_wildcard_origins() {
        let o = Origins::new(&["https://App.example.com/".into()]);
        assert!(o.allows(&req(Some("https://app.example.com"), "gw"), false));
        assert!(!o.allows(&req(Some("https://other.example.com"), "gw"), false));
        let any = Origins::new(&["*".into()]);
        assert!(any.allows(&req(Some("https://whatever"), "gw"), false));
        let mut res = HeaderMap::new();
        any.decorate(&req(Some("https://whatever"), "gw"), false, &mut res);
        assert_eq!(res[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://whatever");
    }

    #[test]
    fn the_scheme_counts_and_default_ports_match() {
        let o = Origins::new(&[]);
        assert!(!o.allows(&req(Some("https://gw:8080"), "gw:8080"), false));
        assert!(!o.allows(&req(Some("ws://gw:8080"), "gw:8080"), false));
        assert!(!o.allows(&req(Some("chrome-extension://gw:8080"), "gw:8080"), false));
        assert!(o.allows(&req(Some("http://GW"), "gw:80"), false));
        assert!(o.allows(&req(Some("http://gw"), "gw"), false));
        assert!(!o.allows(&req(Some("http://gw"), "gw:8080"), false));
        assert!(o.allows(&req(Some("http://[::1]:8080"), "[::1]:8080"), false));
        // Behind a TLS proxy, the public https origin is listed.
        let proxied = Origins::new(&["https://feeds.example".into()]);
        assert!(proxied.allows(&req(Some("https://feeds.example"), "feeds.example"), false));
    }

    #[test]
    fn over_tls_the_own_origin_is_https() {
        let o = Origins::new(&[]);
        assert!(o.allows(&req(Some("https://gw:8443"), "gw:8443"), true));
        assert!(o.allows(&req(Some("https://gw"), "gw:443"), true));
        assert!(!o.allows(&req(Some("http://gw:8443"), "gw:8443"), true));
        assert!(!o.allows(&req(Some("https://gw"), "gw:80"), true));
        assert!(!o.allows(&req(Some("https://evil.example"), "gw:8443"), true));
        assert_eq!(
            o.refused(&req(Some("http://gw:8443"), "gw:8443"), true),
            Some("http://gw:8443")
        );
        let mut res = HeaderMap::new();
        o.decorate(&req(Some("https://gw:8443"), "gw:8443"), true, &mut res);
        assert_eq!(res[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://gw:8443");
    }

    #[test]
    fn hosts_allow_list() {
        let open = Hosts::new(&[]).unwrap();
        assert_eq!(open.refused(&req(None, "evil.example")), None);
        let h = Hosts::new(&[
            "Feeds.Example".into(),
            "127.0.0.1:8080".into(),
            "[::1]:8080".into(),
        ])
        .unwrap();
        assert_eq!(h.refused(&req(None, "feeds.example")), None);
        assert_eq!(h.refused(&req(None, "feeds.example.:8443")), None);
        assert_eq!(h.refused(&req(None, "127.0.0.1:8080")), None);
        assert_eq!(h.refused(&req(None, "[::1]:8080")), None);
        assert_eq!(
            h.refused(&req(None, "127.0.0.1:9090")).as_deref(),
            Some("127.0.0.1:9090")
        );
        assert_eq!(
            h.refused(&req(Some("http://evil.example"), "evil.example"))
                .as_deref(),
            Some("evil.example")
        );
        assert_eq!(h.refused(&HeaderMap::new()).as_deref(), Some("(none)"));
        assert!(Hosts::new(&["http://x".into()]).is_err());
        assert!(Hosts::new(&["x:port".into()]).is_err());
    }
}
