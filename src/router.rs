//! The router: each request is admitted (`admit.rs`: route, client, origin,
//! token, rate), handed to the transport that serves it, counted under the
//! transport its bytes are attributed to, and its errors turned into JSON
//! responses.

use std::convert::Infallible;
use std::net::IpAddr;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};

use crate::admit::{self, Admitted, Route, Subscribing};
use crate::app::App;
use crate::assets;
use crate::error::ApiError;
use crate::http::body::read_body;
use crate::http::response::{self, MeteredBody, Written};
use crate::metrics::{CONTENT_TYPE, Outcome, Transport};
use crate::server::Conn;
use crate::telemetry;
use crate::transport::ws::echo;
use crate::transport::{Reply, Wanted, poll, probe, publish, sse, ws};

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

/// Serves one request from `peer` on connection `conn`:
/// admits it (`admit.rs`), hands it to its transport, counts it.
pub(crate) async fn handle(
    app: App,
    conn: Conn,
    peer: IpAddr,
    mut req: Request<Incoming>,
) -> Result<Response<MeteredBody>, Infallible> {
    // Bound first: a match on the call itself would keep its temporary (the
    // whole admitted request) in this future's state across the await.
    let (asked, admission) = admit(&app, &conn, peer, &mut req);
    let result = match admission {
        Ok(admitted) => dispatch(&app, &conn, admitted, req).await,
        Err(e) => Err(e),
    };
    Ok(answered(&app, conn, asked, result))
}

/// Serves a poll, long poll or SSE subscription whose head feedgate read
/// itself (`server/direct.rs`, on HTTP/1.1): admitted as every request is;
/// it has no body. Anything the admission makes of it other than one of
/// those (it cannot, for the paths that come here) is answered 404.
pub(crate) async fn handle_direct(
    app: App,
    conn: Conn,
    peer: IpAddr,
    mut req: Request<()>,
) -> Response<MeteredBody> {
    let (asked, admission) = admit(&app, &conn, peer, &mut req);
    let result = match admission {
        Ok(Admitted::Subscribe(sub)) if sub.action != Subscribing::Ws => {
            subscribe(&app, &conn, sub, req.headers(), conn.direct).await
        }
        Ok(_) => Err(ApiError::NotFound(req.uri().path().to_owned())),
        Err(e) => Err(e),
    };
    answered(&app, conn, asked, result)
}

/// What the answer to a request needs to know of it.
struct Asked {
    transport: Transport,
    /// Close the connection after the answer.
    close: bool,
    /// It asked for a WebSocket.
    upgrade: bool,
    /// Kept for the CORS headers of the answer.
    origin_headers: HeaderMap,
}

/// Admits `req` on `conn`, telling the connection which transport it is:
/// the one step every request takes, whoever read its head.
fn admit<B>(
    app: &App,
    conn: &Conn,
    peer: IpAddr,
    req: &mut Request<B>,
) -> (Asked, Result<Admitted, ApiError>) {
    host_from_authority(req);
    let origin_headers = origin_headers(req.headers());
    let upgrade = admit::wants_websocket(req.headers());
    let (transport, close, admission) = match admit::admit(app, peer, conn.link.tls, req) {
        Ok((transport, admitted)) => (transport, false, Ok(admitted)),
        Err(refused) => (refused.transport, refused.close, Err(refused.error)),
    };
    conn.route(transport);
    let asked = Asked {
        transport,
        close,
        upgrade,
        origin_headers,
    };
    (asked, admission)
}

