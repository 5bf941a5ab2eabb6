//! Server configuration: every limit and interval, with its default.
//!
//! The CLI (`feedgate serve --help`) maps one flag to each field and takes
//! its defaults from [`Config::default`], the one place they are written;
//! tests and the bench build a [`Config`] directly. Either way
//! [`Config::validate`] (called by `server::run` before anything starts)
//! turns a value the server cannot work with into a [`ConfigError`] instead
//! of a panic later, in the middle of serving.

use std::time::Duration;

use crate::demo;
use crate::log::Retention;
use crate::origin::Hosts;

/// How subscriber JWTs are verified.
#[derive(Clone)]
pub enum JwtKey {
    /// A shared secret, HS256.
    Secret(Vec<u8>),
    /// A PEM public key: RSA (RS256) or EC P-256 (ES256).
    PublicPem(Vec<u8>),
}

impl std::fmt::Debug for JwtKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtKey::Secret(_) => f.write_str("JwtKey::Secret(…)"),
            JwtKey::PublicPem(_) => f.write_str("JwtKey::PublicPem(…)"),
        }
    }
}

/// Which change-log backend to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogBackend {
    /// In-process memory: the default, needs no service.
    #[default]
    Memory,
    /// Redis Streams at this URL: `redis://host:port/db` (one Redis) or
    /// `redis+cluster://host:port,…` (a Redis Cluster).
    Redis(String),
    /// A durable log in this directory (`file:DIR`), fsynced as said.
    File {
        /// The directory.
        dir: std::path::PathBuf,
        /// When a publish is fsynced.
        fsync: crate::log::Fsync,
    },
}

/// Which fast-path subscribers at one cursor are dealt to a deliverer per
/// worker thread (`--fanout-spread`), so each pass of a topic runs on every
/// thread at once; the others share one deliverer per topic and cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FanoutSpread {
    /// One deliverer per topic and cursor for every subscriber.
    Off,
    /// Held long polls spread (measured: the same CPU per request, p99
    /// 0.6×); WebSockets and SSE streams share one deliverer (spread, they
    /// took 10 % more CPU per delivery on cores shared with the clients).
    #[default]
    Longpoll,
    /// Every subscriber spread.
    All,
}

