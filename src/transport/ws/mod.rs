//! WebSocket (RFC 6455): a subscriber's feed as text frames, on hyper's
//! upgraded socket, still counted below the framing.
//!
//! - [`handshake`]: the upgrade checks, the permessage-deflate offer, the
//!   socket settings and the close codes every WebSocket here sends;
//! - [`session`]: one subscriber — feed, keep-alive, and what the peer says;
//! - [`control`]: `subscribe` / `unsubscribe` messages on `/ws?topics=`;
//! - [`frames`]: event frames written straight to the socket, the payload
//!   shared and only the header the subscriber's;
//! - [`deflate`]: permessage-deflate (RFC 7692) around tokio-tungstenite;
//! - [`echo`]: `/echo`, a WebSocket echo for the Autobahn cases (`--echo`).

pub(crate) mod control;
pub(crate) mod deflate;
pub(crate) mod echo;
pub(crate) mod frames;
pub(crate) mod handshake;
pub(crate) mod session;

pub use handshake::accept_key;
pub(crate) use session::subscribe;
