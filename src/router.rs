//! The router: classifies each request by transport (which is what the wire
//! bytes are attributed to), dispatches it, counts it, and turns errors into
//! JSON responses.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};

use crate::app::App;
use crate::assets;
use crate::auth::{self, Grant};
use crate::error::ApiError;
use crate::http::response::{self, MeteredBody};
use crate::metrics::{CONTENT_TYPE, Outcome, Transport};
use crate::params::{self, Query};
use crate::ratelimit;
use crate::telemetry;
use crate::transport::ws::echo;
use crate::transport::{Reply, Wanted, poll, probe, publish, sse, ws};
use crate::wire::ConnMeter;

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Topic(&'a str, TopicAction),
    /// `/poll`, `/longpoll`, `/sse`, `/ws`: a multiplexed subscription.
    Topics(TopicAction),
    Metrics,
    Health,
    Page,
    Script,
    DemoSettings,
    DemoFaults,
    /// The WebSocket echo (`--echo` only).
    Echo,
    /// `/probe/{transport}`: test traffic for `feedgate doctor`.
    Probe(Transport),
    /// `POST /telemetry/switch`: a client's transport switch.
    Telemetry,
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicAction {
    Publish,
    Poll,
    LongPoll,
    Sse,
    Ws,
}

impl Route<'_> {
    fn parse(path: &str) -> Route<'_> {
        match path {
            "/" | "/index.html" => return Route::Page,
            "/feedgate.js" => return Route::Script,
            "/metrics" => return Route::Metrics,
            "/healthz" => return Route::Health,
            "/demo/settings" => return Route::DemoSettings,
            "/demo/faults" => return Route::DemoFaults,
            "/echo" => return Route::Echo,
            "/poll" => return Route::Topics(TopicAction::Poll),
            "/longpoll" => return Route::Topics(TopicAction::LongPoll),
            "/sse" => return Route::Topics(TopicAction::Sse),
            "/ws" => return Route::Topics(TopicAction::Ws),
            "/telemetry/switch" => return Route::Telemetry,
            _ => {}
        }
        if let Some(t) = path.strip_prefix("/probe/") {
            return match Transport::parse(t).filter(|t| Transport::SUBSCRIBERS.contains(t)) {
                Some(t) => Route::Probe(t),
                None => Route::NotFound,
            };
        }
        let Some(rest) = path.strip_prefix("/topics/") else {
            return Route::NotFound;
        };
        let Some((topic, action)) = rest.rsplit_once('/') else {
            return Route::NotFound;
        };
        let action = match action {
            "events" => TopicAction::Publish,
            "poll" => TopicAction::Poll,
            "longpoll" => TopicAction::LongPoll,
            "sse" => TopicAction::Sse,
            "ws" => TopicAction::Ws,
            _ => return Route::NotFound,
        };
        Route::Topic(topic, action)
    }

    fn transport(self) -> Transport {
        match self {
            Route::Topic(_, TopicAction::Publish) => Transport::Publish,
            Route::Topic(_, TopicAction::Poll) | Route::Topics(TopicAction::Poll) => {
                Transport::Poll
            }
            Route::Topic(_, TopicAction::LongPoll) | Route::Topics(TopicAction::LongPoll) => {
                Transport::LongPoll
            }
            Route::Topic(_, TopicAction::Sse) | Route::Topics(TopicAction::Sse) => Transport::Sse,
            // An upgraded socket's bytes are `ws` (see transport/echo.rs).
            Route::Topic(_, TopicAction::Ws) | Route::Topics(TopicAction::Ws) | Route::Echo => {
                Transport::Ws
            }
            // A probe is its transport's traffic on the path.
            Route::Probe(t) => t,
            _ => Transport::Other,
        }
    }
}

