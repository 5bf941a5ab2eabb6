//! What a request's path names: the route, and the transport its bytes are
//! counted as (a request that names nothing is `other`).

use crate::metrics::Transport;

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
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
pub(crate) enum TopicAction {
    Publish,
    Poll,
    LongPoll,
    Sse,
    Ws,
}

impl Route<'_> {
    pub(crate) fn parse(path: &str) -> Route<'_> {
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

    pub(crate) fn transport(self) -> Transport {
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
}