/// Everything `server::run` needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// The change-log backend.
    pub log: LogBackend,
    /// With [`LogBackend::File`]: open a log damaged other than by a torn
    /// last write anyway, each damaged topic keeping its newest gapless run
    /// of readable events under a new epoch (every client is told to reset).
    /// Off, such a log refuses to open, naming the file and offset.
    pub log_recover: bool,
    /// Events (and optionally age) kept per topic.
    pub retention: Retention,
    /// Most topics; creating one more answers 503.
    pub max_topics: usize,
    /// The Redis backend's own settings (`--redis-*`).
    pub redis: crate::log::RedisOptions,
    /// Most topics one multiplexed subscription follows; more is 400.
    pub max_topics_per_connection: usize,
    /// Most open connections; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Length of the kernel's queue of connections not yet accepted
    /// (`listen(2)` backlog; Linux caps it at `net.core.somaxconn`). Too
    /// short, a reconnect storm overflows it and clients wait out a 1 s SYN
    /// retransmission.
    pub accept_backlog: u32,
    /// Largest publish body, bytes; larger answers 413.
    pub max_body: usize,
    /// Most events in one poll / long-poll response or one SSE write.
    pub max_batch: usize,
    /// Bytes of events' cached wire forms (deflated, lean, SSE blocks) the
    /// whole server keeps; the oldest are let go beyond it (log/forms.rs).
    pub encoding_cache: usize,
    /// Long-poll hold when the client sends no `timeout`.
    pub longpoll_default: Duration,
    /// Longest long-poll hold, whatever the client asks.
    pub longpoll_max: Duration,
    /// Interval of SSE comment heartbeats.
    pub sse_heartbeat: Duration,
    /// The `retry:` reconnect delay sent to SSE clients.
    pub sse_retry: Duration,
    /// On drain, clients are told to come back after a delay drawn
    /// uniformly from `[sse_retry, sse_retry + reconnect_spread]` (SSE
    /// `retry:`, long-poll `Retry-After`), so a restart is not met by every
    /// client at once. Zero: everyone is told `sse_retry`.
    pub reconnect_spread: Duration,
    /// Interval of WebSocket pings.
    pub ws_ping_interval: Duration,
    /// A WebSocket peer silent this long after a ping is closed.
    pub ws_pong_timeout: Duration,
    /// Largest WebSocket message (and frame) accepted; larger closes 1009.
    pub ws_max_message: usize,
    /// Accept permessage-deflate (RFC 7692) when a WebSocket client offers
    /// it (browsers always do); see docs/benchmarks.md for the numbers.
    pub ws_deflate: bool,
    /// The WebSocket fast path (`transport/fanout.rs`): caught-up
    /// single-topic sockets on cleartext HTTP/1.1 are written by one loop
    /// per topic (and cursor, or worker thread: `fanout_spread`), not each
    /// by its own task.
    pub ws_fanout: bool,
    /// The same fast path for SSE streams served off hyper (on cleartext
    /// HTTP/1.1, `server/direct.rs`).
    pub sse_fanout: bool,
    /// The same fast path answering held single-topic long polls served
    /// off hyper (cleartext HTTP/1.1, no `Origin`, no `Connection: close`).
    pub longpoll_fanout: bool,
    /// Which fast-path subscribers at one cursor are spread over one
    /// deliverer per worker thread.
    pub fanout_spread: FanoutSpread,
    /// Terminate TLS with this certificate (`--tls-cert`/`--tls-key`, or
    /// `--tls-self-signed`); `None`: cleartext.
    pub tls: Option<crate::tls::TlsSource>,
    /// Speak HTTP/2 too (`--http2`): h2c with prior knowledge in the clear,
    /// ALPN `h2` under TLS.
    pub http2: bool,
    /// Most concurrent streams one HTTP/2 connection may open.
    pub h2_max_concurrent_streams: u32,
    /// Poll and long-poll bodies at least this long are gzipped for
    /// clients that accept it; shorter ones go as they are (0: never).
    pub gzip_min: usize,
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
    /// `Host` values served (`HOST` or `HOST:PORT`); any other is refused
    /// 403 (DNS-rebinding defence). Empty: any `Host`.
    pub allowed_hosts: Vec<String>,
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
            log_recover: false,
            retention: Retention::default(),
            max_topics: 10_000,
            redis: crate::log::RedisOptions::default(),
            max_topics_per_connection: 100,
            max_connections: 10_000,
            accept_backlog: 4096,
            max_body: 1 << 20,
            max_batch: 1_000,
            encoding_cache: 64 << 20,
            longpoll_default: Duration::from_secs(30),
            longpoll_max: Duration::from_secs(60),
            sse_heartbeat: Duration::from_secs(15),
            sse_retry: Duration::from_secs(2),
            reconnect_spread: Duration::from_secs(5),
            ws_ping_interval: Duration::from_secs(20),
            ws_pong_timeout: Duration::from_secs(20),
            ws_max_message: 64 << 10,
            ws_deflate: true,
            ws_fanout: true,
            sse_fanout: true,
            longpoll_fanout: true,
            fanout_spread: FanoutSpread::Longpoll,
            tls: None,
            http2: true,
            h2_max_concurrent_streams: 256,
            gzip_min: 256,
            write_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            publish_token: None,
            jwt: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
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

