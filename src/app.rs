//! The state every request handler shares: the log, the metrics, the
//! configuration and the shutdown signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::{Config, ConfigError};
use crate::demo::DemoState;
use crate::log::{FormCache, Log};
use crate::metrics::Metrics;
use crate::origin::Origins;
use crate::ratelimit::RateLimiter;

/// How many children of the shutdown token long-lived waiters share.
const SHUTDOWN_SHARDS: usize = 32;

/// A cheap handle on the server's shared state.
#[derive(Clone)]
pub struct App {
    shared: Arc<Shared>,
}

struct Shared {
    log: Log,
    metrics: Arc<Metrics>,
    config: Config,
    shutdown: CancellationToken,
    /// Children of `shutdown` that long-lived waiters share out (see
    /// [`App::shutdown_shard`]).
    shutdown_shards: Vec<CancellationToken>,
    /// The next shard to hand out.
    next_shard: AtomicUsize,
    /// The same signal for subscribers' feeds, which wait on it once per
    /// delivery.
    stop: crate::sync::stop_signal::StopSignal,
    tracker: TaskTracker,
    demo: Option<Arc<DemoState>>,
    auth: Auth,
    origins: Origins,
    publish_limiter: Option<RateLimiter>,
    probes: Arc<crate::transport::probe::Gate>,
    telemetry_limiter: RateLimiter,
    /// The byte budget of events' cached wire forms (`--encoding-cache`).
    forms: Arc<FormCache>,
}

impl App {
    /// Bundles the parts of a running server.
    ///
    /// # Errors
    /// When the configured JWT key is unusable.
    pub fn new(
        log: Log,
        metrics: Arc<Metrics>,
        config: Config,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<Self, ConfigError> {
        let auth = Auth::new(config.publish_token.clone(), config.jwt.clone())?;
        Ok(App {
            shared: Arc::new(Shared {
                auth,
                origins: Origins::new(&config.allowed_origins),
                publish_limiter: RateLimiter::new(config.publish_rate, config.publish_burst),
                probes: Arc::default(),
                telemetry_limiter: crate::telemetry::limiter(),
                forms: FormCache::new(config.encoding_cache),
                log,
                metrics,
                shutdown_shards: (0..SHUTDOWN_SHARDS)
                    .map(|_| shutdown.child_token())
                    .collect(),
                next_shard: AtomicUsize::new(0),
                stop: crate::sync::stop_signal::StopSignal::new(shutdown.clone()),
                shutdown,
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

    /// Cancelled when the server starts draining. Every long-lived handler
    /// selects on it.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shared.shutdown
    }

    /// The shutdown signal for one long-lived waiter (a connection, a
    /// subscriber's feed): a child of [`App::shutdown`], cancelled with it.
    /// A token's waiters are one list under one lock, which every waiter
    /// takes each time it starts or stops waiting — with 10 000 subscribers
    /// woken per event, once per delivery, from every worker thread. Handed
    /// out round-robin from `SHUTDOWN_SHARDS` children, the lists are short
    /// and the locks rarely contended.
    pub fn shutdown_shard(&self) -> CancellationToken {
        let i = self.shared.next_shard.fetch_add(1, Ordering::Relaxed);
        self.shared.shutdown_shards[i % SHUTDOWN_SHARDS].clone()
    }

    /// The shutdown signal for a subscriber's feed: see
    /// [`crate::sync::stop_signal`]. Inside a Tokio runtime.
    pub(crate) fn stop_watch(&self) -> crate::sync::stop_signal::StopWatch {
        self.shared.stop.watch()
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

    /// Admission of `/probe/*` requests.
    pub(crate) fn probes(&self) -> &Arc<crate::transport::probe::Gate> {
        &self.shared.probes
    }

    /// The byte budget events' cached wire forms share (`log/forms.rs`).
    pub(crate) fn forms(&self) -> &Arc<FormCache> {
        &self.shared.forms
    }

    /// The per-client rate limiter of `POST /telemetry/switch`.
    pub(crate) fn telemetry_limiter(&self) -> &RateLimiter {
        &self.shared.telemetry_limiter
    }
}
