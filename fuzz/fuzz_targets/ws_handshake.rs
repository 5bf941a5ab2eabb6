//! Request headers feedgate interprets itself: the WebSocket handshake
//! (`websocket_accept_key`), the origin policy (`origin::Origins`) and the
//! publish token check (`auth::Auth::check_publish`).
//!
//! Input: header lines `name: value` separated by `\n`; lines that are not
//! valid header names/values are skipped. Properties: no panic; an accepted
//! handshake answers RFC 6455's key derivation for the key it was given;
//! `refused` is exactly "has an Origin that is not allowed"; the publish
//! token is only accepted when it was sent.
#![no_main]

use feedgate::auth::Auth;
use feedgate::origin::Origins;
use feedgate::websocket_accept_key;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

const TOKEN: &str = "s3cret-token";

fuzz_target!(|data: &[u8]| {
    let mut h = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        h.append(name, value);
    }

    if let Ok(accept) = websocket_accept_key(&h) {
        let key = h
            .get(header::SEC_WEBSOCKET_KEY)
            .expect("accepted without a key");
        assert_eq!(
            accept.as_bytes(),
            derive_accept_key(key.as_bytes()).as_bytes()
        );
        assert_eq!(
            h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()),
            Some(&b"13"[..])
        );
    }

    for allowed in [
        vec![],
        vec!["*".to_owned()],
        vec!["https://app.example.com/".to_owned()],
    ] {
        let o = Origins::new(&allowed);
        // In the clear and over TLS (where the server's own origin is https://).
        for tls in [false, true] {
            let allows = o.allows(&h, tls);
            assert_eq!(
                o.refused(&h, tls).is_some(),
                h.contains_key(header::ORIGIN) && !allows
            );
            let mut res = HeaderMap::new();
            o.preflight(&h, tls, &mut res);
            assert_eq!(
                res.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
                h.contains_key(header::ORIGIN) && allows
            );
        }
    }

    let auth = Auth::new(Some(TOKEN.to_owned()), None).expect("a token-only auth");
    if auth.check_publish(&h).is_ok() {
        let sent = h.get_all(header::AUTHORIZATION).iter().any(|v| {
            v.as_bytes()
                .windows(TOKEN.len())
                .any(|w| w == TOKEN.as_bytes())
        });
        assert!(sent, "publish accepted without the token");
    }
});
