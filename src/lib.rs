//! feedgate: one live data feed served through short polling, long polling,
//! Server-Sent Events and WebSocket from one shared change log — with every
//! byte on the wire and every delivery's latency measured per transport.
//!
//! # Layout
//!
//! - [`log`]: the change log — per-topic gapless sequences, epochs, gaps,
//!   resets, the events' cached wire forms; the in-memory, file (durable,
//!   local disk) and Redis Streams backends.
//! - `transport`: a subscriber `Feed`, one encoder per transport (`poll`
//!   for short and long poll, `sse/`, `ws/` with its handshake, session,
//!   control messages, frames and permessage-deflate), publish, and the
//!   path probe `feedgate doctor` talks to.
//! - `server`: accept loop, connection limit, TLS and HTTP/2 set-up, hyper,
//!   graceful shutdown.
//! - [`tls`]: the certificate (files or self-signed), ALPN, SIGHUP reload.
//! - `admit`: the one admission step — route, `Host`, client address,
//!   origin, token, rate — every request passes before a transport sees it.
//! - `router`: admits each request, dispatches it, counts it.
//! - `http`: what every endpoint shares — response bodies and JSON errors,
//!   gzip, request bodies within limits, event-stream headers.
//! - [`sync`]: the hand-made concurrency primitives (waker slots, head and
//!   stop signals, wake gates, sharded counters), each with a loom test.
//! - [`wire`]: the byte-counting IO wrapper and per-connection attribution.
//! - [`metrics`]: the Prometheus families, one registry per server.
//! - [`params`]: parsers for topic names, query strings, cursors and CLI
//!   durations.
//! - [`error`]: the API error type and its status / JSON mapping.
//! - [`config`]: every limit and interval, with defaults.
//! - [`auth`]: publish token and subscriber JWTs.
//! - [`origin`]: Origin checks and CORS.
//! - [`ratelimit`]: per-client rates (publishes, probes, telemetry) in
//!   bounded tables, the client behind trusted proxies, probe slots.
//! - `telemetry`: `POST /telemetry/switch`, the transport switches clients
//!   report, counted by reason.
//! - [`protocol`]: what server and clients agree on — transport names,
//!   topics, epochs, cursors, the LIST, lean forms, control messages.
//! - [`client`]: the Rust client used by `feedgate tail`, the bench, the
//!   doctor and tests: one `Subscriber` over a topic LIST.
//! - [`demo`]: the built-in demo publisher and its injectable faults.
//! - [`assets`]: the demo page and browser client embedded in the binary.
//! - `bench`: `feedgate bench`, the side-by-side load generator and its
//!   report, charts and idle-memory mode (cargo feature `bench`, on by
//!   default).
//! - `doctor`: `feedgate doctor`, which checks every transport on the
//!   network path to a server against its probe and says what to fix
//!   (cargo feature `doctor`, on by default).
//! - [`cli`]: the command line.

#![warn(missing_docs)]
#![warn(clippy::await_holding_lock)]

mod admit;
mod app;
mod assets;
pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod client;
mod config;
pub mod demo;
#[cfg(feature = "doctor")]
pub mod doctor;
mod error;
#[doc(hidden)]
pub mod fuzz_api;
pub(crate) mod http;
pub mod log;
pub mod metrics;
pub mod origin;
pub mod params;
pub mod protocol;
mod ratelimit;
pub(crate) mod router;
mod server;
pub mod sync;
mod telemetry;
pub mod tls;
pub(crate) mod transport;
pub mod wire;

pub use app::App;
pub use config::{Config, ConfigError, FanoutSpread, LogBackend};
pub use error::ApiError;
pub use server::{RunningServer, bind, run};
pub use transport::publish::validate as validate_json;
pub use transport::ws::accept_key as websocket_accept_key;
