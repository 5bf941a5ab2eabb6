//! The bytes of a segment file: its header, its records, and reading them
//! back — every record checked, and past a damaged stretch, the valid
//! records that follow it found again.
//!
//! A segment is a header (magic, version, the topic's epoch, its first seq,
//! a CRC-32) and then records, each
//! `len u32 | crc32 u32 | seq u64 | time_us u64 | event JSON (len bytes)`,
//! little-endian, the CRC covering `len` and everything after the CRC.

use bytes::Bytes;

use crate::log::{Epoch, Event, Topic};

/// First bytes of every segment.
const MAGIC: &[u8; 8] = b"FGLOGSEG";
const VERSION: u32 = 1;
/// magic, version, reserved, epoch, first seq, crc, pad.
pub(super) const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 8 + 4 + 4;
/// len, crc, seq, time.
pub(super) const RECORD_HEAD: usize = 4 + 4 + 8 + 8;

/// A segment's header for `epoch`, starting at `first_seq`.
pub(super) fn encode_header(epoch: Epoch, first_seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&epoch.0.to_le_bytes());
    h[24..32].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32(&[&h[..32]]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

/// (epoch, first seq) from the start of a segment, or what is wrong with it.
fn decode_header(h: &[u8]) -> Result<(Epoch, u64), &'static str> {
    if h.len() < HEADER_LEN {
        return Err("a segment header cut short");
    }
    if &h[..8] != MAGIC {
        return Err("a segment header without the magic bytes");
    }
    if u32_at(h, 32) != crc32(&[&h[..32]]) {
        return Err("a segment header whose checksum does not match");
    }
    if u32_at(h, 8) != VERSION {
        return Err("a segment header of an unknown version");
    }
    let epoch = Epoch(u64_at(h, 16));
    let first = u64_at(h, 24);
    if epoch == Epoch::NONE || first == 0 {
        return Err("a segment header without an epoch or first seq");
    }
    Ok((epoch, first))
}

/// The record that stores `event`.
pub(super) fn encode(event: &Event) -> Vec<u8> {
    let json: &[u8] = &event.json;
    let mut r = Vec::with_capacity(RECORD_HEAD + json.len());
    r.extend_from_slice(&(json.len() as u32).to_le_bytes());
    r.extend_from_slice(&[0; 4]);
    r.extend_from_slice(&event.seq.to_le_bytes());
    r.extend_from_slice(&event.time_us.to_le_bytes());
    r.extend_from_slice(json);
    let crc = crc32(&[&r[..4], &r[8..]]);
    r[4..8].copy_from_slice(&crc.to_le_bytes());
    r
}

