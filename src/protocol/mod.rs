//! What a feedgate server and its clients agree on, written once: the
//! names of the transports, topic names, epochs and cursors (`N`,
//! `EPOCH:N`), the LIST of a multiplexed subscription (`TOPIC@CURSOR,…`),
//! the event's head, the lean encoding's forms, the control messages as
//! serde types, and the path probe's limits.
//!
//! The client (`crate::client`), `feedgate bench` and `feedgate doctor`
//! speak to a server through this module and never through the server's
//! own modules, so the client can become a crate of its own; the server
//! uses the same definitions (`crate::log` re-exports [`Cursor`], [`Epoch`]
//! and [`Topic`]; `crate::params` maps [`Malformed`] to its HTTP errors).
//!
//! # Layout
//!
//! - `transport`: [`Transport`], the transports by name.
//! - `topic`: [`Topic`], a checked topic name.
//! - `epoch`: [`Epoch`], one incarnation of a topic's log.
//! - `cursor`: [`Cursor`] and its text.
//! - `list`: the LIST of a multiplexed subscription.
//! - `event`: [`EventHead`], an event's fields besides its data.
//! - `lean`: the lean encoding's messages.
//! - `control`: [`Control`] and [`Request`], every message besides events.
//! - [`probe`]: what the path probe and `feedgate doctor` share.
//! - `malformed`: [`Malformed`], why protocol text was refused.

mod control;
mod cursor;
mod epoch;
mod event;
pub mod lean;
mod list;
mod malformed;
pub mod probe;
mod topic;
mod transport;

pub use control::{Control, Gap, Position, Refusal, Request, Reset, Signal};
pub use cursor::{Cursor, CursorText, format_cursor, parse_epoch};
pub use epoch::{BadEpoch, Epoch};
pub use event::{EventHead, unix_micros};
pub use list::{ListItem, list_item, parse_list, push_item};
pub use malformed::Malformed;
pub use topic::{MAX_TOPIC_LEN, Topic};
pub use transport::Transport;
