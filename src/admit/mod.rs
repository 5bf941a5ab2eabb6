//! One admission step: every request passes here once, before any
//! transport sees it, and comes out [`Admitted`] — with everything the
//! handler needs already decided — or refused with the one error that
//! answers it.
//!
//! In order: the `Host` (`--allowed-host`, every path, before routing: a
//! DNS-rebound page reads as well as it writes); the route, and whether it
//! exists on this server (`--demo`, `--echo`); the method; the topics or
//! the `topics=` LIST; the client's address (behind `--trusted-proxy`); the
//! `Origin` of requests that act for the server (publishes, WebSocket
//! upgrades, demo controls, telemetry); the publish token or the
//! subscriber's JWT, which must grant every topic asked for; and the rate
//! limits (publishes, probes, telemetry). No transport checks an origin, a
//! token or a rate itself: a topic a WebSocket subscribes to later is
//! checked by [`Access::admit_topic`] here, against the same token.
//!
//! Admission never waits: everything it asks is in memory.

mod route;

use std::net::IpAddr;
use std::time::Duration;

use hyper::header::{self, HeaderMap};
use hyper::{Method, Request};

pub(crate) use route::{Route, TopicAction};

use crate::app::App;
use crate::auth::{self, Grant};
use crate::error::ApiError;
use crate::log::Topic;
use crate::metrics::{Limit, Transport};
use crate::params::ListItem;
use crate::params::{self, Query};
use crate::ratelimit::{self, ProbeRefusal, ProbeSlot};

/// A request let in, and what its handler needs.
pub(crate) enum Admitted {
    /// `OPTIONS` on a path that exists: a CORS preflight from an allowed
    /// origin.
    Preflight,
    /// `POST /topics/{t}/events`.
    Publish(Topic),
    /// A subscription (boxed: a request's state holds this enum while it
    /// is served, and a held long poll holds it for up to a minute).
    Subscribe(Box<Subscription>),
    /// `GET /probe/{transport}`, with its slot.
    Probe(Transport, ProbeSlot),
    /// `POST /telemetry/switch` from this client.
    Telemetry(IpAddr),
    /// `GET` or `POST /demo/settings` (`faults: false`) or `/demo/faults`.
    Demo {
        /// `/demo/faults`.
        faults: bool,
        /// A `POST`: its origin and publish token were checked.
        write: bool,
    },
    /// `GET /echo` (`--echo`).
    Echo,
    /// `GET /metrics`.
    Metrics,
    /// `GET /healthz`.
    Health,
    /// `GET /`.
    Page,
    /// `GET /feedgate.js`.
    Script,
}

/// What a subscriber asked for: one topic (`/topics/{t}/…`, whose cursor
/// comes from `after`, `epoch` or `Last-Event-ID`), or a multiplexed list
/// (`/poll?topics=LIST` and the like, each item with its own cursor).
pub(crate) enum Wanted {
    /// One topic.
    One(Topic),
    /// A `topics=` LIST, each topic with its cursor.
    Many(Vec<ListItem>),
}

/// A subscription let in.
pub(crate) struct Subscription {
    /// Which transport.
    pub action: Subscribing,
    /// The topic, or the `topics=` LIST with its cursors.
    pub wanted: Wanted,
    /// The query (cursors, timeout, encoding).
    pub query: Query,
    /// What the subscriber's token grants.
    pub access: Access,
}

/// The transport a subscription asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subscribing {
    /// Short poll.
    Poll,
    /// Long poll.
    LongPoll,
    /// Server-Sent Events.
    Sse,
    /// WebSocket.
    Ws,
}

/// Why a request was not let in.
pub(crate) struct Refused {
    /// The answer.
    pub error: ApiError,
    /// Close the connection after it (a refused `Host`: nothing more is
    /// read from a page that should not be talking to this server).
    pub close: bool,
    /// What the request's bytes count as: a refused `Host` is `other`,
    /// whatever its path names.
    pub transport: Transport,
}

impl Refused {
    fn on(route: Route<'_>) -> impl FnOnce(ApiError) -> Refused {
        let transport = route.transport();
        move |error| Refused {
            error,
            close: false,
            transport,
        }
    }
}

/// What a subscriber's token grants: until when, and — for a WebSocket
/// that subscribes to more topics later — the token itself, to check them
/// against ([`admit_topic`]).
pub(crate) struct Access {
    /// The grant covering every topic asked for so far.
    pub grant: Grant,
    /// The token, when one was sent.
    pub token: Option<String>,
}

