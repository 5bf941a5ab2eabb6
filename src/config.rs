//! Server configuration: every limit and interval, with its default.
//!
//! The CLI (`feedgate serve --help`) maps one flag to each field; tests and
//! the bench build a [`Config`] directly.

use std::time::Duration;

use crate::auth::JwtKey;
use crate::log::Retention;

/// Which change-log backend to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogBackend {
    /// In-process memory: the default, needs no service.
    #[default]
    Memory,
    /// Redis Streams at this URL (`redis://host:port/db`).
    Redis(String),
}

/// Everything `server::run` needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// The change-log backend.
    pub log: LogBackend,
    /// Events (and optionally age) kept per topic.
    pub retention: Retention,
    /// Most topics; creating one more answers 503.
    pub max_topics: usize,
    /// Most open connections; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Largest publish body, bytes; larger answers 413.
    pub max_body: usize,
    /// Most events in one poll / long-poll response or one SSE write.
    pub max_batch: usize,
    /// Long-poll hold when the client sends no `timeout`.
    pub longpoll_default: Duration,
    /// Longest long-poll hold, whatever the client asks.
    pub longpoll_max: Duration,
    /// Interval of SSE comment heartbeats.
    pub sse_heartbeat: Duration,
    /// The `retry:` reconnect delay sent to SSE clients.
    pub sse_retry: Duration,
    /// Interval of WebSocket pings.
    pub ws_ping_interval: Duration,
    /// A WebSocket peer silent this long after a ping is closed.
    pub ws_pong_timeout: Duration,
    /// Largest WebSocket message (and frame) accepted; larger closes 1009.
    pub ws_max_message: usize,
    /// A subscriber whose socket accepts nothing for this long is closed.
    pub write_timeout: Duration,
    /// Time allowed to read a request head (slowloris defence).
    pub header_read_timeout: Duration,
    /// Time allowed to read a publish body.
    pub body_read_timeout: Duration,
    /// Time allowed for in-flight work to finish at shutdown.
    pub drain_timeout: Duration,
    /// Publishing needs `Authorization: Bearer <this>` when set.
    pub publish_token: Option<String>,
    /// Subscribing needs a JWT verified with this key when set.
    pub jwt: Option<JwtKey>,
    /// Origins allowed besides the server's own (`*` for any).
    pub allowed_origins: Vec<String>,
    /// Publishes per second per client IP; 0 turns the limit off.
    pub publish_rate: f64,
    /// Publishes a client may burst above the rate.
    pub publish_burst: f64,
    /// Proxies whose `X-Forwarded-For` names the client (for rate limits).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Run the built-in demo publisher on topic `demo`.
    pub demo: bool,
    /// Demo publish rate, events per second.
    pub demo_rate: f64,
    /// Serve the WebSocket echo endpoint `/echo` (conformance testing only).
    pub echo: bool,
    /// Largest message (and frame) the echo endpoint accepts; larger closes
    /// 1009. Separate from `ws_max_message` so the Autobahn 9.x cases (up to
    /// 16 MiB) fit without raising the subscriber limit.
    pub echo_max_message: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log: LogBackend::Memory,
            retention: Retention::default(),
            max_topics: 10_000,
            max_connections: 10_000,
            max_body: 1 << 20,
            max_batch: 1_000,
            longpoll_default: Duration::from_secs(30),
            longpoll_max: Duration::from_secs(60),
            sse_heartbeat: Duration::from_secs(15),
            sse_retry: Duration::from_secs(2),
            ws_ping_interval: Duration::from_secs(20),
            ws_pong_timeout: Duration::from_secs(20),
            ws_max_message: 64 << 10,
            write_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            publish_token: None,
            jwt: None,
            allowed_origins: Vec::new(),
            publish_rate: 10_000.0,
            publish_burst: 10_000.0,
            trusted_proxies: Vec::new(),
            demo: false,
            demo_rate: 5.0,
            echo: false,
            echo_max_message: 16 << 20,
        }
    }
}
