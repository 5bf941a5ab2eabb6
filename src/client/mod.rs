//! The Rust client: publish, and subscribe to one topic or a LIST of them
//! over any of the four transports with one interface. `feedgate tail`,
//! `feedgate publish`, the bench, the doctor and the integration tests all
//! use it.
//!
//! It speaks to a server only through [`crate::protocol`] (and counts its
//! bytes with [`crate::wire::ByteCount`]): nothing here knows the server's
//! modules, so the client could be a crate of its own. Every connection it
//! opens runs through [`CountingIo`], so a client
//! knows exactly how many bytes it sent and received (the bench compares
//! these with the server's `/metrics`).
//!
//! # Layout
//!
//! - `subscriber`: [`Subscriber`], one or many topics over one transport.
//! - `topics`: the followed topics, their cursors, the LIST, and the steps
//!   a connection's messages become.
//! - `decode`, `lean`: events and control messages into steps, in the
//!   json and lean encodings; [`Wire`], what a subscriber asks of the wire.
//! - `poll`, `sse`, `ws`: one file per transport connection.
//! - `inflate`: the client's side of permessage-deflate.
//! - `resume`: [`Resume`], coming back after a restart with jitter.
//! - `http`: [`HttpConn`], a keep-alive HTTP/1.1 or HTTP/2 connection;
//!   `h2`: what it must know of an HTTP/2 server's SETTINGS.
//! - `link`: dialing — TCP counted at the socket, TLS with ALPN — and
//!   [`Link`], what a connection speaks; `tls`: [`Trust`], the
//!   certificates an `https://` endpoint accepts.
//! - `linger`: a dropped socket reads the server's last bytes until it
//!   closes ([`Sockets`]: when every socket of a user has).
//! - `pool`: one HTTP/2 connection shared by a simulated browser
//!   ([`Endpoint::shared`]).
//! - `publish`, `endpoint`, `delivery`, `error`, `sse_parser`.

mod decode;
mod delivery;
mod endpoint;
mod error;
mod h2;
mod http;
mod inflate;
mod lean;
mod linger;
mod link;
mod poll;
mod pool;
mod publish;
mod resume;
mod sse;
mod sse_parser;
mod subscriber;
mod tls;
mod topics;
mod ws;

use std::sync::Arc;

use tokio::net::TcpStream;

pub use delivery::{Delivery, ReceivedEvent, control, parse_event};
pub use endpoint::Endpoint;
pub use error::ClientError;
pub use http::HttpConn;
pub use lean::Wire;
pub use linger::Sockets;
pub use link::{BoxIo, Link, dial};
pub use publish::publish;
pub use resume::Resume;
pub use sse::{open_event_stream, open_event_stream_link};
pub use sse_parser::{SseError, SseEvent, SseParser};
pub use subscriber::{RequestStats, SubscribeOptions, Subscriber};
pub use tls::{TlsClient, Trust};
pub use topics::parse_list;
pub use ws::{WsIo, WsRoute, WsStream, open_websocket, open_websocket_route, open_websocket_with};

use crate::wire::{ByteCount, CountingIo};

/// A client socket that counts its bytes.
pub type CountedStream = CountingIo<TcpStream, Arc<ByteCount>>;