/// Admits `topic` to an open subscription holding `token` (a WebSocket's
/// `subscribe` message), as a `topics=` item would have been: the grant
/// for it.
///
/// # Errors
/// 401 without a token where one is needed, 403 when it does not grant
/// `topic` (or has expired since).
pub(crate) fn admit_topic(
    app: &App,
    token: Option<&str>,
    topic: &Topic,
) -> Result<Grant, ApiError> {
    app.auth().check_token(token, topic.as_str())
}

/// Admits `req` from `peer` (over TLS when `tls`: the scheme of the
/// server's own origin) to the route its path names — and says which
/// transport its bytes count as — or refuses it.
///
/// # Errors
/// The [`Refused`] answer.
pub(crate) fn admit<B>(
    app: &App,
    peer: IpAddr,
    tls: bool,
    req: &Request<B>,
) -> Result<(Transport, Admitted), Refused> {
    let headers = req.headers();
    if let Some(host) = app.hosts().refused(headers) {
        return Err(Refused {
            error: ApiError::Forbidden(format!(
                "host {host:?} is not served here (see --allowed-host)"
            )),
            close: true,
            transport: Transport::Other,
        });
    }
    let route = Route::parse(req.uri().path());
    match admit_route(app, peer, tls, req, route) {
        Ok(admitted) => Ok((route.transport(), admitted)),
        Err(e) => Err(Refused::on(route)(e)),
    }
}

/// The checks of `route`, in the order their errors take precedence.
fn admit_route<B>(
    app: &App,
    peer: IpAddr,
    tls: bool,
    req: &Request<B>,
    route: Route<'_>,
) -> Result<Admitted, ApiError> {
    let (method, headers) = (req.method(), req.headers());
    let check_origin = || check_origin(app, headers, tls);
    // An HTTP/2 extended CONNECT for a WebSocket (RFC 8441) is what a GET
    // with `Upgrade: websocket` is on HTTP/1.1.
    let ws_connect = is_websocket_connect(req);
    let read_only = method == Method::GET || method == Method::HEAD || ws_connect;
    let not_found = || ApiError::NotFound(req.uri().path().to_owned());
    let absent = match route {
        Route::NotFound => true,
        Route::DemoSettings | Route::DemoFaults => app.demo().is_none(),
        Route::Echo => !app.config().echo,
        _ => false,
    };
    if absent {
        return Err(not_found());
    }
    if method == Method::OPTIONS {
        check_origin()?;
        return Ok(Admitted::Preflight);
    }
    match route {
        Route::NotFound => Err(not_found()),
        Route::Echo if method != Method::GET && !ws_connect => {
            Err(ApiError::MethodNotAllowed { allow: "GET" })
        }
        Route::Echo => {
            check_origin()?;
            Ok(Admitted::Echo)
        }
        Route::Metrics | Route::Health | Route::Page | Route::Script if !read_only => {
            Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
        }
        Route::Metrics => Ok(Admitted::Metrics),
        Route::Health => Ok(Admitted::Health),
        Route::Page => Ok(Admitted::Page),
        Route::Script => Ok(Admitted::Script),
        Route::Probe(t) if !read_only || (ws_connect && t != Transport::Ws) => {
            Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
        }
        Route::Probe(t) => {
            if t == Transport::Ws {
                check_origin()?;
            }
            let client = client_ip(app, peer, headers);
            match app.probes().admit(client) {
                Ok(slot) => Ok(Admitted::Probe(t, slot)),
                Err(ProbeRefusal::Rate(wait)) => Err(over_rate(app, Limit::ProbeRate, wait)),
                Err(ProbeRefusal::Slots) => {
                    app.metrics().limit_hit(Limit::ProbeSlots);
                    Err(ApiError::Overloaded(
                        "too many probes are running; retry in a minute".into(),
                    ))
                }
            }
        }
        Route::Telemetry if method != Method::POST => {
            Err(ApiError::MethodNotAllowed { allow: "POST" })
        }
        Route::Telemetry => {
            check_origin()?;
            let client = client_ip(app, peer, headers);
            app.telemetry_limiter()
                .check(client)
                .map_err(|wait| over_rate(app, Limit::TelemetryRate, wait))?;
            Ok(Admitted::Telemetry(client))
        }
        Route::DemoSettings | Route::DemoFaults => {
            let faults = route == Route::DemoFaults;
            if method == Method::POST {
                // Changes what every subscriber sees: a page on another
                // site must not drive it through a visitor's browser.
                check_origin()?;
                app.auth().check_publish(headers)?;
                Ok(Admitted::Demo {
                    faults,
                    write: true,
                })
            } else if method == Method::GET {
                Ok(Admitted::Demo {
                    faults,
                    write: false,
                })
            } else {
                Err(ApiError::MethodNotAllowed { allow: "GET, POST" })
            }
        }
        Route::Topic(topic, TopicAction::Publish) => {
            let topic = params::topic(topic)?;
            if method != Method::POST {
                return Err(ApiError::MethodNotAllowed { allow: "POST" });
            }
            check_origin()?;
            app.auth().check_publish(headers)?;
            if let Some(limiter) = app.publish_limiter() {
                let client = client_ip(app, peer, headers);
                limiter
                    .check(client)
                    .map_err(|wait| over_rate(app, Limit::PublishRate, wait))?;
            }
            Ok(Admitted::Publish(topic))
        }
        Route::Topic(_, a) | Route::Topics(a)
            if !read_only || (ws_connect && a != TopicAction::Ws) =>
        {
            Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
        }
        Route::Topic(_, action) | Route::Topics(action) => {
            let query = Query::parse(req.uri().query());
            let (wanted, access) = subscription(app, route, &query, headers)?;
            if action == TopicAction::Ws {
                // Cross-site WebSocket hijacking: a page elsewhere opening
                // a socket with the visitor's cookies.
                check_origin()?;
            }
            Ok(Admitted::Subscribe(Box::new(Subscription {
                action: match action {
                    TopicAction::Poll => Subscribing::Poll,
                    TopicAction::LongPoll => Subscribing::LongPoll,
                    TopicAction::Sse => Subscribing::Sse,
                    _ => Subscribing::Ws,
                },
                wanted,
                query,
                access,
            })))
        }
    }
}