/// Copies the request's URI and header values out of hyper's read buffer,
/// so that the buffer is free again by the time hyper next reads.
///
/// hyper parses a request head in place: the URI and every header value
/// are slices of the connection's read buffer. As soon as the head is
/// parsed, before the handler first runs, hyper reads on (to notice a
/// client that goes away), and a buffer still referenced cannot be reused:
/// it allocates a fresh 8 KiB one, and the old one is freed only when the
/// request goes. In a profile of 10 000 long polls that allocation and
/// its free were about a tenth of the server's samples, and a held long
/// poll kept both buffers. Copying a few short strings instead costs a small
/// allocation each. Must run before the request is handed to a future
/// (in the service closure).
pub(crate) fn detach<B>(req: Request<B>) -> Request<B> {
    // An SSE stream keeps its connection for good: letting hyper allocate
    // a fresh (untouched) read buffer and free the one the head was read
    // into measured less memory per idle stream than reusing it.
    if Route::parse(req.uri().path()).transport() == Transport::Sse {
        return req;
    }
    let (mut parts, body) = req.into_parts();
    // Origin-form (`/path?query`), as every HTTP/1.1 request to an origin
    // server; the rare absolute-form keeps its slices.
    if parts.uri.scheme().is_none()
        && let Some(pq) = parts.uri.path_and_query()
        && let Ok(uri) = Uri::from_maybe_shared(Bytes::copy_from_slice(pq.as_str().as_bytes()))
    {
        parts.uri = uri;
    }
    for v in parts.headers.values_mut() {
        if let Ok(mut copy) = HeaderValue::from_bytes(v.as_bytes()) {
            copy.set_sensitive(v.is_sensitive());
            *v = copy;
        }
    }
    Request::from_parts(parts, body)
}

/// Serves one request from `peer` on a connection metered by `meter`.
pub(crate) async fn handle(
    app: App,
    meter: Arc<ConnMeter>,
    peer: IpAddr,
    req: Request<Incoming>,
) -> Result<Response<MeteredBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let route = Route::parse(&path);
    let transport = route.transport();
    meter.route(transport);
    // Kept for the CORS headers of the answer; the request itself moves on.
    let origin_headers = origin_headers(req.headers());
    let upgrade = wants_websocket(&req);
    let result = if req.method() == Method::OPTIONS && route != Route::NotFound {
        preflight(&app, route, &origin_headers)
    } else {
        dispatch(&app, &meter, route, peer, req).await
    };
    let mut reply = result.unwrap_or_else(|e| Reply::new(response::error(&e), Outcome::Error));
    app.origins()
        .decorate(&origin_headers, reply.response.headers_mut());
    if upgrade && reply.response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // A refused upgrade: the client may already be sending frames,
        // which must not be read as the next HTTP request. Close instead.
        reply
            .response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    app.metrics().request(transport, reply.outcome);
    let (parts, body) = reply.response.into_parts();
    Ok(Response::from_parts(parts, MeteredBody::new(body, meter)))
}

/// The request headers the origin policy looks at (none, and no
/// allocation, for the usual request without `Origin`).
fn origin_headers(h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    if !h.contains_key(header::ORIGIN) {
        return out;
    }
    for name in [header::ORIGIN, header::HOST] {
        if let Some(v) = h.get(&name) {
            out.insert(name, v.clone());
        }
    }
    out
}

/// `OPTIONS`: a CORS preflight. Paths that exist only with `--demo` or
/// `--echo` are 404 without them, as for every other method.
fn preflight(app: &App, route: Route<'_>, origin_headers: &HeaderMap) -> Result<Reply, ApiError> {
    let absent = match route {
        Route::DemoSettings if app.demo().is_none() => Some("/demo/settings"),
        Route::DemoFaults if app.demo().is_none() => Some("/demo/faults"),
        Route::Echo if !app.config().echo => Some("/echo"),
        _ => None,
    };
    if let Some(path) = absent {
        return Err(ApiError::NotFound(path.to_owned()));
    }
    if let Some(origin) = app.origins().refused(origin_headers) {
        return Err(ApiError::Forbidden(format!(
            "origin {origin} is not allowed"
        )));
    }
    let mut res = Response::new(response::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    app.origins().preflight(origin_headers, res.headers_mut());
    res.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("GET, HEAD, POST, OPTIONS"),
    );
    Ok(Reply::new(res, Outcome::Ok))
}

