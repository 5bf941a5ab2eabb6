//! The state every request handler shares: the log, the metrics, the
//! configuration and the shutdown signal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::{Config, ConfigError};
use crate::demo::DemoState;
use crate::log::Log;
use crate::metrics::Metrics;
use crate::origin::Origins;
use crate::ratelimit::RateLimiter;

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
    tracker: TaskTracker,
    demo: Option<Arc<DemoState>>,
    auth: Auth,
    origins: Origins,
    publish_limiter: Option<RateLimiter>,
    probes: Arc<crate::transport::probe::Gate>,
    telemetry_limiter: RateLimiter,
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
                log,
                metrics,
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

    /// The per-client rate limiter of `POST /telemetry/switch`.
    pub(crate) fn telemetry_limiter(&self) -> &RateLimiter {
        &self.shared.telemetry_limiter
    }
}
