//! The control messages the transports send besides events — the opening
//! (`ready`, or `subscribed` per topic on a multiplexed stream), `gap`,
//! `reset`, `unsubscribed`, `error` — as serde types, each shape written
//! down once. A WebSocket sends a message as one object led by its `type`;
//! an SSE stream names the type in `event:` and sends the rest as `data:`;
//! a poll answer nests the `gap` and `reset` objects. In the lean encoding
//! a `gap` or `reset` also says where the events resume (`next`), since
//! lean events carry no seq.

use serde::Serialize;

use crate::log::{Epoch, Gap, ResetReason, Topic};

/// The fields of a gap signal: how many events the reader missed, and the
/// first seq it gets after them.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct GapFields {
    missed: u64,
    resume_seq: u64,
}

impl From<&Gap> for GapFields {
    fn from(g: &Gap) -> Self {
        GapFields {
            missed: g.missed,
            resume_seq: g.resume_seq,
        }
    }
}

/// The fields of a reset signal: why, and the log's current epoch.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct ResetFields {
    reason: &'static str,
    epoch: Epoch,
}

impl ResetFields {
    /// A reset for `reason`, into `epoch`.
    pub fn new(reason: ResetReason, epoch: Epoch) -> Self {
        ResetFields {
            reason: reason.as_str(),
            epoch,
        }
    }
}

/// The fields of an opening: the epoch the stream starts in (its `next`
/// is the message's).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct OpeningFields {
    epoch: Epoch,
}

impl OpeningFields {
    /// An opening in `epoch`.
    pub fn new(epoch: Epoch) -> Self {
        OpeningFields { epoch }
    }
}

/// One control message: its `type` (left out where the framing names it),
/// its topic on a multiplexed stream, its fields, and `next` where it says
/// where the events resume.
#[derive(Serialize)]
pub(crate) struct Signal<'a, F: Serialize> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(flatten)]
    fields: F,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<u64>,
}

impl<'a, F: Serialize> Signal<'a, F> {
    /// A message of `kind` (`None`: the framing names it).
    pub fn new(kind: Option<&'static str>, topic: Option<&'a Topic>, fields: F) -> Self {
        Signal {
            kind,
            topic: topic.map(Topic::as_str),
            fields,
            next: None,
        }
    }

    /// Says where the events resume.
    pub fn next(mut self, next: Option<u64>) -> Self {
        self.next = next;
        self
    }

    /// The message as JSON text.
    pub fn json(&self) -> String {
        // Cannot fail: plain fields, string keys.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A message that carries only its type and topic:
/// `{"type":"unsubscribed","topic":"T"}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct NoFields {}

/// `{"type":"error","code":…,"topic":…,"message":…}` (topic left out when
/// the message named none).
#[derive(Serialize)]
pub(crate) struct ErrorMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    message: &'a str,
}

impl<'a> ErrorMessage<'a> {
    /// An error `code` about `topic`, explained by `message`.
    pub fn new(code: &'a str, topic: Option<&'a str>, message: &'a str) -> Self {
        ErrorMessage {
            kind: "error",
            code,
            topic,
            message,
        }
    }

    /// The message as JSON text.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact bytes docs/protocol.md shows.
    #[test]
    fn messages_keep_their_documented_shape() {
        let t = Topic::new("prices").unwrap();
        let e = Epoch(0x9f2c_4e01_a7b3_d5e8);
        let gap = Gap {
            missed: 2,
            resume_seq: 4,
        };
        assert_eq!(
            Signal::new(Some("ready"), None, OpeningFields::new(e))
                .next(Some(3))
                .json(),
            r#"{"type":"ready","epoch":"9f2c4e01a7b3d5e8","next":3}"#
        );
        assert_eq!(
            Signal::new(Some("gap"), Some(&t), GapFields::from(&gap)).json(),
            r#"{"type":"gap","topic":"prices","missed":2,"resume_seq":4}"#
        );
        assert_eq!(
            Signal::new(None, None, ResetFields::new(ResetReason::EpochChanged, e))
                .next(Some(0))
                .json(),
            r#"{"reason":"epoch_changed","epoch":"9f2c4e01a7b3d5e8","next":0}"#
        );
        assert_eq!(
            Signal::new(Some("unsubscribed"), Some(&t), NoFields {}).json(),
            r#"{"type":"unsubscribed","topic":"prices"}"#
        );
        assert_eq!(
            ErrorMessage::new("not_subscribed", Some("x\"y"), "no").json(),
            r#"{"type":"error","code":"not_subscribed","topic":"x\"y","message":"no"}"#
        );
    }
}
