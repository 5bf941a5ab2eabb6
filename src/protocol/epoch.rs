//! The epoch id that tells one incarnation of a topic's log from another.

use std::fmt;
use std::str::FromStr;

/// A random id chosen when a topic's log is created. Cursors carry it so a
/// cursor from a previous incarnation (a restarted in-memory server, a lost
/// Redis stream) is detected as a reset instead of silently misread.
///
/// On the wire it is 16 lowercase hex digits: a string, because JSON numbers
/// above 2^53 lose precision in JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch of a topic that has never been published to. A cursor
    /// `0000000000000000:0` continues into whatever epoch the topic's first
    /// publish creates, without a reset (see docs/protocol.md).
    pub const NONE: Epoch = Epoch(0);

    /// A fresh random epoch; never [`Epoch::NONE`].
    pub fn random() -> Self {
        loop {
            let e: u64 = rand::random();
            if e != 0 {
                return Epoch(e);
            }
        }
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// On the wire: its 16 hex digits, as a JSON string.
impl serde::Serialize for Epoch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a string is not an epoch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an epoch is 1 to 16 hex digits")]
pub struct BadEpoch;

impl FromStr for Epoch {
    type Err = BadEpoch;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadEpoch);
        }
        u64::from_str_radix(s, 16).map(Epoch).map_err(|_| BadEpoch)
    }
}

impl<'de> serde::Deserialize<'de> for Epoch {
    /// From its text, as every message that names an epoch writes it.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let e = Epoch(0x00ab_cdef_0123_4567);
        assert_eq!(e.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<Epoch>(), Ok(e));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#""00abcdef01234567""#);
        assert_eq!(serde_json::from_str::<Epoch>(&json).unwrap(), e);
        assert!(serde_json::from_str::<Epoch>(r#""xyz""#).is_err());
    }

    #[test]
    fn rejects_non_hex_and_overlong() {
        assert!("".parse::<Epoch>().is_err());
        assert!("xyz".parse::<Epoch>().is_err());
        assert!("+1".parse::<Epoch>().is_err());
        assert!("00000000000000000".parse::<Epoch>().is_err());
    }
}
