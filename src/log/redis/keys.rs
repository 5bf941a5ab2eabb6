//! The Redis names of one topic — two keys and a pub/sub channel, all in
//! one hash slot — and how a name maps to its slot.

/// Prefix of every key and channel feedgate uses.
const PREFIX: &str = "feedgate:";
/// The set of topic names, for `--max-topics` across all nodes. The one
/// key outside a topic's slot: only a topic's creation touches it.
pub(super) const TOPICS_KEY: &str = "feedgate:topics";
/// Hash slots in a Redis Cluster.
const SLOTS: u16 = 16_384;

/// The Redis names of one topic `T`. The `{T}` hash tag puts all three in
/// one slot, so one script may touch them on a Redis Cluster.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// The topic, `T`.
    pub(super) topic: String,
    /// `feedgate:{T}:meta`, a hash: `epoch`, `seq` (the head) and
    /// `replid` (the replication ID of the master that last wrote it).
    pub(super) meta: String,
    /// `feedgate:{T}:log`, a stream: entry `<seq>-0`, fields `t` and `e`.
    pub(super) log: String,
    /// `feedgate:{T}:n`, the channel every append and new epoch is
    /// announced on.
    pub(super) channel: String,
    /// The hash slot of all three.
    pub(super) slot: u16,
}

impl Keys {
    pub(super) fn new(topic: &str) -> Self {
        // Topic names are [A-Za-z0-9_.:-], so they never contain the braces
        // of the hash tag.
        Keys {
            topic: topic.to_owned(),
            meta: format!("{PREFIX}{{{topic}}}:meta"),
            log: format!("{PREFIX}{{{topic}}}:log"),
            channel: format!("{PREFIX}{{{topic}}}:n"),
            slot: crc16(topic.as_bytes()) % SLOTS,
        }
    }
}

/// The topic a channel announces, if it is one of ours.
pub(super) fn topic_of_channel(channel: &[u8]) -> Option<&str> {
    let rest = channel
        .strip_prefix(PREFIX.as_bytes())?
        .strip_prefix(b"{")?;
    let name = rest.strip_suffix(b"}:n")?;
    std::str::from_utf8(name).ok()
}

/// The hash slot of a key as Redis Cluster computes it: CRC16-XMODEM of
/// the hash tag (the text between the first `{` and the next `}`, when not
/// empty), else of the whole key, modulo 16384.
#[cfg(test)]
fn slot_of_key(key: &[u8]) -> u16 {
    let tag = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tag.unwrap_or(key)) % SLOTS
}

/// CRC16-XMODEM (polynomial 0x1021, initial 0), bit by bit: a topic's slot
/// is computed once, when a node opens it.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_agree_with_redis_cluster() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.0.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot_of_key(b"feedgate:{a}:meta"), 15495);
        assert_eq!(
            slot_of_key(b"foo{}{bar}"),
            8363,
            "an empty tag hashes the key"
        );
        assert_eq!(slot_of_key(b"{user1000}.following"), 3443);
        let k = Keys::new("a");
        assert_eq!(k.slot, slot_of_key(k.meta.as_bytes()));
        assert_eq!(k.slot, slot_of_key(k.channel.as_bytes()));
    }

    #[test]
    fn channels_name_their_topic() {
        let k = Keys::new("chat.room-7:x");
        assert_eq!(
            topic_of_channel(k.channel.as_bytes()),
            Some("chat.room-7:x")
        );
        assert_eq!(topic_of_channel(k.meta.as_bytes()), None);
        assert_eq!(topic_of_channel(b"other:{a}:n"), None);
    }
}
