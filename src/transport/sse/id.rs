//! The compact id of a multiplexed SSE stream: every topic's position in a
//! few bytes, so that a stream over many topics stays about as light per
//! event as a stream over one.
//!
//! An `EventSource` remembers only the last `id:` it saw, and reconnects
//! with the same URL; so each event's id must resume *every* topic. Written
//! as a LIST (`a@EPOCH:17,b@EPOCH:3,…`) that costs the topics' names and
//! epochs on every event. But the URL already names the topics, in an order
//! the browser keeps, and the topics of one log share an epoch: so the id
//! only needs the epoch once and one number per topic, by position:
//!
//! ```text
//! id: ~<base64url( epoch: 8 bytes big-endian,
//!                  list tag: 4 bytes, FNV-1a of the URL's topic names in order,
//!                  then per URL topic in order:
//!                  varint(seq × 2 + 1 if the topic has no epoch yet) )>
//! ```
//!
//! The positions mean something only for the LIST they were made for: the
//! tag ties them to it, so an id sent back with another LIST (other topics,
//! or the same in another order) is refused with `400 invalid_cursor`
//! instead of resuming one topic from another's seq.
//!
//! A topic with no epoch yet (never published) is at seq 0 and continues
//! into its first epoch (docs/protocol.md). When the topics' epochs differ
//! (several incarnations, or a backend that gives each topic its own), the
//! stream writes the LIST form instead; the server reads either.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;
use crate::log::{Cursor, Epoch};

/// A compact id starts with this character (never the first of a LIST:
/// topic names cannot hold it).
pub(crate) const MARK: char = '~';