/// Shortest interval or timeout accepted where zero would spin or fire at
/// once (heartbeats, pings, read and write timeouts).
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest duration accepted for any setting. Timers and deadlines are
/// computed as `now + setting`; far beyond this they overflow and panic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Largest message size (`ws_max_message`, `echo_max_message`) and body
/// size accepted.
pub const MAX_MESSAGE: usize = 1 << 30;
/// Smallest `ws_max_message`: a subscribe message with a 128-character
/// topic and its cursor must fit.
pub const MIN_WS_MESSAGE: usize = 1 << 10;
/// Most subscriber connections per Redis shard (`--redis-readers`), and
/// most replicas a publish may wait for (`--redis-wait`).
pub const MAX_REDIS_CONNECTIONS: usize = 64;
/// Slowest `publish_rate` other than 0 (off): one publish per 1000 s.
pub const MIN_PUBLISH_RATE: f64 = 0.001;
/// Largest `publish_rate` and `publish_burst`.
pub const MAX_PUBLISH_RATE: f64 = 1e9;

/// A [`Config`] value the server cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `--jwt-public-key` is not a usable key.
    #[error("--jwt-public-key: not an RSA or EC public key in PEM")]
    JwtKey,
    /// A count that must be at least 1.
    #[error("{field} must be at least 1")]
    Zero {
        /// The flag.
        field: &'static str,
    },
    /// A count above what the server can hold.
    #[error("{field} = {value} is more than the most allowed, {max}")]
    TooLarge {
        /// The flag.
        field: &'static str,
        /// The value given.
        value: usize,
        /// The largest accepted.
        max: usize,
    },
    /// A duration outside what the server can time.
    #[error("{field} = {value:?} is outside the accepted range {min:?} ..= {max:?}")]
    Duration {
        /// The flag.
        field: &'static str,
        /// The value given.
        value: Duration,
        /// The shortest accepted.
        min: Duration,
        /// The longest accepted.
        max: Duration,
    },
    /// A rate (or burst) that is not a finite number in range.
    #[error("{field} = {value} must be a number in {min} ..= {max}{zero}")]
    Rate {
        /// The flag.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The smallest accepted.
        min: f64,
        /// The largest accepted.
        max: f64,
        /// `", or 0 to turn the limit off"` where 0 is accepted.
        zero: &'static str,
    },
    /// A message size outside what the server accepts.
    #[error("{field} = {value} bytes is outside the accepted range {min} ..= {max}")]
    Size {
        /// The flag.
        field: &'static str,
        /// The value given.
        value: usize,
        /// The smallest accepted.
        min: usize,
        /// The largest accepted.
        max: usize,
    },
    /// An `--allowed-host` value that is not `HOST` or `HOST:PORT`.
    #[error("--allowed-host {0:?} is not HOST or HOST:PORT")]
    AllowedHost(String),
    /// The TLS certificate or key cannot be used (the message names the
    /// flag).
    #[error("{0}")]
    Tls(String),
}

