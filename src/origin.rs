//! Origin checks and CORS.
//!
//! Browsers send `Origin` on cross-site requests, and on every WebSocket
//! upgrade. By default only the server's own origin (the `Origin` whose
//! host matches the `Host` header) and non-browser clients (no `Origin`) are
//! allowed; `--allowed-origin` adds origins (or `*` for any).
//!
//! - A WebSocket upgrade or a publish from a disallowed origin is refused
//!   with 403: this stops cross-site WebSocket hijacking and cross-site
//!   publishing through a victim's browser.
//! - Reads from an allowed origin get `Access-Control-Allow-Origin`; from
//!   others they get no CORS headers, so the browser withholds the response.
//! - Preflights (`OPTIONS`) are answered 204 for allowed origins, 403
//!   otherwise.

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

    /// The request's `Origin`, when it has one and it is not allowed.
    pub fn refused<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().unwrap_or("(not text)");
        (!self.allows(headers)).then_some(text)
    }

    /// Whether the request may proceed: no `Origin`, the server's own, a
    /// listed one, or any when `*` was given.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
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
        // Same origin: the Origin's host[:port] is the Host we were asked by.
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let authority = origin.split_once("://").map(|(_, a)| a);
        matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
    }

    /// Adds CORS headers to a response when the request came from an
    /// allowed cross-site origin.
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        let Some(origin) = request.get(header::ORIGIN) else {
            return;
        };
        if !self.allows(request) {
            return;
        }
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response.append(header::VARY, HeaderValue::from_static("Origin"));
        response.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag, Retry-After"),
        );
    }

    /// Headers answering a preflight from an allowed origin.
    pub fn preflight(&self, request: &HeaderMap, response: &mut HeaderMap) {
        self.decorate(request, response);
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
        assert!(o.allows(&req(None, "gw:8080")));
        assert!(o.allows(&req(Some("http://gw:8080"), "gw:8080")));
        assert!(!o.allows(&req(Some("http://evil.example"), "gw:8080")));
        assert!(!o.allows(&req(Some("null"), "gw:8080")));
        assert_eq!(
            o.refused(&req(Some("http://evil.example"), "gw:8080")),
            Some("http://evil.example")
        );
    }

    #[test]
    fn listed_and_wildcard_origins() {
        let o = Origins::new(&["https://App.example.com/".into()]);
        assert!(o.allows(&req(Some("https://app.example.com"), "gw")));
        assert!(!o.allows(&req(Some("https://other.example.com"), "gw")));
        let any = Origins::new(&["*".into()]);
        assert!(any.allows(&req(Some("https://whatever"), "gw")));
        let mut res = HeaderMap::new();
        any.decorate(&req(Some("https://whatever"), "gw"), &mut res);
        assert_eq!(res[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://whatever");
    }
}
