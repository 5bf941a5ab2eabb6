//! The command line: `feedgate serve | publish | tail | bench | doctor`.
//!
//! `main.rs` parses [`Cli`] and hands it to [`run`]; everything here is
//! thin glue onto the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::io::AsyncWriteExt;

use crate::auth::JwtKey;
use crate::client::{
    self, Delivery, Endpoint, SubscribeOptions, Subscriber, Trust, Wire, parse_list,
};
use crate::config::{Config, LogBackend};
use crate::log::{Cursor, Retention};
use crate::metrics::Transport;
use crate::params::{cursor_text, duration};

/// feedgate — one live feed over short polling, long polling, SSE and
/// WebSocket, with per-transport wire-byte and latency accounting.
#[derive(Debug, Parser)]
#[command(name = "feedgate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(Box<ServeArgs>),
    /// Publish one JSON value to a topic.
    Publish(PublishArgs),
    /// Print a topic's events, one JSON object per line.
    Tail(TailArgs),
    /// Compare the transports under one publish schedule (see
    /// docs/benchmarks.md).
    #[cfg(feature = "bench")]
    Bench(Box<crate::bench::BenchArgs>),
    /// Check every transport on the network path to a server (proxies,
    /// load balancers) and say what to fix (see docs/operations.md).
    #[cfg(feature = "doctor")]
    Doctor(crate::doctor::DoctorArgs),
}

/// Where every `serve` default comes from: [`Config::default`], written
/// once. Numbers go to clap with `default_value_t`; durations and the log
/// backend, which clap takes as text, through [`DEFAULT_TEXT`].
static DEFAULT: LazyLock<Config> = LazyLock::new(Config::default);

/// The [`DEFAULT`] values that clap takes as text.
struct DefaultText {
    log: String,
    longpoll_default: String,
    longpoll_max: String,
    sse_heartbeat: String,
    sse_retry: String,
    reconnect_spread: String,
    ws_ping_interval: String,
    ws_pong_timeout: String,
    write_timeout: String,
    header_read_timeout: String,
    body_read_timeout: String,
    drain_timeout: String,
    redis_wait_timeout: String,
}

static DEFAULT_TEXT: LazyLock<DefaultText> = LazyLock::new(|| {
    let c = &*DEFAULT;
    DefaultText {
        log: match &c.log {
            LogBackend::Memory => "memory".to_owned(),
            LogBackend::Redis(url) => url.clone(),
            LogBackend::File { dir, .. } => format!("file:{}", dir.display()),
        },
        longpoll_default: duration_text(c.longpoll_default),
        longpoll_max: duration_text(c.longpoll_max),
        sse_heartbeat: duration_text(c.sse_heartbeat),
        sse_retry: duration_text(c.sse_retry),
        reconnect_spread: duration_text(c.reconnect_spread),
        ws_ping_interval: duration_text(c.ws_ping_interval),
        ws_pong_timeout: duration_text(c.ws_pong_timeout),
        write_timeout: duration_text(c.write_timeout),
        header_read_timeout: duration_text(c.header_read_timeout),
        body_read_timeout: duration_text(c.body_read_timeout),
        drain_timeout: duration_text(c.drain_timeout),
        redis_wait_timeout: duration_text(c.redis.wait_timeout),
    }
});

