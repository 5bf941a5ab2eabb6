//! The event encodings a subscriber may ask for with `encoding=`: `json`
//! (the default, the v1 event object) and `lean`, which sends an event's
//! `data` and nothing the subscriber can work out itself.
//!
//! Within a topic, events are gapless and in order, so a subscriber that
//! knows where a stream starts (the `ready` / `subscribed` message, and
//! `next` on every `gap` and `reset`) knows every event's seq by counting;
//! the topic is the stream's (or, multiplexed, named in front of the data);
//! the publish time is left out. docs/protocol.md, "Lean encoding", has the
//! exact bytes per transport. Each lean form is made once per event and
//! shared by every subscriber (it is a slice of the event JSON, or cached
//! on the event: [`Event::form`]). WebSocket frames of these bytes are
//! made in `ws/frames.rs`.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::ApiError;
use crate::log::{Event, Form, FormCache, Topic};
use crate::params::Query;

/// How events are written to one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Encoding {
    /// The v1 event object.
    #[default]
    Json,
    /// The event's `data`; see the module docs.
    Lean,
}

impl Encoding {
    /// `encoding=` of a subscription (absent: `json`).
    ///
    /// # Errors
    /// [`ApiError::InvalidQuery`] for another value.
    pub fn of(query: &Query) -> Result<Self, ApiError> {
        match query.encoding.as_deref() {
            None | Some("json") => Ok(Encoding::Json),
            Some("lean") => Ok(Encoding::Lean),
            Some(other) => Err(ApiError::InvalidQuery(format!(
                "encoding={other}: expected json or lean"
            ))),
        }
    }

    /// Whether this is the lean encoding.
    pub fn is_lean(self) -> bool {
        self == Encoding::Lean
    }
}

/// The lean multiplexed form of an event: `TOPIC data` (a topic has no
/// space, and a control message starts with `#`, which no topic does).
pub(crate) fn lean_multi(e: &Event, topic: &Topic, cache: &Arc<FormCache>) -> Bytes {
    e.form(Form::LeanMulti, cache, |e| {
        let data = e.data();
        let mut b = Vec::with_capacity(topic.as_str().len() + 1 + data.len());
        b.extend_from_slice(topic.as_str().as_bytes());
        b.push(b' ');
        b.extend_from_slice(&data);
        Bytes::from(b)
    })
}

/// The bytes of an event as `encoding` writes it on a single-topic
/// stream, without framing: slices of the event JSON, never made.
pub(crate) fn single_bytes(e: &Event, encoding: Encoding) -> Bytes {
    match encoding {
        Encoding::Json => e.json.bytes().clone(),
        Encoding::Lean => e.data(),
    }
}

/// The bytes of an event as `encoding` writes it, without framing; `topic`
/// is set on a multiplexed stream.
pub(crate) fn event_bytes(
    e: &Event,
    encoding: Encoding,
    topic: Option<&Topic>,
    cache: &Arc<FormCache>,
) -> Bytes {
    match (encoding, topic) {
        (Encoding::Lean, Some(t)) => lean_multi(e, t, cache),
        _ => single_bytes(e, encoding),
    }
}

/// A control message as `encoding` writes it: lean ones start with `#` (no
/// JSON value does, so a lean frame is an event iff it does not). A lean
/// `gap` or `reset` also says where the events after it start (`next`), as
/// lean events carry no seq: see `signal.rs`.
pub(crate) fn control(encoding: Encoding, json: String) -> String {
    match encoding {
        Encoding::Json => json,
        Encoding::Lean => {
            let mut s = String::with_capacity(json.len() + 1);
            s.push('#');
            s.push_str(&json);
            s
        }
    }
}

/// Where a gap or reset says the events resume: in the lean encoding only.
pub(crate) fn lean_next(encoding: Encoding, start: u64) -> Option<u64> {
    encoding.is_lean().then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lean_control_messages_start_with_a_hash_and_say_next() {
        use crate::log::Gap;
        use crate::transport::signal::{GapFields, Signal};
        let gap = GapFields::from(&Gap {
            missed: 2,
            resume_seq: 4,
        });
        let signal = |enc| {
            Signal::new(Some("gap"), None, gap)
                .next(lean_next(enc, 3))
                .json()
        };
        assert_eq!(
            control(Encoding::Json, signal(Encoding::Json)),
            r#"{"type":"gap","missed":2,"resume_seq":4}"#
        );
        assert_eq!(
            control(Encoding::Lean, signal(Encoding::Lean)),
            r##"#{"type":"gap","missed":2,"resume_seq":4,"next":3}"##
        );
    }
}
