//! The request heads feedgate reads itself on HTTP/1.1 (polls, long polls,
//! SSE: `server/direct.rs`) before hyper ever sees them: untrusted bytes
//! from any client.
//!
//! Properties: no panic; a head it takes is a whole `GET … HTTP/1.1` head
//! and nothing after it, to a poll, long-poll or SSE route (never a
//! publish, a WebSocket or the probe), with no body, no upgrade, at most
//! 100 headers, no larger than the 64 KiB head limit; every header it
//! passes on is in the input.
#![no_main]

use feedgate::fuzz_api::direct_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((target, headers)) = direct_head(data) else {
        return;
    };
    assert!(data.starts_with(b"GET "), "{data:?}");
    assert!(data.ends_with(b"\r\n\r\n") || data.ends_with(b"\n\n"));
    assert!(data.len() <= 64 << 10);
    assert!(headers.len() <= 100);
    let path = target.split('?').next().unwrap_or("");
    let subscribes = ["/poll", "/longpoll", "/sse"].contains(&path)
        || ["/poll", "/longpoll", "/sse"]
            .iter()
            .any(|a| path.starts_with("/topics/") && path.ends_with(a));
    assert!(subscribes, "{target}");
    for (name, value) in &headers {
        assert!(!["transfer-encoding", "upgrade", "expect"].contains(&name.as_str()));
        if name == "content-length" {
            assert_eq!(value, b"0");
        }
        let lower = String::from_utf8_lossy(data).to_ascii_lowercase();
        assert!(lower.contains(name.as_str()), "{name}");
    }
});