/// A duration as [`duration`] reads it back: whole seconds as `30s`,
/// anything finer in milliseconds.
fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `feedgate serve`. Defaults are [`Config::default`]'s.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Publish demo ticker events on topic `demo`.
    #[arg(long)]
    pub demo: bool,
    /// Demo events per second.
    #[arg(long, default_value_t = DEFAULT.demo_rate)]
    pub demo_rate: f64,
    /// Change-log backend: `memory`, `file:DIR` (durable, on local disk),
    /// `redis://host:port/db` or `redis+cluster://host:port,host:port,…`.
    #[arg(long, default_value = DEFAULT_TEXT.log.as_str())]
    pub log: String,
    /// With `--log file:DIR`: `always` (a 201 means fsynced; group commit),
    /// `batch` (fsync every 100 ms) or `never` (the OS flushes).
    #[arg(long, default_value = "always")]
    pub fsync: crate::log::Fsync,
    /// With `--log file:DIR`: start even when the log is damaged (not just
    /// torn at its end). Each damaged topic keeps its newest gapless run of
    /// readable events under a new epoch, so every subscriber is told to
    /// reset; the damaged files go to DIR/damaged/. Without it, such a log
    /// refuses to start, naming the file and byte offset.
    #[arg(long)]
    pub log_recover: bool,
    /// With `--log redis…`: subscriber connections per Redis shard (per
    /// master on a cluster), shared by every topic in use on this node.
    #[arg(long, default_value_t = DEFAULT.redis.readers)]
    pub redis_readers: usize,
    /// With `--log redis…`: a publish is acknowledged only once this many
    /// replicas have it (Redis `WAIT`); else it answers 503.
    #[arg(long, default_value_t = DEFAULT.redis.wait)]
    pub redis_wait: usize,
    /// How long a publish waits for --redis-wait replicas.
    #[arg(long, default_value = DEFAULT_TEXT.redis_wait_timeout.as_str(), value_parser = duration)]
    pub redis_wait_timeout: Duration,
    /// Events retained per topic.
    #[arg(long, default_value_t = DEFAULT.retention.max_events)]
    pub retention_events: usize,
    /// Drop events older than this (e.g. `10m`); unset keeps by count only.
    #[arg(long, value_parser = duration)]
    pub retention_age: Option<Duration>,
    /// Most topics; one more is refused with 503.
    #[arg(long, default_value_t = DEFAULT.max_topics)]
    pub max_topics: usize,
    /// Most topics one multiplexed subscription (`topics=`) follows.
    #[arg(long, default_value_t = DEFAULT.max_topics_per_connection)]
    pub max_topics_per_connection: usize,
    /// Most open connections; one more is answered 503 and closed.
    #[arg(long, default_value_t = DEFAULT.max_connections)]
    pub max_connections: usize,
    /// Connections the kernel queues before they are accepted (listen
    /// backlog; capped by net.core.somaxconn).
    #[arg(long, default_value_t = DEFAULT.accept_backlog)]
    pub accept_backlog: u32,
    /// Largest publish body in bytes; larger is refused with 413.
    #[arg(long, default_value_t = DEFAULT.max_body)]
    pub max_body: usize,
    /// Most events per poll response or SSE write.
    #[arg(long, default_value_t = DEFAULT.max_batch)]
    pub max_batch: usize,
    /// Bytes of cached event encodings (deflated, lean, SSE blocks) kept in
    /// all; the oldest are dropped beyond it and made again if asked for.
    #[arg(long, default_value_t = DEFAULT.encoding_cache)]
    pub encoding_cache: usize,
    /// Long-poll hold when the client sends no `timeout`.
    #[arg(long, default_value = DEFAULT_TEXT.longpoll_default.as_str(), value_parser = duration)]
    pub longpoll_default: Duration,
    /// Longest long-poll hold, whatever the client asks.
    #[arg(long, default_value = DEFAULT_TEXT.longpoll_max.as_str(), value_parser = duration)]
    pub longpoll_max: Duration,
    /// Interval of SSE comment heartbeats.
    #[arg(long, default_value = DEFAULT_TEXT.sse_heartbeat.as_str(), value_parser = duration)]
    pub sse_heartbeat: Duration,
    /// `retry:` reconnect delay told to SSE clients.
    #[arg(long, default_value = DEFAULT_TEXT.sse_retry.as_str(), value_parser = duration)]
    pub sse_retry: Duration,
    /// On drain, SSE and long-poll clients are told to come back after
    /// --sse-retry plus a random share of this (0: no jitter).
    #[arg(long, default_value = DEFAULT_TEXT.reconnect_spread.as_str(), value_parser = duration)]
    pub reconnect_spread: Duration,
    /// Interval of WebSocket pings.
    #[arg(long, default_value = DEFAULT_TEXT.ws_ping_interval.as_str(), value_parser = duration)]
    pub ws_ping_interval: Duration,
    /// Close a WebSocket peer silent this long after a ping.
    #[arg(long, default_value = DEFAULT_TEXT.ws_pong_timeout.as_str(), value_parser = duration)]
    pub ws_pong_timeout: Duration,
    /// Largest WebSocket message accepted, bytes; larger closes with 1009.
    #[arg(long, default_value_t = DEFAULT.ws_max_message)]
    pub ws_max_message: usize,
    /// Accept permessage-deflate when a WebSocket client offers it
    /// (`--ws-deflate false` to refuse).
    #[arg(long, default_value_t = DEFAULT.ws_deflate, action = clap::ArgAction::Set)]
    pub ws_deflate: bool,
    /// Write to caught-up single-topic WebSockets on cleartext HTTP/1.1
    /// from one loop per topic instead of a task each
    /// (`--ws-fanout false`: every session writes its own; for comparing).
    #[arg(long, env = "FEEDGATE_WS_FANOUT", default_value_t = DEFAULT.ws_fanout, action = clap::ArgAction::Set)]
    pub ws_fanout: bool,
    /// Write to caught-up single-topic SSE streams on cleartext HTTP/1.1
    /// from one loop per topic instead of a task each
    /// (`--sse-fanout false`: every stream writes its own; for comparing).
    #[arg(long, env = "FEEDGATE_SSE_FANOUT", default_value_t = DEFAULT.sse_fanout, action = clap::ArgAction::Set)]
    pub sse_fanout: bool,
    /// Answer held single-topic long polls on cleartext HTTP/1.1 from the
    /// same loop, one answer made per topic and encoding
    /// (`--longpoll-fanout false`: every poll answers from its own task).
    #[arg(long, env = "FEEDGATE_LONGPOLL_FANOUT", default_value_t = DEFAULT.longpoll_fanout, action = clap::ArgAction::Set)]
    pub longpoll_fanout: bool,
    /// Whose passes are split over every worker thread, run at once:
    /// `longpoll` (held long polls), `all`, or `off` (one deliverer per
    /// topic and cursor). Spread, a pass ends sooner; on cores shared with
    /// other work, a stream's delivery costs more CPU (docs/benchmarks.md,
    /// "One deliverer per cursor").
    #[arg(long, env = "FEEDGATE_FANOUT_SPREAD", value_enum, default_value_t = DEFAULT.fanout_spread)]
    pub fanout_spread: crate::config::FanoutSpread,
    /// Serve HTTPS with this certificate (PEM; the chain may follow the
    /// leaf). Needs --tls-key. SIGHUP re-reads both.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate made at start for localhost and
    /// 127.0.0.1 (its SHA-256 fingerprint is printed), for trying HTTPS
    /// and HTTP/2 without a certificate of your own.
    #[arg(long)]
    pub tls_self_signed: bool,
    /// Speak HTTP/2 as well as HTTP/1.1: by ALPN under TLS, with prior
    /// knowledge (h2c) in the clear (`--http2 false`: HTTP/1.1 only).
    #[arg(long, default_value_t = DEFAULT.http2, action = clap::ArgAction::Set)]
    pub http2: bool,
    /// Most streams one HTTP/2 connection may have open at once.
    #[arg(long, default_value_t = DEFAULT.h2_max_concurrent_streams)]
    pub h2_max_concurrent_streams: u32,
    /// Gzip poll and long-poll bodies of at least this many bytes for
    /// clients that send `Accept-Encoding: gzip` (0: never).
    #[arg(long, default_value_t = DEFAULT.gzip_min)]
    pub gzip_min_bytes: usize,
    /// Close a subscriber whose socket accepts nothing for this long.
    #[arg(long, default_value = DEFAULT_TEXT.write_timeout.as_str(), value_parser = duration)]
    pub write_timeout: Duration,
    /// Time allowed to send a request head (slowloris defence).
    #[arg(long, default_value = DEFAULT_TEXT.header_read_timeout.as_str(), value_parser = duration)]
    pub header_read_timeout: Duration,
    /// Time allowed to send a publish body; slower uploads get 408.
    #[arg(long, default_value = DEFAULT_TEXT.body_read_timeout.as_str(), value_parser = duration)]
    pub body_read_timeout: Duration,
    /// Time allowed for connections to finish at shutdown.
    #[arg(long, default_value = DEFAULT_TEXT.drain_timeout.as_str(), value_parser = duration)]
    pub drain_timeout: Duration,
    /// Require `Authorization: Bearer <token>` to publish. Prefer the env
    /// var or --publish-token-file: command lines are visible to other users.
    #[arg(long, env = "FEEDGATE_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: Option<String>,
    /// Read the publish token from this file (trailing newline ignored).
    #[arg(long, conflicts_with = "publish_token")]
    pub publish_token_file: Option<PathBuf>,
    /// Require subscribers to present an HS256 JWT signed with this secret.
    #[arg(long, env = "FEEDGATE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Require subscribers to present an RS256/ES256 JWT verified with this
    /// PEM public key file.
    #[arg(long, conflicts_with = "jwt_secret")]
    pub jwt_public_key: Option<PathBuf>,
    /// Allow this browser origin besides the server's own (repeatable; `*`
    /// allows any). Applies to WebSocket upgrades, publishes and CORS.
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
    /// Serve only requests whose `Host` is this `HOST` or `HOST:PORT`
    /// (repeatable); others get 403. The defence against DNS rebinding:
    /// list the names clients use. Unset: any `Host`.
    #[arg(long = "allowed-host", value_name = "HOST[:PORT]")]
    pub allowed_hosts: Vec<String>,
    /// Publishes per second allowed per client IP (0 = unlimited); beyond,
    /// 429 with Retry-After.
    #[arg(long, default_value_t = DEFAULT.publish_rate)]
    pub publish_rate: f64,
    /// Publishes a client may burst above --publish-rate.
    #[arg(long, default_value_t = DEFAULT.publish_burst)]
    pub publish_burst: f64,
    /// A reverse proxy (IP address) whose X-Forwarded-For header names the
    /// real client for --publish-rate (repeatable).
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve a WebSocket echo endpoint at `/echo`, for protocol conformance
    /// testing (Autobahn). Never enable it on a public server.
    #[arg(long)]
    pub echo: bool,
    /// Largest message the echo endpoint accepts, bytes; larger closes 1009.
    #[arg(long, default_value_t = DEFAULT.echo_max_message)]
    pub echo_max_message: usize,
}

