//! Topic names, checked once: `[A-Za-z0-9_.:-]{1,128}`.

use std::fmt;
use std::sync::Arc;

/// Longest topic name accepted.
pub const MAX_TOPIC_LEN: usize = 128;

/// A valid topic name. Its alphabet has no character JSON would escape, no
/// `,` or `@` (the separators of a multiplexed `topics=` list) and no `/`,
/// so it can be written into event JSON, lists and paths as it is; this
/// type is the proof that it was checked. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Checks `name`; `None` when it is not a topic name.
    pub fn new(name: &str) -> Option<Topic> {
        let ok = !name.is_empty()
            && name.len() <= MAX_TOPIC_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        ok.then(|| Topic(Arc::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Topic::new("prices").is_some());
        assert!(Topic::new("a.b:c-d_e9").is_some());
        assert!(Topic::new(&"x".repeat(128)).is_some());
        for bad in ["", "a/b", "é", "a b", "a,b", "a@b", "a\"b"] {
            assert!(Topic::new(bad).is_none(), "{bad:?}");
        }
        assert!(Topic::new(&"x".repeat(129)).is_none());
    }
}
