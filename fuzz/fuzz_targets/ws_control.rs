//! Control messages: what the Rust client parses from the server (events,
//! `gap` / `reset` signals on WebSocket and SSE) and what `--demo` accepts on
//! `POST /demo/settings` and `/demo/faults`.
//!
//! Input: a selector byte, then JSON. Properties: no panic; accepted demo
//! settings are ones the demo publisher can run at (a representable tick
//! interval); a parsed gap resumes after what it missed.
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use feedgate::client::{Delivery, control, parse_event};
use feedgate::demo::{DemoState, Faults, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, json)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            let _ = parse_event(Bytes::copy_from_slice(json));
        }
        1 | 2 | 3 => {
            let kind = ["gap", "reset", "ready"][(which % 5 - 1) as usize];
            match control(kind, json) {
                Ok(Some(Delivery::Gap { .. })) => assert_eq!(kind, "gap"),
                Ok(Some(Delivery::Reset { .. })) => assert_eq!(kind, "reset"),
                Ok(Some(Delivery::Event(_))) => panic!("a signal decoded as an event"),
                Ok(None) => assert_eq!(kind, "ready"),
                Err(_) => {}
            }
        }
        _ => {
            if let Ok(f) = serde_json::from_slice::<Faults>(json) {
                let again: Faults = serde_json::to_vec(&f)
                    .ok()
                    .and_then(|v| serde_json::from_slice(&v).ok())
                    .expect("faults round-trip");
                assert_eq!(again, f);
            }
            if let Ok(s) = serde_json::from_slice::<Settings>(json) {
                let demo = DemoState::new(5.0);
                if demo.set_settings(s).is_ok() {
                    // The publisher ticks every 1/rate seconds.
                    assert!(
                        Duration::try_from_secs_f64(1.0 / s.rate).is_ok(),
                        "accepted rate {} has no tick interval",
                        s.rate
                    );
                    assert_eq!(demo.settings(), s);
                }
            }
        }
    }
});