/// Refuses requests that act on the server's behalf (publishing, opening a
/// WebSocket) from an origin that is not allowed.
fn check_origin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    match app.origins().refused(headers) {
        Some(origin) => Err(ApiError::Forbidden(format!(
            "origin {origin} is not allowed (see --allowed-origin)"
        ))),
        None => Ok(()),
    }
}

/// Takes a publish token from `peer`'s bucket.
fn check_rate(app: &App, peer: IpAddr) -> Result<(), ApiError> {
    let Some(limiter) = app.publish_limiter() else {
        return Ok(());
    };
    limiter.check(peer).map_err(|wait| {
        app.metrics().limit_hit(crate::metrics::Limit::PublishRate);
        ApiError::RateLimited {
            retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
        }
    })
}

/// Whether the request asks to switch to WebSocket (`Upgrade: websocket`).
fn wants_websocket(req: &Request<Incoming>) -> bool {
    req.headers().get_all(header::UPGRADE).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
    })
}

async fn dispatch(
    app: &App,
    meter: &Arc<ConnMeter>,
    route: Route<'_>,
    peer: IpAddr,
    mut req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let method = req.method().clone();
    let read_only = method == Method::GET || method == Method::HEAD;
    match route {
        Route::NotFound => Err(ApiError::NotFound(req.uri().path().to_owned())),
        Route::Echo if !app.config().echo => Err(ApiError::NotFound(req.uri().path().to_owned())),
        Route::Echo if method != Method::GET => Err(ApiError::MethodNotAllowed { allow: "GET" }),
        Route::Echo => {
            // Same origin policy as every WebSocket upgrade.
            check_origin(app, req.headers())?;
            echo::accept(app, &mut req, meter)
        }
        Route::Metrics | Route::Health | Route::Page | Route::Script if !read_only => {
            Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
        }
        Route::Probe(_) | Route::Telemetry => {
            Box::pin(diagnostics(app, meter, route, peer, req)).await
        }
        Route::Metrics => Ok(metrics(app)),
        Route::Health => Ok(health(app)),
        Route::Page => Ok(asset(assets::PAGE_HTML, "text/html; charset=utf-8")),
        Route::Script => Ok(asset(assets::CLIENT_JS, "text/javascript; charset=utf-8")),
        // Boxed, like publish below: this future is part of every request's
        // state, and a held long poll holds it for up to a minute, so the
        // rare big branches must not set its size.
        Route::DemoSettings | Route::DemoFaults => Box::pin(demo_control(app, route, req)).await,
        Route::Topic(topic, TopicAction::Publish) => {
            let topic = params::topic(topic)?;
            if method != Method::POST {
                return Err(ApiError::MethodNotAllowed { allow: "POST" });
            }
            check_origin(app, req.headers())?;
            app.auth().check_publish(req.headers())?;
            let client = ratelimit::client_ip(peer, req.headers(), &app.config().trusted_proxies);
            check_rate(app, client)?;
            Box::pin(publish::publish(app, &topic, req)).await
        }
        Route::Topic(..) | Route::Topics(..) if !read_only => {
            Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
        }
        Route::Topic(_, action) | Route::Topics(action) => {
            let query = Query::parse(req.uri().query());
            let (wanted, grant) = wanted(app, route, &query, req.headers())?;
            match action {
                TopicAction::Poll => poll::short(app, wanted, &query, req.headers()).await,
                TopicAction::LongPoll => {
                    poll::long(app, wanted, &query, req.headers(), &grant).await
                }
                TopicAction::Sse => {
                    sse::subscribe(app, wanted, &query, req.headers(), &grant).await
                }
                _ => {
                    check_origin(app, req.headers())?;
                    let token = auth::subscriber_token(req.headers(), query.token.as_deref())
                        .map(str::to_owned);
                    let grant = ws::Access { grant, token };
                    ws::subscribe(app, wanted, &query, &mut req, meter, grant).await
                }
            }
        }
    }
}

