//! Topic names: `params::topic` must accept exactly `[A-Za-z0-9_.:-]{1,128}`.
#![no_main]

use feedgate::params::{MAX_TOPIC_LEN, topic};
use libfuzzer_sys::fuzz_target;

/// The contract, written independently of the implementation.
fn allowed(name: &str) -> bool {
    let n = name.chars().count();
    (1..=MAX_TOPIC_LEN).contains(&n)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    match topic(name) {
        Ok(t) => {
            assert!(allowed(name), "accepted {name:?}");
            assert_eq!(t.as_str(), name);
        }
        Err(_) => assert!(!allowed(name), "refused {name:?}"),
    }
});
