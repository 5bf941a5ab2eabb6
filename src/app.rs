//! The state every request handler shares: the log, the metrics, the
//! configuration and the shutdown signal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::demo::DemoState;
use crate::log::Log;
use crate::metrics::Metrics;

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
}

impl App {
    /// Bundles the parts of a running server.
    pub fn new(
        log: Log,
        metrics: Arc<Metrics>,
        config: Config,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        App {
            shared: Arc::new(Shared {
                log,
                metrics,
                shutdown,
                demo: config
                    .demo
                    .then(|| Arc::new(DemoState::new(config.demo_rate))),
                config,
                tracker,
            }),
        }
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
}