/// What a subscription asks for, and the grant that covers all of it.
///
/// # Errors
/// A bad topic or `topics=` list (400), or a token that does not grant
/// every topic (401/403).
fn wanted(
    app: &App,
    route: Route<'_>,
    query: &Query,
    headers: &HeaderMap,
) -> Result<(Wanted, Grant), ApiError> {
    let token = auth::subscriber_token(headers, query.token.as_deref());
    match route {
        Route::Topic(name, _) => {
            let topic = params::topic(name)?;
            let grant = app.auth().check_token(token, topic.as_str())?;
            Ok((Wanted::One(topic), grant))
        }
        _ => {
            let is_ws = route == Route::Topics(TopicAction::Ws);
            let list = match &query.topics {
                Some(text) => params::topic_list(text, app.config().max_topics_per_connection)?,
                // A WebSocket may start empty and subscribe by message.
                None if is_ws => Vec::new(),
                None => {
                    return Err(ApiError::InvalidQuery(
                        "topics=LIST is required (TOPIC or TOPIC@CURSOR, comma-separated)".into(),
                    ));
                }
            };
            if list.is_empty() && !is_ws {
                return Err(ApiError::InvalidQuery("topics= names no topic".into()));
            }
            // The token itself first: a socket that names no topic yet
            // still needs one, and holds only until it expires.
            let mut grant = app.auth().check_bearer(token)?;
            for (topic, _) in &list {
                grant = grant.and(app.auth().check_token(token, topic.as_str())?);
            }
            Ok((Wanted::Many(list), grant))
        }
    }
}

/// `/probe/{transport}` (`GET`) and `/telemetry/switch` (`POST`), both
/// rate-limited per client IP. Boxed at the call: rare, and a WebSocket
/// probe's state is large.
async fn diagnostics(
    app: &App,
    meter: &Arc<ConnMeter>,
    route: Route<'_>,
    peer: IpAddr,
    mut req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let client = ratelimit::client_ip(peer, req.headers(), &app.config().trusted_proxies);
    let method = req.method().clone();
    match route {
        Route::Probe(t) if method == Method::GET || method == Method::HEAD => {
            if t == Transport::Ws {
                check_origin(app, req.headers())?;
            }
            probe::probe(app, t, client, &mut req, meter).await
        }
        Route::Probe(_) => Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }),
        _ if method == Method::POST => {
            check_origin(app, req.headers())?;
            telemetry::switch(app, client, req).await
        }
        _ => Err(ApiError::MethodNotAllowed { allow: "POST" }),
    }
}

/// `GET`/`POST /demo/settings` and `/demo/faults`: only with `--demo`. A
/// `POST` changes what every subscriber sees, so it passes the same origin
/// and publish-token checks as a publish (a page on another site cannot
/// drive it through a visitor's browser); `GET` stays open.
async fn demo_control(
    app: &App,
    route: Route<'_>,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let Some(demo) = app.demo() else {
        return Err(ApiError::NotFound(req.uri().path().to_owned()));
    };
    let method = req.method().clone();
    if method == Method::POST {
        check_origin(app, req.headers())?;
        app.auth().check_publish(req.headers())?;
        let body =
            crate::http::body::read_body(req, 64 << 10, app.config().body_read_timeout).await?;
        let bad = |e: serde_json::Error| ApiError::InvalidJson(e.to_string());
        match route {
            Route::DemoSettings => {
                demo.set_settings(serde_json::from_slice(&body).map_err(bad)?)?
            }
            _ => demo.set_faults(serde_json::from_slice(&body).map_err(bad)?),
        }
    } else if method != Method::GET {
        return Err(ApiError::MethodNotAllowed { allow: "GET, POST" });
    }
    let body = match route {
        Route::DemoSettings => serde_json::to_vec(&demo.settings()),
        _ => serde_json::to_vec(&demo.faults()),
    }
    .unwrap_or_default();
    Ok(Reply::new(
        response::json(StatusCode::OK, body),
        Outcome::Ok,
    ))
}

