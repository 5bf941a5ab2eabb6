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
//! id: ~<base64url( epoch: 8 bytes big-endian, then per URL topic in order:
//!                  varint(seq × 2 + 1 if the topic has no epoch yet) )>
//! ```
//!
//! A topic with no epoch yet (never published) is at seq 0 and continues
//! into its first epoch (docs/protocol.md). When the topics' epochs differ
//! (several incarnations, or a backend that gives each topic its own), the
//! stream writes the LIST form instead; the server reads either.

use crate::error::ApiError;
use crate::log::{Cursor, Epoch};

/// A compact id starts with this character (never the first of a LIST:
/// topic names cannot hold it).
pub(crate) const MARK: char = '~';

/// The compact id of `positions` (per URL topic: its epoch and seq) when
/// they fit one: every epoch `common` or [`Epoch::NONE`].
pub(crate) fn encode(
    common: Epoch,
    positions: impl Iterator<Item = (Epoch, u64)>,
) -> Option<String> {
    let mut bytes = common.0.to_be_bytes().to_vec();
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
    let mut out = String::with_capacity(1 + bytes.len() * 4 / 3 + 2);
    out.push(MARK);
    base64url(&bytes, &mut out);
    Some(out)
}

/// The cursors a compact id holds, one per URL topic (`k` of them).
///
/// # Errors
/// [`ApiError::InvalidCursor`] when it is not a compact id of `k` topics.
pub(crate) fn decode(text: &str, k: usize) -> Result<Vec<Cursor>, ApiError> {
    let bad = |why: &str| ApiError::InvalidCursor(format!("Last-Event-ID {text:?}: {why}"));
    let body = text
        .strip_prefix(MARK)
        .ok_or_else(|| bad("not a compact id"))?;
    let bytes = unbase64url(body).ok_or_else(|| bad("not base64url"))?;
    let (head, mut rest) = bytes.split_at_checked(8).ok_or_else(|| bad("too short"))?;
    let common = Epoch(u64::from_be_bytes(
        head.try_into().map_err(|_| bad("too short"))?,
    ));
    let mut out = Vec::with_capacity(k);
    while !rest.is_empty() {
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

fn unvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 §5 base64url, without padding.
fn base64url(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
}

fn unbase64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_positions() {
        let e = Epoch(0x9f2c_4e01_a7b3_d5e8);
        let positions = [(e, 17), (Epoch::NONE, 0), (e, 0), (e, 300_000)];
        let id = encode(e, positions.iter().copied()).unwrap();
        assert!(id.starts_with('~'), "{id}");
        let back = decode(&id, 4).unwrap();
        let want: Vec<Cursor> = positions.iter().map(|&(e, s)| Cursor::at(s, e)).collect();
        assert_eq!(back, want);
        // 8 bytes of epoch, then 1–3 bytes a topic.
        assert_eq!(id.len(), 1 + (8 + 1 + 1 + 1 + 3usize).div_ceil(3) * 4 - 1);
    }

    #[test]
    fn other_epochs_do_not_fit() {
        let e = Epoch(1);
        assert!(encode(e, [(e, 1), (Epoch(2), 1)].into_iter()).is_none());
        assert!(encode(e, [(Epoch::NONE, 3)].into_iter()).is_none());
    }

    #[test]
    fn malformed_ids_are_refused() {
        let id = encode(Epoch(7), [(Epoch(7), 5)].into_iter()).unwrap();
        assert!(decode(&id, 2).is_err(), "wrong topic count");
        for bad in ["~", "~!!", "a@1", "~AAAA"] {
            assert!(decode(bad, 1).is_err(), "{bad}");
        }
    }
}
