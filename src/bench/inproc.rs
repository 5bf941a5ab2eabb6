//! The in-process server: `RunningServer` (the same code path as `feedgate
//! serve`) on a runtime of its own, whose threads are named so the bench
//! can tell the server's CPU time from the load generator's.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::runtime::Runtime;

use super::BenchError;
use crate::{Config, RunningServer};

/// Thread-name prefix of the server runtime (`/proc/self/task/*/comm`).
pub const THREAD_PREFIX: &str = "fg-server";

/// A feedgate server started by the bench.
pub struct InProcess {
    runtime: Option<Runtime>,
    server: Option<RunningServer>,
}

/// The server configuration for a run of `connections` subscribers and
/// `events` publishes: limits raised to fit, everything else default.
pub fn config(connections: usize, events: u64, longpoll_timeout: Duration) -> Config {
    let mut c = Config::default();
    c.max_connections = c.max_connections.max(connections + 1_000);
    c.retention.max_events = c.retention.max_events.max(events as usize + 1_000);
    c.retention.max_age = None;
    c.longpoll_max = c.longpoll_max.max(longpoll_timeout);
    c
}

impl InProcess {
    /// Starts a server on 127.0.0.1:0 with `threads` worker threads.
    ///
    /// # Errors
    /// When the runtime or the listener cannot be set up.
    pub async fn start(config: Config, threads: usize) -> Result<InProcess, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(THREAD_PREFIX)
            .enable_all()
            .build()?;
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        // Spawned on the server runtime, so its listener and tasks live there.
        let server = runtime
            .spawn(RunningServer::start(addr, config))
            .await
            .map_err(|e| BenchError::Server(e.to_string()))??;
        Ok(InProcess {
            runtime: Some(runtime),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT` (its TLS is the caller's to know: see
    /// [`InProcess::addr`]).
    pub fn url(&self) -> String {
        self.server.as_ref().map(|s| s.url()).unwrap_or_default()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .map_or_else(|| ([127, 0, 0, 1], 0).into(), |s| s.addr())
    }

    /// Drains the server and stops its runtime.
    pub async fn stop(mut self) {
        if let (Some(rt), Some(server)) = (self.runtime.take(), self.server.take()) {
            let _ = rt.spawn(server.shutdown()).await;
            rt.shutdown_background();
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // Dropping a runtime blocks; inside async code that panics, so let
        // its threads go in the background instead.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
