//! One event, serialized once to the JSON every transport delivers.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// An event as stored in the log and written by every transport.
///
/// `json` is the complete event object,
/// `{"topic":…,"seq":…,"time":…,"data":…}`, built once at append and shared
/// (a `Bytes` clone is a reference-count increment) by every delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the topic's log, from 1, gapless.
    pub seq: u64,
    /// Publish time, microseconds since the Unix epoch.
    pub time_us: u64,
    /// The serialized event object. Always valid UTF-8 JSON on one line.
    pub json: Bytes,
}

impl Event {
    /// Builds the event's wire JSON around `data`, which must already be a
    /// validated single-line JSON value (see `transport::publish`).
    pub fn build(topic: &str, seq: u64, time_us: u64, data: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(data.len() + topic.len() + 64);
        // Topic names are restricted to [A-Za-z0-9_.:-], so they need no
        // escaping inside the JSON string.
        let _ = write!(
            buf,
            r#"{{"topic":"{topic}","seq":{seq},"time":{time_us},"data":"#
        );
        buf.extend_from_slice(data);
        buf.push(b'}');
        Event {
            seq,
            time_us,
            json: Bytes::from(buf),
        }
    }

    /// The event JSON as text.
    pub fn as_str(&self) -> &str {
        // The JSON is built from validated UTF-8 and ASCII only.
        std::str::from_utf8(&self.json).unwrap_or("")
    }
}

/// Now, in microseconds since the Unix epoch.
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
    fn builds_the_contract_json() {
        let e = Event::build("prices", 17, 1_764_072_000_123_456, br#"{"bid":1.5}"#);
        assert_eq!(
            e.as_str(),
            r#"{"topic":"prices","seq":17,"time":1764072000123456,"data":{"bid":1.5}}"#
        );
        let v: serde_json::Value = serde_json::from_slice(&e.json).unwrap();
        assert_eq!(v["data"]["bid"], 1.5);
    }
}
