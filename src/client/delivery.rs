//! What a subscription yields: events, gaps and resets, in order.

use bytes::Bytes;

use super::ClientError;
use super::error::protocol;
use crate::protocol::{Control, Epoch, EventHead, Gap, Reset};

/// An event as a client receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// Its seq.
    pub seq: u64,
    /// Its publish time, µs since the Unix epoch (0 in the lean encoding,
    /// which does not send it).
    pub time_us: u64,
    /// The exact event JSON the server sent (lean: the data).
    pub json: Bytes,
}

/// One thing a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An event.
    Event(ReceivedEvent),
    /// The server skipped `missed` events no longer retained.
    Gap {
        /// How many.
        missed: u64,
        /// The next seq to come.
        resume_seq: u64,
    },
    /// The cursor was from another epoch or past the head; delivery restarts
    /// from the oldest retained event of `epoch`.
    Reset {
        /// `epoch_changed` or `cursor_ahead`.
        reason: String,
        /// The log's current epoch.
        epoch: Epoch,
    },
}

impl From<Gap> for Delivery {
    fn from(g: Gap) -> Delivery {
        Delivery::Gap {
            missed: g.missed,
            resume_seq: g.resume_seq,
        }
    }
}

impl From<Reset> for Delivery {
    fn from(r: Reset) -> Delivery {
        Delivery::Reset {
            reason: r.reason,
            epoch: r.epoch,
        }
    }
}

/// Parses one event JSON as the server sent it.
///
/// # Errors
/// When it is not an event object.
pub fn parse_event(json: Bytes) -> Result<ReceivedEvent, ClientError> {
    let head = EventHead::parse(&json).map_err(protocol)?;
    let (seq, time_us) = (head.seq, head.time);
    Ok(ReceivedEvent { seq, time_us, json })
}

/// A lean event: `data` at `seq` (its publish time is not sent).
pub(super) fn lean_event(seq: u64, data: Bytes) -> ReceivedEvent {
    ReceivedEvent {
        seq,
        time_us: 0,
        json: data,
    }
}

/// Decodes a gap or reset signal's JSON (SSE data, or a WebSocket message
/// without its `type`); `None` for signals a subscriber need not act on
/// (`ready`).
///
/// # Errors
/// [`ClientError::Protocol`] when the JSON does not fit the signal `kind`.
pub fn control(kind: &str, json: &[u8]) -> Result<Option<Delivery>, ClientError> {
    let c = Control::from_fields(kind, json).map_err(protocol)?;
    Ok(signal(c))
}

/// The delivery a control message is, if it is one.
pub(super) fn signal(c: Control) -> Option<Delivery> {
    match c {
        Control::Gap(g) => Some(g.fields.into()),
        Control::Reset(r) => Some(r.fields.into()),
        _ => None,
    }
}
