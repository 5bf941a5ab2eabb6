//! Publish bodies: `validate_json` (the check before anything is appended)
//! and the event JSON built around its output.
//!
//! Properties: it accepts exactly the UTF-8 texts that are one JSON value;
//! what it returns is UTF-8, has no line break (SSE carries it on one
//! `data:` line), is still one JSON value — the same value, where serde_json
//! can represent it — and makes an event JSON with that value as `data`.
//!
//! "One JSON value" is checked with `IgnoredAny`, which follows the JSON
//! grammar without building numbers: `1e400` is valid JSON (RFC 8259 leaves
//! number range to implementations), and feedgate passes it on verbatim,
//! while `serde_json::Value` refuses it as out of range.
#![no_main]

use feedgate::log::{Event, Topic};
use feedgate::validate_json;
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde_json::Value;

fn one_value(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|t| serde_json::from_str::<IgnoredAny>(t).is_ok())
}

fuzz_target!(|data: &[u8]| {
    let Ok(out) = validate_json(data) else {
        assert!(!one_value(data), "refused one JSON value: {data:?}");
        return;
    };
    assert!(one_value(data), "accepted something else: {data:?}");
    assert!(one_value(&out), "output is not one JSON value: {out:?}");
    assert!(!out.contains(&b'\n') && !out.contains(&b'\r'), "{out:?}");
    let before = serde_json::from_slice::<Value>(data).ok();
    let after = serde_json::from_slice::<Value>(&out).ok();
    assert_eq!(before, after);
    let topic = Topic::new("fuzz").expect("a valid topic");
    let event = Event::build(&topic, 1, 2, &out);
    assert!(one_value(&event.json), "event JSON: {:?}", event.as_str());
    if let Some(after) = after {
        let parsed: Value = serde_json::from_slice(&event.json).expect("event parses");
        assert_eq!(parsed["data"], after);
    }
});
