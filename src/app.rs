//! The state every request handler shares, and why each part is here.

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::{Config, ConfigError};
use crate::demo::DemoState;
use crate::log::{FormCache, Log};
use crate::metrics::Metrics;
use crate::origin::{Hosts, Origins};
use crate::ratelimit::{self, ProbeGate, RateLimiter};
use crate::sync::stop_signal::{StopSignal, StopWatch};
use crate::tls::Tls;
use crate::transport::fanout::Fanout;

/// A cheap handle on the server's shared state.
#[derive(Clone)]
pub struct App {
    shared: Arc<Shared>,
}

struct Shared {
    /// The change log every transport reads and publish appends to.
    log: Log,
    /// The server's Prometheus families; shared with the caller of
    /// `server::run_with_metrics` (the bench reads them directly).
    metrics: Arc<Metrics>,
    /// Every limit and interval, as started.
    config: Config,
    /// The shutdown: every long-lived waiter (feeds, connections, the demo
    /// publisher, probes) watches it; `server::run` stops it to drain.
    stop: StopSignal,
    /// Every connection and session task, so the drain can wait for them.
    tracker: TaskTracker,
    /// The demo's settings and injected faults (`--demo` only).
    demo: Option<Arc<DemoState>>,
    /// Publish token and subscriber JWT rules, asked by admission.
    auth: Auth,
    /// `--allowed-origin`: asked by admission and for CORS answers.
    origins: Origins,
    /// `--allowed-host`: asked by admission before routing.
    hosts: Hosts,
    /// Per-client publish rate (`--publish-rate`); `None` when off.
    publish_limiter: Option<RateLimiter>,
    /// `/probe/*`: a rate per client and bounded concurrency.
    probes: Arc<ProbeGate>,
    /// `POST /telemetry/switch`: a rate per client.
    telemetry_limiter: RateLimiter,
    /// The byte budget of events' cached wire forms (`--encoding-cache`),
    /// shared by every transport that encodes.
    forms: Arc<FormCache>,
    /// TLS termination (`--tls-cert`, `--tls-self-signed`): new
    /// connections handshake with it; SIGHUP reloads it.
    tls: Option<Arc<Tls>>,
    /// The WebSocket fast path: one writer per topic and shard for the
    /// caught-up subscribers (`--ws-fanout`).
    fanout: Fanout,
}

impl App {
    /// Bundles the parts of a running server.
    ///
    /// # Errors
    /// When the configured JWT key or an `--allowed-host` is unusable.
    pub fn new(
        log: Log,
        metrics: Arc<Metrics>,
        config: Config,
        tracker: TaskTracker,
    ) -> Result<Self, ConfigError> {
        let auth = Auth::new(config.publish_token.clone(), config.jwt.clone())
            .map_err(|_| ConfigError::JwtKey)?;
        let hosts = Hosts::new(&config.allowed_hosts).map_err(ConfigError::AllowedHost)?;
        let tls = match &config.tls {
            Some(source) => Some(Arc::new(
                Tls::new(source, config.http2).map_err(|e| ConfigError::Tls(e.to_string()))?,
            )),
            None => None,
        };
        Ok(App {
            shared: Arc::new(Shared {
                auth,
                origins: Origins::new(&config.allowed_origins),
                hosts,
                publish_limiter: RateLimiter::new(config.publish_rate, config.publish_burst),
                probes: Arc::default(),
                telemetry_limiter: ratelimit::telemetry(),
                forms: FormCache::new(config.encoding_cache),
                tls,
                fanout: Fanout::new(worker_threads(), config.fanout_spread),
                log,
                metrics,
                stop: StopSignal::default(),
                demo: config
                    .demo
                    .then(|| Arc::new(DemoState::new(config.demo_rate))),
                config,
                tracker,
            }),
        })
    }

    /// The change log.
    pub fn log(&self) -> &Log {
        &self.shared.log
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A watch on the shutdown, for one long-lived waiter (see
    /// [`crate::sync::stop_signal`]): 32 bytes, one atomic load to ask.
    pub(crate) fn stop_watch(&self) -> StopWatch {
        self.shared.stop.watch()
    }

    /// Whether the server is draining.
    pub fn stopping(&self) -> bool {
        self.shared.stop.is_stopped()
    }

    /// Starts the drain: every watch is stopped and woken.
    pub(crate) fn stop(&self) {
        self.shared.stop.stop();
    }

    /// Tracks every connection and session, so drain can wait for them.
    pub fn tracker(&self) -> &TaskTracker {
        &self.shared.tracker
    }

    /// The demo controls, present only with `--demo`.
    pub fn demo(&self) -> Option<&Arc<DemoState>> {
        self.shared.demo.as_ref()
    }

    /// Who may publish and subscribe.
    pub fn auth(&self) -> &Auth {
        &self.shared.auth
    }

    /// Which browser origins are allowed.
    pub fn origins(&self) -> &Origins {
        &self.shared.origins
    }

    /// The per-client publish rate limiter, unless turned off.
    pub fn publish_limiter(&self) -> Option<&RateLimiter> {
        self.shared.publish_limiter.as_ref()
    }

    /// TLS termination, when configured.
    pub fn tls(&self) -> Option<&Arc<Tls>> {
        self.shared.tls.as_ref()
    }

    /// `--allowed-host`.
    pub(crate) fn hosts(&self) -> &Hosts {
        &self.shared.hosts
    }

    /// Admission of `/probe/*` requests.
    pub(crate) fn probes(&self) -> &Arc<ProbeGate> {
        &self.shared.probes
    }

    /// The byte budget events' cached wire forms share (`log/forms.rs`).
    pub(crate) fn forms(&self) -> &Arc<FormCache> {
        &self.shared.forms
    }

    /// The WebSocket fast path; `None` with `--ws-fanout false`.
    pub(crate) fn fanout(&self) -> Option<&Fanout> {
        self.shared.config.ws_fanout.then_some(&self.shared.fanout)
    }

    /// The SSE fast path (the same one); `None` with `--sse-fanout false`.
    pub(crate) fn sse_fanout(&self) -> Option<&Fanout> {
        self.shared.config.sse_fanout.then_some(&self.shared.fanout)
    }

    /// The long-poll fast path (the same one); `None` with
    /// `--longpoll-fanout false`.
    pub(crate) fn longpoll_fanout(&self) -> Option<&Fanout> {
        self.shared
            .config
            .longpoll_fanout
            .then_some(&self.shared.fanout)
    }

    /// The per-client rate limiter of `POST /telemetry/switch`.
    pub(crate) fn telemetry_limiter(&self) -> &RateLimiter {
        &self.shared.telemetry_limiter
    }
}

/// How many worker threads the runtime has: the fast path's shards per
/// topic, so that each thread takes a share of every publish.
fn worker_threads() -> usize {
    tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers())
        .unwrap_or(1)
}
