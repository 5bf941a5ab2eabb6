//! Query strings: `Query::parse`, then the cursor and the long-poll timeout
//! every transport derives from it; and the same text as a `serve` duration
//! flag (`params::duration`, e.g. `--longpoll-max 60s`).
//!
//! Properties: no panic; the timeout never exceeds its cap, whatever the
//! cap; a cursor that parses agrees with `after` parsed on its own.
#![no_main]

use std::time::Duration;

use feedgate::params::{Query, cursor_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let q = Query::parse(Some(raw));
    if let Ok(c) = q.cursor() {
        match &q.after {
            Some(a) => assert_eq!(cursor_text(a).unwrap().after, c.after),
            None => assert_eq!(c.after, None),
        }
        if q.epoch.is_some() {
            assert!(c.epoch.is_some());
        }
    }
    let default = Duration::from_secs(30);
    for max in [Duration::ZERO, Duration::from_secs(60), Duration::MAX] {
        if let Ok(t) = q.timeout(default, max) {
            assert!(t <= max, "{t:?} > {max:?} for {raw:?}");
        }
    }
    let _ = feedgate::params::duration(raw);
});