/// What a subscription asks for, and the grant that covers all of it.
///
/// # Errors
/// A bad topic or `topics=` list (400), or a token that is missing (401)
/// or does not grant every topic (403).
fn subscription(
    app: &App,
    route: Route<'_>,
    query: &Query,
    headers: &HeaderMap,
) -> Result<(Wanted, Access), ApiError> {
    let token = auth::subscriber_token(headers, query.token.as_deref());
    let access = |grant| Access {
        grant,
        token: token.map(str::to_owned),
    };
    if let Route::Topic(name, _) = route {
        let topic = params::topic(name)?;
        let grant = app.auth().check_token(token, topic.as_str())?;
        return Ok((Wanted::One(topic), access(grant)));
    }
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
    // The token itself first: a socket that names no topic yet still
    // needs one, and holds only until it expires.
    let mut grant = app.auth().check_bearer(token)?;
    for (topic, _) in &list {
        grant = grant.and(app.auth().check_token(token, topic.as_str())?);
    }
    Ok((Wanted::Many(list), access(grant)))
}

/// Refuses requests that act on the server's behalf from an origin that is
/// not allowed.
fn check_origin(app: &App, headers: &HeaderMap, tls: bool) -> Result<(), ApiError> {
    match app.origins().refused(headers, tls) {
        Some(origin) => Err(ApiError::Forbidden(format!(
            "origin {origin} is not allowed (see --allowed-origin)"
        ))),
        None => Ok(()),
    }
}

/// The client a request is from, behind `--trusted-proxy`.
fn client_ip(app: &App, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    ratelimit::client_ip(peer, headers, &app.config().trusted_proxies)
}

/// The one answer to a client past a rate: 429 with `Retry-After` in whole
/// seconds (at least 1), counted under `limit`.
fn over_rate(app: &App, limit: Limit, wait: Duration) -> ApiError {
    app.metrics().limit_hit(limit);
    ApiError::RateLimited {
        retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Whether the request asks to switch to WebSocket (`Upgrade: websocket`).
pub(crate) fn wants_websocket(headers: &HeaderMap) -> bool {
    headers.get_all(header::UPGRADE).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
    })
}

/// Whether `req` is an HTTP/2 extended CONNECT for a WebSocket (RFC 8441:
/// `:method CONNECT`, `:protocol websocket`).
pub(crate) fn is_websocket_connect<B>(req: &Request<B>) -> bool {
    req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
}
