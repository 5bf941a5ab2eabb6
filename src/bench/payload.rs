//! The published payload: the bench's own counter and send time, padded to
//! the asked size, or inside a realistic document ([`Kind`]).
//!
//! `{"n":17,"t":1764072000123456,"pad":"xxxx…"}` — `n` counts from 0, `t` is
//! the send time in µs since the Unix epoch. Every kind starts with the same
//! two members. The receiver finds them in
//! whatever the gateway wraps around the payload (feedgate's event object,
//! Nchan's raw message), so loss, duplication, reordering and latency are
//! measured from the payload alone, the same way for every gateway.

/// The marker published after the run: subscribers that see it stop at a
/// response boundary, so that client and server have counted the same
/// bytes when the bench compares them.
pub const END: &[u8] = br#"{"end":true}"#;

/// Whether `bytes` (a message, or an event wrapping one) is the end marker.
pub fn is_end(bytes: &[u8]) -> bool {
    bytes.windows(END.len()).any(|w| w == END)
}

/// What a received payload says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The publish counter, from 0.
    pub n: u64,
    /// Send time, µs since the Unix epoch.
    pub t_us: u64,
}

/// What the published documents look like (`--payload-kind`): compression
/// and the lean encoding pay very differently on each.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `"pad":"xxxx…"` up to `--payload` bytes (compresses to nothing:
    /// the best case for deflate, not a realistic one).
    #[default]
    Padding,
    /// A price tick like the demo's (about 130 B; `--payload` is ignored).
    Ticker,
    /// A chat message: user, room, a sentence of varying words (about
    /// 150–250 B; `--payload` is ignored).
    Chat,
    /// A JSON document of about `--payload` bytes (1 KB is typical) made
    /// of records with repeated keys and varying values.
    Doc,
}

impl Kind {
    /// Its name as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Padding => "padding",
            Kind::Ticker => "ticker",
            Kind::Chat => "chat",
            Kind::Doc => "doc",
        }
    }
}

/// The payload of kind `kind` for publish `n` sent at `t_us`; `size`
/// applies to padding and documents.
pub fn build_kind(kind: Kind, n: u64, t_us: u64, size: usize) -> Vec<u8> {
    // A cheap deterministic mix, so runs are repeatable.
    let r = |k: u64| {
        let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ k.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 31;
        x.wrapping_mul(0x94d0_49bb_1331_11eb) >> 11
    };
    match kind {
        Kind::Padding => build(n, t_us, size),
        Kind::Ticker => {
            let mid = 100.0 + (r(1) % 2000) as f64 / 100.0;
            let spread = 0.01 + (r(2) % 4) as f64 / 100.0;
            format!(
                r#"{{"n":{n},"t":{t_us},"symbol":"FGT","bid":{:.2},"ask":{:.2},"last":{mid:.2},"size":{},"volume":{}}}"#,
                mid - spread / 2.0,
                mid + spread / 2.0,
                1 + r(3) % 500,
                1_000_000 + n * 250
            )
            .into_bytes()
        }
        Kind::Chat => {
            const WORDS: &[&str] = &[
                "the",
                "deploy",
                "is",
                "green",
                "again",
                "can",
                "you",
                "check",
                "latency",
                "on",
                "staging",
                "before",
                "lunch",
                "thanks",
                "looks",
                "good",
                "to",
                "me",
                "ship",
                "it",
                "why",
                "did",
                "the",
                "dashboard",
                "spike",
                "at",
                "noon",
                "I",
                "think",
                "redis",
            ];
            const USERS: &[&str] = &["ana", "bo", "chen", "dara", "eli", "femi", "gus", "hana"];
            let len = 6 + r(4) % 14;
            let text: Vec<&str> = (0..len)
                .map(|i| WORDS[(r(10 + i) % WORDS.len() as u64) as usize])
                .collect();
            format!(
                r#"{{"n":{n},"t":{t_us},"type":"message","room":"general","user":{{"id":{},"name":"{}"}},"text":"{}","reactions":[]}}"#,
                100 + r(5) % 8,
                USERS[(r(5) % 8) as usize],
                text.join(" ")
            )
            .into_bytes()
        }
        Kind::Doc => {
            let mut out = format!(r#"{{"n":{n},"t":{t_us},"items":["#);
            let mut i = 0u64;
            while out.len() + 120 < size.max(200) {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!(
                    r#"{{"id":{},"sku":"SKU-{:05}","name":"item {}","price":{}.{:02},"qty":{},"active":{}}}"#,
                    n * 100 + i,
                    r(20 + i) % 100_000,
                    r(40 + i) % 1000,
                    r(60 + i) % 500,
                    r(80 + i) % 100,
                    r(100 + i) % 50,
                    r(120 + i) % 2 == 0
                ));
                i += 1;
            }
            out.push_str("]}");
            out.into_bytes()
        }
    }
}

