//! The published payload: the bench's own counter and send time, padded to
//! the asked size.
//!
//! `{"n":17,"t":1764072000123456,"pad":"xxxx…"}` — `n` counts from 0, `t` is
//! the send time in µs since the Unix epoch. The receiver finds them in
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
    fn finds_the_stamp_inside_an_event() {
        let p = build(7, 42, 60);
        let mut ev = br#"{"topic":"b","seq":8,"time":99,"data":"#.to_vec();
        ev.extend_from_slice(&p);
        ev.push(b'}');
        assert_eq!(parse(&ev), Some(Stamp { n: 7, t_us: 42 }));
        assert_eq!(parse(b"{}"), None);
    }
}
