//! HTTP gzip for poll and long-poll answers (`Accept-Encoding: gzip`).
//!
//! A poll answer is one body written once, so compressing it costs one
//! compressor run per answer and no state between requests. Small bodies
//! are sent as they are: the gzip framing (18 bytes) and the two headers it
//! needs (`content-encoding`, `vary`: 49 bytes) eat what deflate saves on a
//! short JSON body; `--gzip-min-bytes` (default 512) is where it starts to
//! pay on event JSON (docs/benchmarks.md, "HTTP gzip").
//!
//! A body long enough to be compressed carries `Vary: Accept-Encoding`
//! whether or not this client asked for gzip, so that a cache never hands
//! the gzipped answer to a client that did not; a shorter one never
//! varies, so it does not say so.
//!
//! SSE is not compressed: see docs/architecture.md, "Compression", for the
//! measurement behind that.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use hyper::header::{self, HeaderMap, HeaderValue};

/// Whether `h` accepts gzip: `Accept-Encoding` names `gzip` (or `*`) with
/// a non-zero quality.
pub(crate) fn accepts_gzip(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

/// How a body goes out: `body` itself, or gzipped when the client accepts
/// it and the body is at least `min` bytes (`min` 0: never). Sets the
/// headers that say so on `out`.
pub(crate) fn encode(accepts: bool, min: usize, body: Bytes, out: &mut HeaderMap) -> Bytes {
    if min == 0 || body.len() < min {
        return body;
    }
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if !accepts {
        return body;
    }
    let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 3 + 32), Compression::new(5));
    // Writing to a Vec cannot fail.
    let zipped = gz.write_all(&body).and_then(|()| gz.finish());
    match zipped {
        Ok(z) => {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Bytes::from(z)
        }
        Err(_) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        accepts_gzip(&h)
    }

    #[test]
    fn reads_accept_encoding() {
        assert!(accept("gzip, deflate, br, zstd"));
        assert!(accept("br;q=1.0, gzip;q=0.8"));
        assert!(accept("*"));
        assert!(!accept("gzip;q=0"));
        assert!(!accept("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn small_bodies_go_as_they_are() {
        let mut h = HeaderMap::new();
        let small = encode(true, 512, Bytes::from_static(b"{}"), &mut h);
        assert_eq!(&small[..], b"{}");
        assert!(h.is_empty());
        let big = Bytes::from(r#"{"a":"bbbbbbbb"},"#.repeat(64));
        let z = encode(true, 512, big.clone(), &mut h);
        assert!(z.len() < big.len() / 4);
        assert_eq!(h.get(header::CONTENT_ENCODING).unwrap(), "gzip");
        let mut h = HeaderMap::new();
        assert_eq!(encode(false, 512, big.clone(), &mut h), big);
        assert_eq!(h.get(header::VARY).unwrap(), "accept-encoding");
    }
}