/// `feedgate publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Topic name.
    pub topic: String,
    /// One JSON value, e.g. '{"bid":1.5}'.
    pub json: String,
    /// Server base URL (`http://…` or `https://…`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// How to reach it.
    #[command(flatten)]
    pub link: LinkArgs,
}

/// How `publish` and `tail` reach the server: HTTP/2, and which
/// certificates an `https://` URL may present.
#[derive(Debug, Clone, Args)]
pub struct LinkArgs {
    /// Speak HTTP/2: offered by ALPN on an `https://` URL (the server
    /// chooses), h2c with prior knowledge on `http://`.
    #[arg(long)]
    pub http2: bool,
    /// Trust the certificates of this PEM file (a private CA, or the
    /// server's own self-signed certificate) instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Accept any certificate (for a loopback server started with
    /// `serve --tls-self-signed`; never across a network).
    #[arg(long)]
    pub tls_insecure: bool,
}

impl LinkArgs {
    /// The endpoint at `url`, reached as these flags say.
    ///
    /// # Errors
    /// A bad URL, or a `--tls-ca` file that does not load.
    pub fn endpoint(&self, url: &str) -> Result<Endpoint, String> {
        let trust = Trust::from_flags(self.tls_ca.as_deref(), self.tls_insecure);
        Endpoint::parse_with(url, trust)
            .map(|ep| ep.with_http2(self.http2))
            .map_err(|e| e.to_string())
    }
}