/// The response to a request `asked` that its transport answered with
/// `result`: errors as JSON, CORS headers, `Connection: close` where due;
/// counted.
fn answered(
    app: &App,
    conn: Conn,
    asked: Asked,
    result: Result<Reply, ApiError>,
) -> Response<MeteredBody> {
    let mut reply = result.unwrap_or_else(|e| Reply::new(response::error(&e), Outcome::Error));
    let tls = conn.link.tls;
    app.origins()
        .decorate(&asked.origin_headers, tls, reply.response.headers_mut());
    // A refused upgrade: the client may already be sending frames, which
    // must not be read as the next HTTP request. (HTTP/2 has no
    // `Connection` header; a refused stream ends by itself.)
    let close =
        asked.close || asked.upgrade && reply.response.status() != StatusCode::SWITCHING_PROTOCOLS;
    if close && conn.h1.is_some() {
        reply
            .response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    // An answer the fast path wrote was counted there.
    if reply.response.extensions().get::<Written>().is_none() {
        app.metrics().request(asked.transport, reply.outcome);
    }
    let (parts, body) = reply.response.into_parts();
    Response::from_parts(parts, MeteredBody::new(body, conn.h1))
}

/// A poll, long poll or SSE subscription. The subscription stays in its
/// box, borrowed: moved out, its query and grant would sit in this
/// future's state beside the transport's future, and a held long poll
/// holds both. `direct` when feedgate writes the response itself (see
/// [`sse::subscribe`]).
async fn subscribe(
    app: &App,
    conn: &Conn,
    mut sub: Box<admit::Subscription>,
    headers: &HeaderMap,
    direct: Option<crate::transport::fanout::Fd>,
) -> Result<Reply, ApiError> {
    let wanted = std::mem::replace(&mut sub.wanted, Wanted::Many(Vec::new()));
    let (query, grant) = (&sub.query, &sub.access.grant);
    match sub.action {
        Subscribing::Poll => poll::short(app, conn.link, wanted, query, headers).await,
        Subscribing::LongPoll => {
            let link = (conn.link, direct);
            poll::long(app, link, wanted, query, headers, grant).await
        }
        // Boxed: it returns at once (the stream is the body), and the held
        // long poll beside it is what sets this future's size.
        Subscribing::Sse => {
            let link = (conn.link, direct);
            Box::pin(sse::subscribe(app, link, wanted, query, headers, grant)).await
        }
        // Upgraded by `dispatch`, never here.
        Subscribing::Ws => Err(ApiError::BadHandshake(
            "a WebSocket subscription needs an Upgrade".into(),
        )),
    }
}

/// An HTTP/2 request names its authority in `:authority` (the URI), not
/// in `Host` (RFC 9113, 8.3.1): copied into `Host`, as a gateway to
/// HTTP/1.1 would, so the Host allow-list and the same-origin check read
/// one header whatever the protocol. A `Host` already there is kept.
fn host_from_authority<B>(req: &mut Request<B>) {
    if req.headers().contains_key(header::HOST) {
        return;
    }
    let Some(authority) = req.uri().authority() else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
        req.headers_mut().insert(header::HOST, v);
    }
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

/// `OPTIONS` from an allowed origin (over TLS when `tls`): the CORS
/// preflight answer.
fn preflight(app: &App, origin_headers: &HeaderMap, tls: bool) -> Reply {
    let mut res = Response::new(response::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    app.origins()
        .preflight(origin_headers, tls, res.headers_mut());
    res.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("GET, HEAD, POST, OPTIONS"),
    );
    Reply::new(res, Outcome::Ok)
}

/// Hands an admitted request to what serves it.
async fn dispatch(
    app: &App,
    conn: &Conn,
    admitted: Admitted,
    mut req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    match admitted {
        Admitted::Preflight => Ok(preflight(
            app,
            &origin_headers(req.headers()),
            conn.link.tls,
        )),
        Admitted::Metrics => Ok(metrics(app)),
        Admitted::Health => Ok(health(app)),
        Admitted::Page => Ok(asset(assets::PAGE_HTML, "text/html; charset=utf-8")),
        Admitted::Script => Ok(asset(assets::CLIENT_JS, "text/javascript; charset=utf-8")),
        Admitted::Echo => echo::accept(app, &mut req, conn),
        // Boxed, like the demo controls and telemetry: this future is part
        // of every request's state, and a held long poll holds it for up to
        // a minute, so the rare big branches must not set its size.
        Admitted::Publish(topic) => Box::pin(publish::publish(app, &topic, req)).await,
        Admitted::Probe(t, slot) => Box::pin(probe::probe(app, t, slot, &mut req, conn)).await,
        Admitted::Telemetry(client) => Box::pin(telemetry::switch(app, client, req)).await,
        Admitted::Demo { faults, write } => Box::pin(demo_control(app, faults, write, req)).await,
        Admitted::Subscribe(mut sub) if sub.action == Subscribing::Ws => {
            let wanted = std::mem::replace(&mut sub.wanted, Wanted::Many(Vec::new()));
            let access = admit::Access {
                grant: sub.access.grant,
                token: sub.access.token.take(),
            };
            ws::subscribe(app, wanted, &sub.query, &mut req, conn, access).await
        }
        Admitted::Subscribe(sub) => subscribe(app, conn, sub, req.headers(), None).await,
    }
}

/// `GET`/`POST /demo/settings` and `/demo/faults` (only with `--demo`;
/// a `POST` was admitted with the origin check and publish token of a
/// publish).
async fn demo_control(
    app: &App,
    faults: bool,
    write: bool,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let Some(demo) = app.demo() else {
        return Err(ApiError::NotFound(req.uri().path().to_owned()));
    };
    if write {
        let body = read_body(req, 64 << 10, app.config().body_read_timeout).await?;
        let bad = |e: serde_json::Error| ApiError::InvalidJson(e.to_string());
        match faults {
            false => demo.set_settings(serde_json::from_slice(&body).map_err(bad)?)?,
            true => demo.set_faults(serde_json::from_slice(&body).map_err(bad)?),
        }
    }
    let body = match faults {
        false => serde_json::to_vec(&demo.settings()),
        true => serde_json::to_vec(&demo.faults()),
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
    /// are boxed so they do not set its size (it was 2968 bytes), and an
    /// admitted subscription stays in its box, borrowed (moved out, the
    /// future was 2936 bytes; it was 2184, and is 2336 with the poll, long
    /// poll and SSE arms shared with `handle_direct`). A held long poll on
    /// cleartext HTTP/1.1 is `handle_direct`'s, boxed by `server/direct.rs`
    /// in place of hyper's buffers: it is held to the same bound.
    #[test]
    fn the_request_future_stays_small() {
        let size = size_of_return(super::handle);
        assert!(size <= 2368, "router::handle future is {size} bytes");
        let size = size_of_return(super::handle_direct);
        assert!(size <= 2368, "router::handle_direct future is {size} bytes");
    }
}
