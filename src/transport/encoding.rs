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
//! on the event: [`Event::form`]).

use std::sync::Arc;

use bytes::Bytes;

use super::ws::deflate::{self, Params};
use super::ws::frames::EventFrame;
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

/// The WebSocket frame for an event: a text frame of its bytes, or with
/// permessage-deflate the event's one compressed payload (made by the
/// first subscriber that needs it, shared by all the others). Either way
/// the payload is shared; only the frame header is the subscriber's.
pub(crate) fn ws_event(
    e: &Event,
    encoding: Encoding,
    topic: Option<&Topic>,
    deflate: Option<Params>,
    cache: &Arc<FormCache>,
) -> EventFrame {
    let plain = event_bytes(e, encoding, topic, cache);
    if let Some(p) = deflate
        && p.may_compress(plain.len())
    {
        let form = match (encoding, topic) {
            (Encoding::Json, _) => Form::JsonDeflated,
            (Encoding::Lean, None) => Form::LeanDeflated,
            (Encoding::Lean, Some(_)) => Form::LeanMultiDeflated,
        };
        let packed = e.form(form, cache, |_| deflate::compress(&plain));
        // Deflate does not pay on every event (tiny or random ones):
        // whichever is smaller goes.
        if packed.len() < plain.len() {
            return EventFrame {
                payload: packed,
                compressed: true,
            };
        }
    }
    // The event JSON is valid UTF-8 (`EventJson`'s invariant); its `data`
    // is a whole JSON value within it, so it starts and ends on character
    // boundaries; a topic is ASCII: a text frame's payload.
    EventFrame {
        payload: plain,
        compressed: false,
    }
}

/// A control message as `encoding` writes it: lean ones start with `#` (no
/// JSON value does, so a lean frame is an event iff it does not), and a
/// lean `gap` or `reset` says where the events after it start (`next`), as
/// lean events carry no seq.
pub(crate) fn control(encoding: Encoding, json: String, next: Option<u64>) -> String {
    match encoding {
        Encoding::Json => json,
        Encoding::Lean => {
            let mut s = String::with_capacity(json.len() + 16);
            s.push('#');
            match next {
                Some(n) if json.ends_with('}') => {
                    s.push_str(&json[..json.len() - 1]);
                    s.push_str(&format!(r#","next":{n}}}"#));
                }
                _ => s.push_str(&json),
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(f: &EventFrame) -> &[u8] {
        &f.payload
    }

    #[test]
    fn every_clone_of_an_event_shares_one_compressed_form() {
        let topic = Topic::new("t").unwrap();
        let e = Event::build(
            &topic,
            1,
            2,
            br#"{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","c":"bbbbbbbb"}"#,
        );
        let clone = e.clone();
        let cache = FormCache::new(1 << 20);
        let p = Some(Params {
            server_window_bits: 15,
            client_no_context_takeover: false,
        });
        for (enc, named) in [
            (Encoding::Json, None),
            (Encoding::Lean, None),
            (Encoding::Lean, Some(&topic)),
        ] {
            let a = ws_event(&e, enc, named, p, &cache);
            let b = ws_event(&clone, enc, named, p, &cache);
            assert!(a.compressed && b.compressed, "{enc:?} compressed");
            // The same bytes, not equal ones: compressed once.
            assert_eq!(payload(&a).as_ptr(), payload(&b).as_ptr(), "{enc:?}");
        }
        // Lean, uncompressed: a slice of the event JSON itself.
        let lean = ws_event(&e, Encoding::Lean, None, None, &cache);
        let json = e.json.bytes();
        let at = payload(&lean).as_ptr() as usize - json.as_ptr() as usize;
        assert!(at < json.len());
        assert_eq!(payload(&lean), &json[at..json.len() - 1]);
        assert_eq!(
            payload(&ws_event(&e, Encoding::Lean, Some(&topic), None, &cache)),
            br#"t {"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","c":"bbbbbbbb"}"#
        );
    }

    #[test]
    fn lean_control_messages_start_with_a_hash_and_say_next() {
        let gap = r#"{"type":"gap","missed":2,"resume_seq":4}"#.to_owned();
        assert_eq!(control(Encoding::Json, gap.clone(), Some(3)), gap);
        assert_eq!(
            control(Encoding::Lean, gap, Some(3)),
            r##"#{"type":"gap","missed":2,"resume_seq":4,"next":3}"##
        );
    }
}