/// The tag of a LIST: FNV-1a (32 bits) over its topic names, in order,
/// each followed by `,`. Stable across processes and versions: it is part
/// of ids that outlive a connection.
pub(crate) fn list_tag<'a>(topics: impl Iterator<Item = &'a str>) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for t in topics {
        for b in t.bytes().chain([b',']) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The compact id of `positions` (per URL topic: its epoch and seq) on the
/// LIST tagged `tag`, when they fit one: every epoch `common` or
/// [`Epoch::NONE`].
pub(crate) fn encode(
    common: Epoch,
    tag: u32,
    positions: impl Iterator<Item = (Epoch, u64)>,
) -> Option<String> {
    let mut bytes = common.0.to_be_bytes().to_vec();
    bytes.extend_from_slice(&tag.to_be_bytes());
    for (epoch, seq) in positions {
        let none = if epoch == Epoch::NONE && seq == 0 {
            1
        } else if epoch == common {
            0
        } else {
            return None;
        };
        let v = seq.checked_mul(2)? + none;
        varint(&mut bytes, v);
    }
    let mut out = String::with_capacity(1 + bytes.len().div_ceil(3) * 4);
    out.push(MARK);
    URL_SAFE_NO_PAD.encode_string(&bytes, &mut out);
    Some(out)
}

/// The cursors a compact id holds, one per topic of the LIST tagged `tag`
/// (`k` of them).
///
/// # Errors
/// [`ApiError::InvalidCursor`] when it is not a compact id of that LIST.
pub(crate) fn decode(text: &str, tag: u32, k: usize) -> Result<Vec<Cursor>, ApiError> {
    let bad = |why: &str| ApiError::InvalidCursor(format!("Last-Event-ID {text:?}: {why}"));
    let body = text
        .strip_prefix(MARK)
        .ok_or_else(|| bad("not a compact id"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| bad("not base64url"))?;
    let (head, rest) = bytes.split_at_checked(12).ok_or_else(|| bad("too short"))?;
    let (epoch, their_tag) = head.split_at(8);
    let common = Epoch(u64::from_be_bytes(
        epoch.try_into().map_err(|_| bad("too short"))?,
    ));
    let their_tag = u32::from_be_bytes(their_tag.try_into().map_err(|_| bad("too short"))?);
    if their_tag != tag {
        return Err(bad(
            "it was made for another topics= LIST (a compact id resumes only the LIST it came from, in the same order)",
        ));
    }
    let mut rest = rest;
    let mut out = Vec::with_capacity(k);
    while !rest.is_empty() {
        if out.len() == k {
            return Err(bad(&format!("more positions than the {k} topics")));
        }
        let (v, used) = unvarint(rest).ok_or_else(|| bad("a truncated number"))?;
        rest = &rest[used..];
        let seq = v / 2;
        let epoch = if v % 2 == 1 { Epoch::NONE } else { common };
        out.push(Cursor::at(seq, epoch));
    }
    if out.len() != k {
        return Err(bad(&format!("{} positions for {k} topics", out.len())));
    }
    Ok(out)
}

/// LEB128: 7 bits a byte, low first, high bit set on all but the last.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The LEB128 number at the start of `bytes` and how many bytes it took;
/// `None` when truncated or wider than 64 bits.
fn unvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        let bits = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        // The tenth byte may carry only the top bit.
        if shift == 63 && bits > 1 {
            return None;
        }
        v |= bits << shift;
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_positions() {
        let e = Epoch(0x9f2c_4e01_a7b3_d5e8);
        let positions = [(e, 17), (Epoch::NONE, 0), (e, 0), (e, 300_000)];
        let id = encode(e, 42, positions.iter().copied()).unwrap();
        assert!(id.starts_with('~'), "{id}");
        let back = decode(&id, 42, 4).unwrap();
        let want: Vec<Cursor> = positions.iter().map(|&(e, s)| Cursor::at(s, e)).collect();
        assert_eq!(back, want);
        // 8 bytes of epoch, 4 of tag, then 1–3 bytes a topic: 18 bytes,
        // 24 base64 digits.
        assert_eq!(id.len(), 1 + 24);
    }

    #[test]
    fn other_epochs_do_not_fit() {
        let e = Epoch(1);
        assert!(encode(e, 0, [(e, 1), (Epoch(2), 1)].into_iter()).is_none());
        assert!(encode(e, 0, [(Epoch::NONE, 3)].into_iter()).is_none());
    }

    #[test]
    fn malformed_ids_are_refused() {
        let id = encode(Epoch(7), 9, [(Epoch(7), 5)].into_iter()).unwrap();
        assert!(decode(&id, 9, 2).is_err(), "wrong topic count");
        assert!(decode(&id, 9, 0).is_err(), "wrong topic count");
        for bad in ["~", "~!!", "a@1", "~AAAA", "~AAAAAAAAAAAAAAAA"] {
            assert!(decode(bad, 0, 1).is_err(), "{bad}");
        }
        // Ten bytes of varint that overflow 64 bits.
        let mut over = vec![0u8; 12];
        over.extend_from_slice(&[0xff; 9]);
        over.push(0x02);
        let text = format!("~{}", URL_SAFE_NO_PAD.encode(&over));
        assert!(decode(&text, 0, 1).is_err());
    }

    /// The example in docs/protocol.md ("Multiplexed subscriptions", SSE).
    #[test]
    fn the_documented_example() {
        let names = [
            "a", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9",
        ];
        let e = Epoch(0xde12_7112_fd6a_6175);
        let positions = (0..names.len()).map(|i| match i {
            0 => (e, 1),
            _ => (Epoch::NONE, 0),
        });
        let id = encode(e, list_tag(names.into_iter()), positions).unwrap();
        assert_eq!(id, "~3hJxEv1qYXXydTDZAgEBAQEBAQEBAQE");
    }

    #[test]
    fn an_id_is_refused_for_another_list() {
        let ab = list_tag(["a", "b"].into_iter());
        let ba = list_tag(["b", "a"].into_iter());
        let cd = list_tag(["c", "d"].into_iter());
        // Names are separated: `a,bc` is not `ab,c`.
        assert_ne!(
            list_tag(["a", "bc"].into_iter()),
            list_tag(["ab", "c"].into_iter())
        );
        assert!(ab != ba && ab != cd);
        let e = Epoch(3);
        let id = encode(e, ab, [(e, 30), (e, 100)].into_iter()).unwrap();
        assert_eq!(decode(&id, ab, 2).unwrap()[1], Cursor::at(100, e));
        for other in [ba, cd] {
            let err = decode(&id, other, 2).unwrap_err();
            assert!(err.to_string().contains("another topics= LIST"), "{err}");
        }
    }
}
