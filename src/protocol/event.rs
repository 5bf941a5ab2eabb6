//! An event as every transport delivers it in the json encoding:
//! `{"topic":"prices","seq":17,"time":1764072000123456,"data":{"bid":1.5}}`.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// An event's fields besides its data, read without copying the data.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EventHead<'a> {
    /// Its topic (a topic name needs no JSON escape, so this borrows).
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    /// Its seq in the topic's log.
    pub seq: u64,
    /// Its publish time, µs since the Unix epoch.
    pub time: u64,
}

impl<'a> EventHead<'a> {
    /// Reads the head of an event's JSON.
    ///
    /// # Errors
    /// When `json` is not an event object.
    pub fn parse(json: &'a [u8]) -> serde_json::Result<EventHead<'a>> {
        serde_json::from_slice(json)
    }
}

/// Now, in microseconds since the Unix epoch: an event's `time`.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_head_and_skips_the_data() {
        let json = br#"{"topic":"prices","seq":17,"time":1764072000123456,"data":{"bid":[1.5]}}"#;
        let h = EventHead::parse(json).unwrap();
        assert_eq!(
            (h.topic.as_ref(), h.seq, h.time),
            ("prices", 17, 1764072000123456)
        );
        assert!(matches!(h.topic, Cow::Borrowed(_)));
        assert!(EventHead::parse(br#"{"seq":1}"#).is_err());
    }
}
