//! Server-Sent Events: a subscriber's feed as one `text/event-stream`
//! response.
//!
//! - [`stream`]: the stream — events as chunks, control events, the
//!   heartbeat, how it resumes from `Last-Event-ID`;
//! - [`id`]: the compact id of a multiplexed stream.

pub(crate) mod id;
pub(crate) mod stream;

pub(crate) use stream::subscribe;