impl Config {
    /// Checks every value the server would otherwise trip over at run time
    /// (a zero heartbeat, a duration too long to add to a clock, a NaN
    /// rate, …). `server::run` calls it before starting anything.
    ///
    /// # Errors
    /// The first value out of range, as a [`ConfigError`] naming its flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least_1 = |field, value: usize| match value {
            0 => Err(ConfigError::Zero { field }),
            _ => Ok(()),
        };
        at_least_1("--retention-events", self.retention.max_events)?;
        at_least_1("--max-topics", self.max_topics)?;
        at_least_1(
            "--max-topics-per-connection",
            self.max_topics_per_connection,
        )?;
        at_least_1("--max-connections", self.max_connections)?;
        at_least_1("--redis-readers", self.redis.readers)?;
        for (field, value) in [
            ("--redis-readers", self.redis.readers),
            ("--redis-wait", self.redis.wait),
        ] {
            if value > MAX_REDIS_CONNECTIONS {
                return Err(ConfigError::TooLarge {
                    field,
                    value,
                    max: MAX_REDIS_CONNECTIONS,
                });
            }
        }
        at_least_1("--accept-backlog", self.accept_backlog as usize)?;
        if self.accept_backlog > 65_535 {
            return Err(ConfigError::TooLarge {
                field: "--accept-backlog",
                value: self.accept_backlog as usize,
                max: 65_535,
            });
        }
        at_least_1("--max-body", self.max_body)?;
        at_least_1("--max-batch", self.max_batch)?;
        // tokio's Semaphore panics above this.
        let max = tokio::sync::Semaphore::MAX_PERMITS;
        if self.max_connections > max {
            return Err(ConfigError::TooLarge {
                field: "--max-connections",
                value: self.max_connections,
                max,
            });
        }

        let in_range = |field, value: Duration, min| {
            if (min..=MAX_DURATION).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::Duration {
                    field,
                    value,
                    min,
                    max: MAX_DURATION,
                })
            }
        };
        if let Some(age) = self.retention.max_age {
            in_range("--retention-age", age, MIN_INTERVAL)?;
        }
        in_range("--longpoll-default", self.longpoll_default, Duration::ZERO)?;
        in_range("--longpoll-max", self.longpoll_max, Duration::ZERO)?;
        in_range("--sse-heartbeat", self.sse_heartbeat, MIN_INTERVAL)?;
        in_range("--sse-retry", self.sse_retry, Duration::ZERO)?;
        in_range("--reconnect-spread", self.reconnect_spread, Duration::ZERO)?;
        in_range("--ws-ping-interval", self.ws_ping_interval, MIN_INTERVAL)?;
        in_range("--ws-pong-timeout", self.ws_pong_timeout, MIN_INTERVAL)?;
        in_range("--write-timeout", self.write_timeout, MIN_INTERVAL)?;
        in_range(
            "--header-read-timeout",
            self.header_read_timeout,
            MIN_INTERVAL,
        )?;
        in_range("--body-read-timeout", self.body_read_timeout, MIN_INTERVAL)?;
        in_range("--drain-timeout", self.drain_timeout, Duration::ZERO)?;
        // `WAIT … 0` would wait for ever.
        in_range(
            "--redis-wait-timeout",
            self.redis.wait_timeout,
            MIN_INTERVAL,
        )?;

        let size = |field, value: usize, min| {
            if (min..=MAX_MESSAGE).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::Size {
                    field,
                    value,
                    min,
                    max: MAX_MESSAGE,
                })
            }
        };
        size("--max-body", self.max_body, 1)?;
        size("--ws-max-message", self.ws_max_message, MIN_WS_MESSAGE)?;
        size("--echo-max-message", self.echo_max_message, MIN_WS_MESSAGE)?;

        let rate = |field, value: f64, min: f64, max: f64, zero_ok: bool| {
            let ok = (zero_ok && value == 0.0) || (min..=max).contains(&value);
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Rate {
                    field,
                    value,
                    min,
                    max,
                    zero: if zero_ok {
                        ", or 0 to turn the limit off"
                    } else {
                        ""
                    },
                })
            }
        };
        rate(
            "--publish-rate",
            self.publish_rate,
            MIN_PUBLISH_RATE,
            MAX_PUBLISH_RATE,
            true,
        )?;
        rate(
            "--publish-burst",
            self.publish_burst,
            1.0,
            MAX_PUBLISH_RATE,
            false,
        )?;
        rate(
            "--demo-rate",
            self.demo_rate,
            demo::MIN_RATE,
            demo::MAX_RATE,
            false,
        )?;

        if let Err(host) = Hosts::new(&self.allowed_hosts) {
            return Err(ConfigError::AllowedHost(host));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn values_the_server_would_trip_over_are_refused() {
        let d = Config::default;
        let huge = Duration::from_secs(10_000_000_000_000_000_000);
        let cases: Vec<(Config, &str)> = vec![
            (
                Config {
                    sse_heartbeat: Duration::ZERO,
                    ..d()
                },
                "--sse-heartbeat",
            ),
            (
                Config {
                    header_read_timeout: huge,
                    ..d()
                },
                "--header-read-timeout",
            ),
            (
                Config {
                    ws_ping_interval: huge,
                    ..d()
                },
                "--ws-ping-interval",
            ),
            (
                Config {
                    ws_ping_interval: Duration::ZERO,
                    ..d()
                },
                "--ws-ping-interval",
            ),
            (
                Config {
                    ws_pong_timeout: Duration::MAX,
                    ..d()
                },
                "--ws-pong-timeout",
            ),
            (
                Config {
                    write_timeout: Duration::ZERO,
                    ..d()
                },
                "--write-timeout",
            ),
            (
                Config {
                    body_read_timeout: huge,
                    ..d()
                },
                "--body-read-timeout",
            ),
            (
                Config {
                    longpoll_max: huge,
                    ..d()
                },
                "--longpoll-max",
            ),
            (
                Config {
                    drain_timeout: huge,
                    ..d()
                },
                "--drain-timeout",
            ),
            (
                Config {
                    retention: Retention {
                        max_events: 10,
                        max_age: Some(huge),
                    },
                    ..d()
                },
                "--retention-age",
            ),
            (
                Config {
                    retention: Retention {
                        max_events: 0,
                        max_age: None,
                    },
                    ..d()
                },
                "--retention-events",
            ),
            (
                Config {
                    publish_rate: 1e-30,
                    ..d()
                },
                "--publish-rate",
            ),
            (
                Config {
                    publish_rate: f64::NAN,
                    ..d()
                },
                "--publish-rate",
            ),
            (
                Config {
                    publish_rate: -1.0,
                    ..d()
                },
                "--publish-rate",
            ),
            (
                Config {
                    publish_rate: f64::INFINITY,
                    ..d()
                },
                "--publish-rate",
            ),
            (
                Config {
                    publish_burst: f64::NAN,
                    ..d()
                },
                "--publish-burst",
            ),
            (
                Config {
                    publish_burst: 0.5,
                    ..d()
                },
                "--publish-burst",
            ),
            (
                Config {
                    demo_rate: f64::NAN,
                    ..d()
                },
                "--demo-rate",
            ),
            (
                Config {
                    demo_rate: 1e-9,
                    ..d()
                },
                "--demo-rate",
            ),
            (
                Config {
                    max_batch: 0,
                    ..d()
                },
                "--max-batch",
            ),
            (Config { max_body: 0, ..d() }, "--max-body"),
            (
                Config {
                    max_topics: 0,
                    ..d()
                },
                "--max-topics",
            ),
            (
                Config {
                    max_connections: 0,
                    ..d()
                },
                "--max-connections",
            ),
            (
                Config {
                    max_connections: usize::MAX,
                    ..d()
                },
                "--max-connections",
            ),
            (
                Config {
                    ws_max_message: 0,
                    ..d()
                },
                "--ws-max-message",
            ),
            (
                Config {
                    ws_max_message: usize::MAX,
                    ..d()
                },
                "--ws-max-message",
            ),
            (
                Config {
                    echo_max_message: usize::MAX,
                    ..d()
                },
                "--echo-max-message",
            ),
            (
                Config {
                    max_body: usize::MAX,
                    ..d()
                },
                "--max-body",
            ),
            (
                Config {
                    allowed_hosts: vec!["http://x/".into()],
                    ..d()
                },
                "--allowed-host",
            ),
        ];
        for (config, flag) in cases {
            let e = config.validate().expect_err(flag);
            assert!(e.to_string().contains(flag), "{flag}: {e}");
        }
    }

    #[test]
    fn edges_that_work_are_accepted() {
        let ok = Config {
            publish_rate: 0.0,
            longpoll_default: Duration::ZERO,
            sse_heartbeat: MIN_INTERVAL,
            max_body: 8 << 20,
            ws_max_message: 8 << 20,
            allowed_hosts: vec!["feeds.example".into(), "127.0.0.1:8080".into()],
            ..Config::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        // Up to 1 MiB needs no larger --ws-max-message.
        let one_mib = Config {
            max_body: 1 << 20,
            ws_max_message: MIN_WS_MESSAGE,
            ..Config::default()
        };
        assert_eq!(one_mib.validate(), Ok(()));
    }
}
