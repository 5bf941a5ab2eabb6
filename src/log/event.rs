//! One event, serialized once to the JSON every transport delivers.

use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Topic;
use super::forms::{Form, FormCache, Forms};

/// An event as stored in the log and written by every transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the topic's log, from 1, gapless.
    pub seq: u64,
    /// Publish time, microseconds since the Unix epoch.
    pub time_us: u64,
    /// The serialized event object,
    /// `{"topic":…,"seq":…,"time":…,"data":…}`: built once at append (or
    /// checked once when read from a shared store) and shared by every
    /// delivery (a clone is a reference-count increment).
    pub json: EventJson,
    /// Where `data` sits in `json`, and the other wire forms of the event,
    /// made on first use and shared by every clone (see `log/forms.rs`).
    pub(crate) forms: Arc<Forms>,
}

/// The bytes of one event object: valid UTF-8, one JSON object, one line.
///
/// The invariant is this type's reason to exist: its only constructors are
/// [`Event::build`] (from a body `transport::publish` validated) and
/// [`Event::decode`] (which validates bytes read from elsewhere), so a
/// WebSocket text frame can be made from it without re-checking per
/// delivery and without trusting a store another process can write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventJson(Bytes);

impl std::ops::Deref for EventJson {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl EventJson {
    /// The bytes, shared.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The JSON as text.
    pub fn as_str(&self) -> &str {
        // Cannot fail: see the type's invariant.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The JSON as a WebSocket text payload, without copying it.
    pub fn utf8(&self) -> Utf8Bytes {
        debug_assert!(std::str::from_utf8(&self.0).is_ok());
        // SAFETY: `EventJson` is only ever constructed from bytes this
        // process validated as UTF-8 (`Event::build` from serde_json-checked
        // input and an ASCII envelope; `Event::decode` with `from_utf8`), and
        // `Bytes` is immutable.
        unsafe { Utf8Bytes::from_bytes_unchecked(self.0.clone()) }
    }
}

/// Why bytes read from a store are not an event this server could deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadEvent {
    /// Not UTF-8.
    #[error("the event is not valid UTF-8")]
    NotUtf8,
    /// UTF-8, but not one single-line JSON object.
    #[error("the event is not one single-line JSON object")]
    NotJson,
}

impl Event {
    /// Builds the event's wire JSON around `data`, which must already be a
    /// validated single-line JSON value (see `transport::publish`).
    pub fn build(topic: &Topic, seq: u64, time_us: u64, data: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(data.len() + topic.as_str().len() + 64);
        // A `Topic` needs no escaping inside a JSON string.
        let _ = write!(
            buf,
            r#"{{"topic":"{topic}","seq":{seq},"time":{time_us},"data":"#
        );
        let data_at = buf.len();
        buf.extend_from_slice(data);
        buf.push(b'}');
        Event {
            seq,
            time_us,
            forms: Forms::at(Some(data_at..buf.len() - 1)),
            json: EventJson(Bytes::from(buf)),
        }
    }

    /// The published `data` value's bytes, shared with the event JSON
    /// (`null` for a foreign object without one).
    pub(crate) fn data(&self) -> Bytes {
        match &self.forms.data {
            Some(r) => self.json.0.slice(r.clone()),
            None => Bytes::from_static(b"null"),
        }
    }

    /// The event's `form`: kept from the last time any clone asked, else
    /// made by `make` and kept within `cache`'s budget.
    pub(crate) fn form(
        &self,
        form: Form,
        cache: &Arc<FormCache>,
        make: impl FnOnce(&Event) -> Bytes,
    ) -> Bytes {
        cache.get(&self.forms, form, || make(self))
    }

    /// An event whose JSON was read from outside this process (a shared
    /// store), checked once here: valid UTF-8, one JSON object on one line.
    ///
    /// # Errors
    /// [`BadEvent`] when the bytes could not have come from
    /// [`Event::build`]; such bytes are never sent to a client.
    pub fn decode(seq: u64, time_us: u64, json: Bytes) -> Result<Self, BadEvent> {
        let text = std::str::from_utf8(&json).map_err(|_| BadEvent::NotUtf8)?;
        let one_line = !text.bytes().any(|b| b == b'\n' || b == b'\r');
        // One parse both checks the object and finds its `data`.
        let data = match data_range(text) {
            Ok(data) if one_line && text.starts_with('{') => data,
            _ => return Err(BadEvent::NotJson),
        };
        Ok(Event {
            seq,
            time_us,
            forms: Forms::at(data),
            json: EventJson(json),
        })
    }

    /// The event JSON as text.
    pub fn as_str(&self) -> &str {
        self.json.as_str()
    }
}

/// Where the `data` member's value is in an event object's text; an error
/// when the text is not one JSON object.
fn data_range(text: &str) -> Result<Option<Range<usize>>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Data<'a> {
        #[serde(borrow)]
        data: Option<&'a serde_json::value::RawValue>,
    }
    let parsed = serde_json::from_str::<Data<'_>>(text)?;
    Ok(parsed.data.map(|raw| {
        let raw = raw.get();
        let at = raw.as_ptr() as usize - text.as_ptr() as usize;
        at..at + raw.len()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_contract_json() {
        let e = Event::build(
            &Topic::new("prices").unwrap(),
            17,
            1_764_072_000_123_456,
            br#"{"bid":1.5}"#,
        );
        assert_eq!(
            e.as_str(),
            r#"{"topic":"prices","seq":17,"time":1764072000123456,"data":{"bid":1.5}}"#
        );
        let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(v["data"]["bid"], 1.5);
        assert_eq!(&e.data()[..], br#"{"bid":1.5}"#);
        let read = Event::decode(17, 1, e.json.bytes().clone()).unwrap();
        assert_eq!(&read.data()[..], br#"{"bid":1.5}"#);
    }

    #[test]
    fn decode_refuses_what_build_cannot_make() {
        let ok = Event::decode(1, 2, Bytes::from_static(br#"{"topic":"t","data":1}"#));
        assert_eq!(ok.unwrap().as_str(), r#"{"topic":"t","data":1}"#);
        let bad_utf8 = Event::decode(1, 2, Bytes::from_static(b"{\"a\":\"\xff\"}"));
        assert_eq!(bad_utf8.unwrap_err(), BadEvent::NotUtf8);
        for bad in [&b"[1]"[..], b"{\"a\":1", b"{\"a\":\n1}", b"", b"null"] {
            let e = Event::decode(1, 2, Bytes::copy_from_slice(bad));
            assert_eq!(e.unwrap_err(), BadEvent::NotJson, "{bad:?}");
        }
    }
}
