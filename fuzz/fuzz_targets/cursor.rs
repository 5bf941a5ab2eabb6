//! Cursors as text: `after=`, `Last-Event-ID` / SSE ids (`N` or `EPOCH:N`),
//! poll `If-None-Match` ETags and bare epochs.
//!
//! Properties: no panic; whatever parses formats back to text that parses
//! to the same cursor; an ETag cursor always carries an epoch.
#![no_main]

use feedgate::log::Epoch;
use feedgate::params::{cursor_text, etag_cursor, format_cursor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = cursor_text(text) {
        let after = c.after.expect("a parsed cursor has a seq");
        let again = match c.epoch {
            Some(e) => format_cursor(e, after),
            None => after.to_string(),
        };
        assert_eq!(cursor_text(&again).ok(), Some(c), "{text:?} -> {again:?}");
    }
    if let Some(c) = etag_cursor(text) {
        let e = c.epoch.expect("an ETag cursor names its epoch");
        let again = format!("\"{}\"", format_cursor(e, c.after.unwrap()));
        assert_eq!(etag_cursor(&again), Some(c));
    }
    if let Ok(e) = text.parse::<Epoch>() {
        assert_eq!(e.to_string().parse::<Epoch>(), Ok(e));
    }
});