/// What one place in a segment holds.
#[derive(Debug)]
pub(super) enum Item {
    /// A whole record that checks out.
    Record(Event),
    /// Bytes that are not a valid header or record, and why.
    Bad(&'static str),
}

/// A segment file read back: its header's epoch (when the header is
/// valid and names the seq the file name does), and its valid records and
/// bad places by byte offset, in file order.
#[derive(Debug)]
pub(super) struct Scan {
    pub(super) epoch: Option<Epoch>,
    pub(super) items: Vec<(usize, Item)>,
}

/// Reads a segment's bytes. `named` is the first seq its file name says.
///
/// Where a record does not check out (cut short, wrong checksum, not an
/// event), the scan notes the place and looks for the next valid record
/// after it (one whose JSON starts as [`Event::build`] makes it for this
/// topic, and whose checksum holds), so the caller can tell a torn last
/// write (nothing valid after it) from damage in the middle. Seqs are not
/// checked here: that is the caller's, across segments.
pub(super) fn scan(bytes: &[u8], named: u64, topic: &Topic) -> Scan {
    let mut items = Vec::new();
    let epoch = match decode_header(bytes) {
        Ok((epoch, first)) if first == named => Some(epoch),
        Ok(_) => {
            items.push((
                0,
                Item::Bad("a segment header whose first seq is not the file name's"),
            ));
            None
        }
        Err(why) => {
            items.push((0, Item::Bad(why)));
            None
        }
    };
    let prefix = format!(r#"{{"topic":"{topic}","seq":"#);
    let mut at = HEADER_LEN.min(bytes.len());
    while at < bytes.len() {
        match record_at(bytes, at) {
            Ok((event, len)) => {
                items.push((at, Item::Record(event)));
                at += len;
            }
            Err(why) => {
                items.push((at, Item::Bad(why)));
                match resync(bytes, at + 1, prefix.as_bytes()) {
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
    }
    Scan { epoch, items }
}

/// The record at `at` and its length in bytes, or what is wrong with it.
fn record_at(bytes: &[u8], at: usize) -> Result<(Event, usize), &'static str> {
    let rest = &bytes[at..];
    if rest.len() < RECORD_HEAD {
        return Err("a record cut short");
    }
    let len = RECORD_HEAD
        .checked_add(u32_at(rest, 0) as usize)
        .filter(|&len| len <= rest.len())
        .ok_or("a record whose length runs past the end of the file")?;
    let whole = &rest[..len];
    if u32_at(whole, 4) != crc32(&[&whole[..4], &whole[8..]]) {
        return Err("a record whose checksum does not match");
    }
    let (seq, time) = (u64_at(whole, 8), u64_at(whole, 16));
    let json = Bytes::copy_from_slice(&whole[RECORD_HEAD..]);
    match Event::decode(seq, time, json) {
        Ok(event) if seq > 0 => Ok((event, len)),
        _ => Err("a record that is not an event"),
    }
}

/// The offset of the first valid record at or after `from`. Candidates are
/// the places whose JSON starts with `prefix` (`{"topic":"T","seq":`), so
/// this reads each byte about once and checksums only likely records.
fn resync(bytes: &[u8], from: usize, prefix: &[u8]) -> Option<usize> {
    let mut json_at = from.checked_add(RECORD_HEAD)?;
    while json_at < bytes.len() {
        let found = bytes[json_at..]
            .windows(prefix.len())
            .position(|w| w == prefix)?;
        let record = json_at + found - RECORD_HEAD;
        if record_at(bytes, record).is_ok() {
            return Some(record);
        }
        json_at += found + 1;
    }
    None
}

/// The little-endian u32 at `at` (the caller checked the length).
fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// The little-endian u64 at `at` (the caller checked the length).
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// CRC-32 (IEEE 802.3, the zlib one) of `parts` one after the other.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = flate2::Crc::new();
    for p in parts {
        crc.update(p);
    }
    crc.sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> Topic {
        Topic::new("t").unwrap()
    }

    /// A segment of `n` records from seq 1.
    fn segment(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = encode_header(Epoch(7), 1).to_vec();
        let mut offsets = Vec::new();
        for seq in 1..=n {
            offsets.push(bytes.len());
            bytes.extend(encode(&Event::build(&topic(), seq, 5, b"{\"x\":1}")));
        }
        (bytes, offsets)
    }

    fn shape(s: &Scan) -> Vec<String> {
        s.items
            .iter()
            .map(|(at, item)| match item {
                Item::Record(e) => format!("{at}:{}", e.seq),
                Item::Bad(_) => format!("{at}:bad"),
            })
            .collect()
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn records_after_a_damaged_one_are_found_again() {
        let (mut bytes, at) = segment(5);
        let whole = scan(&bytes, 1, &topic());
        assert_eq!(whole.epoch, Some(Epoch(7)));
        assert_eq!(whole.items.len(), 5);
        // A flipped bit in the third record's JSON.
        bytes[at[2] + RECORD_HEAD + 3] ^= 0x04;
        let s = scan(&bytes, 1, &topic());
        let want = [
            format!("{}:1", at[0]),
            format!("{}:2", at[1]),
            format!("{}:bad", at[2]),
            format!("{}:4", at[3]),
            format!("{}:5", at[4]),
        ];
        assert_eq!(shape(&s), want);
        // Seven bytes cut out of it instead: the records after it move,
        // and are found where they now are.
        let (mut bytes, at) = segment(5);
        bytes.drain(at[2] + 10..at[2] + 17);
        let s = scan(&bytes, 1, &topic());
        assert_eq!(
            shape(&s)[2..],
            [
                format!("{}:bad", at[2]),
                format!("{}:4", at[3] - 7),
                format!("{}:5", at[4] - 7),
            ]
        );
    }

    #[test]
    fn a_torn_end_has_nothing_valid_after_it() {
        let (bytes, at) = segment(3);
        for cut in [bytes.len() - 1, at[2] + 3, at[2] + RECORD_HEAD + 2] {
            let s = scan(&bytes[..cut], 1, &topic());
            let last = s.items.last().unwrap();
            assert!(matches!(last, (o, Item::Bad(_)) if *o == at[2]), "{cut}");
            assert_eq!(s.items.len(), 3);
        }
        let mut zeros = bytes.clone();
        zeros.extend([0; 100]);
        let s = scan(&zeros, 1, &topic());
        assert!(matches!(s.items.last().unwrap(), (o, Item::Bad(_)) if *o == bytes.len()));
    }

    #[test]
    fn a_header_is_checked_against_the_file_name() {
        let (mut bytes, _) = segment(2);
        assert_eq!(scan(&bytes, 2, &topic()).epoch, None);
        bytes[17] ^= 0x10;
        let s = scan(&bytes, 1, &topic());
        assert_eq!(s.epoch, None);
        assert_eq!(shape(&s)[0], "0:bad");
        assert_eq!(s.items.len(), 3, "the records are still read");
        assert_eq!(scan(&bytes[..20], 1, &topic()).items.len(), 1);
    }
}