fn metrics(app: &App) -> Reply {
    let (topics, events) = app.log().stats();
    let m = app.metrics();
    m.topics.set(topics as i64);
    m.log_events.set(events as i64);
    m.encoding_cache_bytes
        .set(i64::try_from(app.forms().bytes()).unwrap_or(i64::MAX));
    m.observe_corrupt_entries(app.log().corrupt_entries());
    let mut res = Response::new(response::full(m.render()));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Reply::new(res, Outcome::Ok)
}

fn health(app: &App) -> Reply {
    let log = app.log().kind();
    let (status, body) = match app.log().degraded() {
        None => (
            StatusCode::OK,
            serde_json::json!({"status": "ok", "log": log}),
        ),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "degraded", "log": log, "reason": why}),
        ),
    };
    let outcome = if status.is_success() {
        Outcome::Ok
    } else {
        Outcome::Error
    };
    Reply::new(
        response::json(status, serde_json::to_vec(&body).unwrap_or_default()),
        outcome,
    )
}

fn asset(body: &'static str, content_type: &'static str) -> Reply {
    let mut res = Response::new(response::full(body));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Reply::new(res, Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            Route::parse("/topics/a.b/poll"),
            Route::Topic("a.b", TopicAction::Poll)
        );
        assert_eq!(
            Route::parse("/topics/x/events"),
            Route::Topic("x", TopicAction::Publish)
        );
        // A slash inside a topic is not split off: the topic check rejects it.
        assert_eq!(
            Route::parse("/topics/a/b/ws"),
            Route::Topic("a/b", TopicAction::Ws)
        );
        assert_eq!(Route::parse("/topics/x/nope"), Route::NotFound);
        assert_eq!(Route::parse("/topics/"), Route::NotFound);
        assert_eq!(Route::parse("/metrics"), Route::Metrics);
        assert_eq!(Route::parse("/echo"), Route::Echo);
        assert_eq!(Route::parse("/probe/sse"), Route::Probe(Transport::Sse));
        assert_eq!(Route::parse("/probe/publish"), Route::NotFound);
        assert_eq!(Route::parse("/telemetry/switch"), Route::Telemetry);
        assert_eq!(Route::parse("/elsewhere"), Route::NotFound);
    }

    /// A detached request says the same and no longer holds the buffer
    /// hyper parsed it from.
    #[test]
    fn detach_lets_the_read_buffer_go() {
        let buf = Bytes::from(b"/topics/t/longpoll?after=5&timeout=30example.orgBearer x".to_vec());
        let mut req = Request::new(());
        *req.uri_mut() = Uri::from_maybe_shared(buf.slice(..37)).unwrap();
        let h = req.headers_mut();
        h.insert(
            header::HOST,
            HeaderValue::from_maybe_shared(buf.slice(37..48)).unwrap(),
        );
        let mut auth = HeaderValue::from_maybe_shared(buf.slice(48..)).unwrap();
        auth.set_sensitive(true);
        h.append(header::AUTHORIZATION, auth);
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_maybe_shared(buf.slice(48..54)).unwrap(),
        );
        assert!(!buf.is_unique());
        let req = detach(req);
        assert!(buf.is_unique(), "the request still holds the read buffer");
        assert_eq!(req.uri().path(), "/topics/t/longpoll");
        assert_eq!(req.uri().query(), Some("after=5&timeout=30"));
        assert_eq!(req.headers()[header::HOST], "example.org");
        let auths: Vec<_> = req
            .headers()
            .get_all(header::AUTHORIZATION)
            .iter()
            .collect();
        assert_eq!(auths, ["Bearer x", "Bearer"]);
        assert!(auths[0].is_sensitive());
    }
}
#[cfg(test)]
mod size_tests {
    fn size_of_return<A, B, C, D, F: std::future::Future>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// hyper boxes one of these per request, and a held long poll keeps it
    /// for up to a minute: rare, large branches (publish, demo controls)
    /// are boxed so they do not set its size (it was 2968 bytes).
    #[test]
    fn the_request_future_stays_small() {
        let size = size_of_return(super::handle);
        assert!(size <= 2560, "router::handle future is {size} bytes");
    }
}
