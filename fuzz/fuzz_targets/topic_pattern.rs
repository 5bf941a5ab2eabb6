//! Topic patterns in subscriber JWTs (`auth::topic_matches`, `*` = any run
//! of characters), checked against a straightforward dynamic-programming
//! glob matcher.
//!
//! Input: pattern and topic separated by the first NUL byte.
#![no_main]

use feedgate::auth::topic_matches;
use libfuzzer_sys::fuzz_target;

/// Reference glob: `*` matches any (possibly empty) run of bytes.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // m[j]: pattern[..i] matches text[..j], row by row over i.
    let mut m = vec![false; text.len() + 1];
    m[0] = true;
    for &p in pattern {
        let mut next = vec![false; text.len() + 1];
        if p == b'*' {
            let mut any = false;
            for j in 0..=text.len() {
                any |= m[j];
                next[j] = any;
            }
        } else {
            for j in 1..=text.len() {
                next[j] = m[j - 1] && text[j - 1] == p;
            }
        }
        m = next;
    }
    m[text.len()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((pattern, topic)) = text.split_once('\0') else {
        return;
    };
    // Topic names hold no `*` (the topic check refuses it).
    if topic.contains('*') || pattern.len() > 256 || topic.len() > 256 {
        return;
    }
    assert_eq!(
        topic_matches(pattern, topic),
        glob(pattern.as_bytes(), topic.as_bytes()),
        "pattern {pattern:?} topic {topic:?}"
    );
});
