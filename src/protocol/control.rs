//! Control messages — everything a subscriber is told besides events, and
//! what a WebSocket client asks — as serde types, so no side writes or
//! reads them by hand (docs/protocol.md, "WebSocket" and "Multiplexed
//! subscriptions").
//!
//! On a WebSocket a control message is a JSON object whose `type` names it
//! (`{"type":"gap","missed":3,"resume_seq":22}`): [`Control`] reads it
//! whole. On SSE the event name is the type and the data holds the other
//! fields: [`Control::from_fields`] takes the two apart. Single-topic
//! messages have no `topic`; lean ones say `next`, where counting resumes.

use serde::{Deserialize, Serialize};

use super::Epoch;

/// A message from the server that is not an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Control {
    /// A single-topic stream starts here (`next`: the seq before its first
    /// event).
    Ready(Position),
    /// A topic of a multiplexed subscription starts here.
    Subscribed(Position),
    /// A topic was let go; none of its events follow.
    Unsubscribed {
        /// The topic.
        topic: String,
    },
    /// Events no longer retained were skipped.
    Gap(Signal<Gap>),
    /// The cursor could not be honoured: delivery restarts from the oldest
    /// retained event of `epoch`.
    Reset(Signal<Reset>),
    /// A request on a multiplexed WebSocket was refused; the socket stays
    /// open.
    Error(Refusal),
    /// A type this side does not know (newer servers may add some).
    #[serde(other)]
    Other,
}

/// Where a stream, or one topic of it, starts: `ready` and `subscribed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The topic (multiplexed subscriptions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The topic's epoch.
    pub epoch: Epoch,
    /// The seq before the first event to come.
    pub next: u64,
}

/// A signal about one topic: its own fields (`T`), the topic it is about
/// (multiplexed subscriptions only) and, in the lean encoding, the seq
/// before the events that follow it (lean events carry none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal<T> {
    /// The topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// What the signal says.
    #[serde(flatten)]
    pub fields: T,
    /// Lean encoding: where counting resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// A gap: events no longer retained were skipped (also a poll answer's
/// `gap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// How many events are gone.
    pub missed: u64,
    /// The first seq delivered after it.
    pub resume_seq: u64,
}

/// A reset: the cursor could not be honoured (also a poll answer's
/// `reset`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reset {
    /// `epoch_changed` or `cursor_ahead`.
    pub reason: String,
    /// The log's epoch now.
    pub epoch: Epoch,
}

/// An `error` message of a multiplexed WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The error code (`invalid_topic`, `forbidden`, …).
    pub code: String,
    /// The topic the refused request named, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// What went wrong, in words.
    #[serde(default)]
    pub message: String,
}

impl Control {
    /// A control message from its type and its other fields, as an SSE
    /// event carries it (the event name, the data).
    ///
    /// # Errors
    /// When `json` does not hold the fields of `kind`.
    pub fn from_fields(kind: &str, json: &[u8]) -> serde_json::Result<Control> {
        Ok(match kind {
            "ready" => Control::Ready(serde_json::from_slice(json)?),
            "subscribed" => Control::Subscribed(serde_json::from_slice(json)?),
            "unsubscribed" => {
                #[derive(Deserialize)]
                struct Named {
                    topic: String,
                }
                let n: Named = serde_json::from_slice(json)?;
                Control::Unsubscribed { topic: n.topic }
            }
            "gap" => Control::Gap(serde_json::from_slice(json)?),
            "reset" => Control::Reset(serde_json::from_slice(json)?),
            "error" => Control::Error(serde_json::from_slice(json)?),
            _ => Control::Other,
        })
    }

    /// The topic the message is about, on a multiplexed subscription.
    pub fn topic(&self) -> Option<&str> {
        match self {
            Control::Ready(p) | Control::Subscribed(p) => p.topic.as_deref(),
            Control::Unsubscribed { topic } => Some(topic),
            Control::Gap(g) => g.topic.as_deref(),
            Control::Reset(r) => r.topic.as_deref(),
            Control::Error(e) => e.topic.as_deref(),
            Control::Other => None,
        }
    }
}

/// What a client may send on a multiplexed WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Request {
    /// Follow one more topic, from `after` (a cursor's text; none: from
    /// now). Answered `subscribed`, or `error`.
    Subscribe {
        /// The topic.
        topic: String,
        /// Where to start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// Stop following a topic. Answered `unsubscribed`.
    Unsubscribe {
        /// The topic.
        topic: String,
    },
}

impl Request {
    /// The message's JSON text.
    pub fn to_json(&self) -> String {
        // A derived Serialize of strings and options cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form_the_server_writes() {
        let e = "9f2c4e01a7b3d5e8".parse::<Epoch>().unwrap();
        let ws = |text: &str| serde_json::from_str::<Control>(text).unwrap();
        assert_eq!(
            ws(r#"{"type":"ready","epoch":"9f2c4e01a7b3d5e8","next":16}"#),
            Control::Ready(Position {
                topic: None,
                epoch: e,
                next: 16
            })
        );
        assert_eq!(
            ws(r#"{"type":"gap","topic":"a","missed":3,"resume_seq":22,"next":21}"#),
            Control::Gap(Signal {
                topic: Some("a".into()),
                fields: Gap {
                    missed: 3,
                    resume_seq: 22
                },
                next: Some(21)
            })
        );
        assert_eq!(ws(r#"{"type":"later","x":1}"#), Control::Other);
        let sse = Control::from_fields(
            "reset",
            br#"{"reason":"epoch_changed","epoch":"9f2c4e01a7b3d5e8"}"#,
        )
        .unwrap();
        assert_eq!(
            sse,
            Control::Reset(Signal {
                topic: None,
                fields: Reset {
                    reason: "epoch_changed".into(),
                    epoch: e
                },
                next: None
            })
        );
        assert!(Control::from_fields("gap", br#"{"missed":1}"#).is_err());
        assert_eq!(
            Control::from_fields("unsubscribed", br#"{"topic":"a"}"#).unwrap(),
            Control::Unsubscribed { topic: "a".into() }
        );
    }

    #[test]
    fn writes_signals_in_the_servers_order() {
        let gap = Control::Gap(Signal {
            topic: Some("a".into()),
            fields: Gap {
                missed: 3,
                resume_seq: 22,
            },
            next: Some(21),
        });
        assert_eq!(
            serde_json::to_string(&gap).unwrap(),
            r#"{"type":"gap","topic":"a","missed":3,"resume_seq":22,"next":21}"#
        );
    }

    #[test]
    fn writes_requests_as_documented() {
        let s = Request::Subscribe {
            topic: "T".into(),
            after: Some("5".into()),
        };
        assert_eq!(
            s.to_json(),
            r#"{"type":"subscribe","topic":"T","after":"5"}"#
        );
        let u = Request::Unsubscribe { topic: "T".into() };
        assert_eq!(u.to_json(), r#"{"type":"unsubscribe","topic":"T"}"#);
    }
}