/// The payload for publish number `n`, sent at `t_us`, `size` bytes long
/// (longer only when `size` cannot hold the two numbers).
pub fn build(n: u64, t_us: u64, size: usize) -> Vec<u8> {
    let head = format!(r#"{{"n":{n},"t":{t_us},"pad":""#);
    let pad = size.saturating_sub(head.len() + 2);
    let mut out = Vec::with_capacity(head.len() + pad + 2);
    out.extend_from_slice(head.as_bytes());
    out.resize(out.len() + pad, b'x');
    out.extend_from_slice(b"\"}");
    out
}

/// Finds the stamp in `bytes`: the first `{"n":` and the `"t":` after it.
pub fn parse(bytes: &[u8]) -> Option<Stamp> {
    const N: &[u8] = br#"{"n":"#;
    const T: &[u8] = br#","t":"#;
    let at = bytes.windows(N.len()).position(|w| w == N)? + N.len();
    let (n, rest) = digits(&bytes[at..])?;
    let rest = rest.strip_prefix(T)?;
    let (t_us, _) = digits(rest)?;
    Some(Stamp { n, t_us })
}

fn digits(b: &[u8]) -> Option<(u64, &[u8])> {
    let len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 || len > 19 {
        return None;
    }
    let v = b[..len]
        .iter()
        .fold(0u64, |acc, c| acc * 10 + u64::from(c - b'0'));
    Some((v, &b[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_asked_size_and_parses_back() {
        for size in [48, 100, 1000] {
            let p = build(12345, 1_764_072_000_123_456, size);
            assert_eq!(p.len(), size);
            let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
            assert_eq!(v["n"], 12345);
            assert_eq!(
                parse(&p),
                Some(Stamp {
                    n: 12345,
                    t_us: 1_764_072_000_123_456
                })
            );
        }
    }

    #[test]
    fn every_kind_is_json_with_the_stamp() {
        for kind in [Kind::Padding, Kind::Ticker, Kind::Chat, Kind::Doc] {
            let p = build_kind(kind, 42, 1_764_072_000_123_456, 1000);
            let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
            assert_eq!(v["n"], 42, "{kind:?}");
            assert_eq!(
                parse(&p),
                Some(Stamp {
                    n: 42,
                    t_us: 1_764_072_000_123_456
                })
            );
            assert!(!p.contains(&b'\n'));
        }
        let doc = build_kind(Kind::Doc, 1, 2, 1000);
        assert!((850..=1000).contains(&doc.len()), "{}", doc.len());
    }

    #[test]
    fn finds_the_stamp_inside_an_event() {
        let p = build(7, 42, 60);
        let mut ev = br#"{"topic":"b","seq":8,"time":99,"data":"#.to_vec();
        ev.extend_from_slice(&p);
        ev.push(b'}');
        assert_eq!(parse(&ev), Some(Stamp { n: 7, t_us: 42 }));
        assert_eq!(parse(b"{}"), None);
    }
}