/// `feedgate tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Topics: `TOPIC` or `TOPIC@CURSOR`. One topic uses its v1 path
    /// (`/topics/{t}/…`); several share one connection (`topics=LIST`).
    #[arg(required = true, num_args = 1..)]
    pub topics: Vec<String>,
    /// Transport: ws, sse, longpoll or poll.
    #[arg(long, default_value = "ws")]
    pub transport: String,
    /// Start after this cursor (`N` or `EPOCH:N`; 0 = oldest retained);
    /// default: from now.
    #[arg(long)]
    pub after: Option<String>,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// Short-poll interval.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub poll_interval: Duration,
    /// Server base URL (`http://…` or `https://…`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// How to reach it.
    #[command(flatten)]
    pub link: LinkArgs,
}

impl ServeArgs {
    /// The server configuration these flags describe, validated.
    ///
    /// # Errors
    /// When `--log` is neither `memory`, `file:DIR` nor a Redis URL, a token or key
    /// cannot be read, or [`Config::validate`] refuses a value.
    pub fn config(&self) -> Result<Config, String> {
        let log = match self.log.as_str() {
            "memory" => LogBackend::Memory,
            url if url.starts_with("redis://") || url.starts_with("redis+cluster://") => {
                LogBackend::Redis(url.to_owned())
            }
            dir if dir.starts_with("file:") && dir.len() > 5 => LogBackend::File {
                dir: PathBuf::from(&dir[5..]),
                fsync: self.fsync,
            },
            other => {
                return Err(format!(
                    "--log {other:?}: expected memory, file:DIR, redis://… or redis+cluster://…"
                ));
            }
        };
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let publish_token = match (&self.publish_token, &self.publish_token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(path)) => Some(
                String::from_utf8(read(path)?)
                    .map_err(|_| format!("{} is not UTF-8", path.display()))?
                    .trim_end()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if publish_token.as_deref().is_some_and(str::is_empty) {
            return Err("the publish token is empty".into());
        }
        let jwt = match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(s), _) if s.is_empty() => return Err("--jwt-secret is empty".into()),
            (Some(s), _) => Some(JwtKey::Secret(s.clone().into_bytes())),
            (None, Some(path)) => Some(JwtKey::PublicPem(read(path)?)),
            (None, None) => None,
        };
        let config = Config {
            publish_token,
            jwt,
            allowed_origins: self.allowed_origins.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            publish_rate: self.publish_rate,
            publish_burst: self.publish_burst,
            trusted_proxies: self.trusted_proxies.clone(),
            log,
            log_recover: self.log_recover,
            retention: Retention {
                max_events: self.retention_events,
                max_age: self.retention_age,
            },
            max_topics: self.max_topics,
            redis: crate::log::RedisOptions {
                readers: self.redis_readers,
                wait: self.redis_wait,
                wait_timeout: self.redis_wait_timeout,
            },
            max_topics_per_connection: self.max_topics_per_connection,
            max_connections: self.max_connections,
            accept_backlog: self.accept_backlog,
            max_body: self.max_body,
            max_batch: self.max_batch,
            encoding_cache: self.encoding_cache,
            longpoll_default: self.longpoll_default,
            longpoll_max: self.longpoll_max,
            sse_heartbeat: self.sse_heartbeat,
            sse_retry: self.sse_retry,
            reconnect_spread: self.reconnect_spread,
            ws_ping_interval: self.ws_ping_interval,
            ws_pong_timeout: self.ws_pong_timeout,
            ws_max_message: self.ws_max_message,
            ws_deflate: self.ws_deflate,
            ws_fanout: self.ws_fanout,
            sse_fanout: self.sse_fanout,
            longpoll_fanout: self.longpoll_fanout,
            fanout_spread: self.fanout_spread,
            tls: match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
                (Some(cert), Some(key), _) => Some(crate::tls::TlsSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                (_, _, true) => Some(crate::tls::TlsSource::SelfSigned),
                _ => None,
            },
            http2: self.http2,
            h2_max_concurrent_streams: self.h2_max_concurrent_streams,
            gzip_min: self.gzip_min_bytes,
            write_timeout: self.write_timeout,
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            drain_timeout: self.drain_timeout,
            demo: self.demo,
            demo_rate: self.demo_rate,
            echo: self.echo,
            echo_max_message: self.echo_max_message,
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

/// Runs a parsed command line; the returned error is printed by `main`.
///
/// # Errors
/// Whatever the command failed with, as a message for the user.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Publish(args) => {
            let ep = args.link.endpoint(&args.url)?;
            let seq = client::publish(&ep, &args.topic, args.json.into_bytes())
                .await
                .map_err(|e| e.to_string())?;
            println!("{seq}");
            Ok(())
        }
        Command::Tail(args) => tail(args).await,
        #[cfg(feature = "bench")]
        Command::Bench(args) => crate::bench::cli(*args).await.map_err(|e| e.to_string()),
        #[cfg(feature = "doctor")]
        Command::Doctor(args) => match crate::doctor::cli(args).await?.works {
            true => Ok(()),
            false => Err("no transport works on this path".into()),
        },
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = args.config()?;
    let listener = crate::server::bind(args.listen, config.accept_backlog)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, demo = config.demo, "feedgate listening; open {scheme}://{addr}/");
    crate::server::run(listener, config, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn tail(args: TailArgs) -> Result<(), String> {
    let ep = args.link.endpoint(&args.url)?;
    let transport = Transport::parse(&args.transport)
        .filter(|t| Transport::SUBSCRIBERS.contains(t))
        .ok_or_else(|| {
            format!(
                "--transport {:?}: expected ws, sse, longpoll or poll",
                args.transport
            )
        })?;
    let after = match &args.after {
        Some(a) => cursor_text(a).map_err(|e| e.to_string())?,
        None => Cursor::default(),
    };
    let opts = SubscribeOptions {
        poll_interval: args.poll_interval,
        ..Default::default()
    };
    let mut topics = parse_list(&args.topics.join(",")).map_err(|e| e.to_string())?;
    let named: Vec<bool> = args.topics.iter().map(|t| t.contains('@')).collect();
    for ((_, cursor), named) in topics.iter_mut().zip(named) {
        if !named {
            *cursor = after;
        }
    }
    // One topic goes on its own path, several on one connection.
    let mut feed = Subscriber::connect_list(&ep, &topics, transport, opts, Wire::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = tokio::io::stdout();
    let mut seen = 0;
    while args.count.is_none_or(|c| seen < c) {
        let (topic, delivery) = feed.next_with_topic().await.map_err(|e| e.to_string())?;
        let line = match delivery {
            Delivery::Event(e) => {
                seen += 1;
                e.json
            }
            Delivery::Gap { missed, resume_seq } => {
                eprintln!(
                    "feedgate: {topic}: gap: {missed} events no longer retained; resuming at {resume_seq}"
                );
                continue;
            }
            Delivery::Reset { reason, epoch } => {
                eprintln!(
                    "feedgate: {topic}: reset ({reason}): restarting from the oldest event of epoch {epoch}"
                );
                continue;
            }
        };
        out.write_all(&line).await.map_err(|e| e.to_string())?;
        out.write_all(b"\n").await.map_err(|e| e.to_string())?;
        out.flush().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_flags_build_a_config() {
        let cli = Cli::parse_from(["feedgate", "serve", "--demo", "--longpoll-max", "5s"]);
        let Command::Serve(args) = cli.command else {
            panic!("expected serve");
        };
        let c = args.config().unwrap();
        assert!(c.demo);
        assert_eq!(c.longpoll_max, Duration::from_secs(5));
        assert_eq!(c.log, LogBackend::Memory);
        assert!(!c.echo, "the echo endpoint is off unless asked for");
    }

    fn serve_config(flags: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(["feedgate", "serve"].iter().chain(flags))
            .map_err(|e| e.to_string())?;
        let Command::Serve(args) = cli.command else {
            panic!("expected serve");
        };
        args.config()
    }

    #[test]
    fn flag_defaults_are_the_config_defaults() {
        let c = serve_config(&[]).unwrap();
        let d = Config::default();
        // Config has no PartialEq (it holds keys); Debug shows every field.
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
        for d in [
            Duration::from_millis(250),
            Duration::from_secs(30),
            Duration::ZERO,
        ] {
            assert_eq!(duration(&duration_text(d)), Ok(d));
        }
    }

    #[test]
    fn out_of_range_flags_are_refused_not_panics() {
        for flags in [
            &["--header-read-timeout", "10000000000000000000s"][..],
            &["--ws-ping-interval", "10000000000000000000s"],
            &["--sse-heartbeat", "0s"],
            &["--publish-rate", "1e-30"],
            &["--publish-rate", "NaN"],
            &["--demo-rate", "NaN"],
            &["--max-batch", "0"],
            &["--allowed-host", "http://x/"],
        ] {
            let e = serve_config(flags).expect_err(flags[0]);
            assert!(e.contains(flags[0]), "{flags:?}: {e}");
        }
        let c = serve_config(&[
            "--allowed-host",
            "feeds.example",
            "--allowed-host",
            "[::1]:8080",
        ])
        .unwrap();
        assert_eq!(c.allowed_hosts, ["feeds.example", "[::1]:8080"]);
    }
}
