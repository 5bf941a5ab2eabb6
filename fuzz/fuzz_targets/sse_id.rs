//! The compact id of a multiplexed SSE stream (`Last-Event-ID: ~…`): what a
//! reconnecting client sends back, so untrusted.
//!
//! Input: a selector byte; then either an id to decode against a LIST of
//! one to four topics, or positions to encode. Properties: no panic; a
//! decoded id re-encodes to an id that decodes the same; an id decodes
//! only for the LIST (tag) it was made for (issue 20, case 6); encoded
//! positions decode back to themselves.
#![no_main]

use feedgate::fuzz_api::{decode_sse_id, encode_sse_id, sse_list_tag};
use feedgate::log::Epoch;
use libfuzzer_sys::fuzz_target;

const LISTS: [&[&str]; 4] = [&["a"], &["a", "b"], &["b", "a"], &["c", "d", "e", "f"]];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let list = LISTS[usize::from(which % 4)];
    let tag = sse_list_tag(list);
    if which & 0x80 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        let Ok(cursors) = decode_sse_id(text, tag, list.len()) else {
            return;
        };
        assert_eq!(cursors.len(), list.len());
        for other in LISTS {
            let other_tag = sse_list_tag(other);
            if other_tag != tag {
                assert!(decode_sse_id(text, other_tag, other.len()).is_err());
            }
        }
        let common = cursors
            .iter()
            .filter_map(|c| c.epoch)
            .find(|e| *e != Epoch::NONE)
            .unwrap_or(Epoch::NONE);
        let positions: Vec<(Epoch, u64)> = cursors
            .iter()
            .map(|c| (c.epoch.unwrap_or(Epoch::NONE), c.after.unwrap_or(0)))
            .collect();
        if let Some(again) = encode_sse_id(common, tag, &positions) {
            assert_eq!(decode_sse_id(&again, tag, list.len()).ok(), Some(cursors));
        }
    } else {
        // Positions from the bytes: an epoch, then a seq per topic.
        let Some((epoch, seqs)) = rest.split_first_chunk::<8>() else {
            return;
        };
        let common = Epoch(u64::from_be_bytes(*epoch));
        let positions: Vec<(Epoch, u64)> = seqs
            .chunks_exact(8)
            .take(list.len())
            .map(|s| {
                let seq = u64::from_be_bytes(s.try_into().unwrap_or_default());
                (common, seq)
            })
            .collect();
        if positions.len() != list.len() {
            return;
        }
        if let Some(id) = encode_sse_id(common, tag, &positions) {
            let back = decode_sse_id(&id, tag, list.len()).expect("an encoded id decodes");
            for (c, (e, s)) in back.iter().zip(&positions) {
                assert_eq!((c.after, c.epoch), (Some(*s), Some(*e)));
            }
        }
    }
});
