//! The transports by name: the `transport` label of every metric, the
//! `--transport` of `feedgate tail` and `bench`, the path segment of each
//! subscriber endpoint.

/// What a byte, a request or a connection is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `GET /topics/{t}/poll`.
    Poll,
    /// `GET /topics/{t}/longpoll`.
    LongPoll,
    /// `GET /topics/{t}/sse`.
    Sse,
    /// `GET /topics/{t}/ws` and everything after its upgrade.
    Ws,
    /// `POST /topics/{t}/events`.
    Publish,
    /// Metrics scrapes, the page, health checks and never-routed bytes.
    Other,
}

impl Transport {
    /// Every transport, in label order.
    pub const ALL: [Transport; 6] = [
        Transport::Poll,
        Transport::LongPoll,
        Transport::Sse,
        Transport::Ws,
        Transport::Publish,
        Transport::Other,
    ];
    /// The four subscriber transports.
    pub const SUBSCRIBERS: [Transport; 4] = [
        Transport::Poll,
        Transport::LongPoll,
        Transport::Sse,
        Transport::Ws,
    ];

    /// The `transport` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Poll => "poll",
            Transport::LongPoll => "longpoll",
            Transport::Sse => "sse",
            Transport::Ws => "ws",
            Transport::Publish => "publish",
            Transport::Other => "other",
        }
    }

    /// Parses a label value (as `feedgate tail --transport` takes it).
    pub fn parse(s: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.as_str() == s)
    }
}
