//! HTTP gzip for poll and long-poll answers (`Accept-Encoding: gzip`).
//!
//! A poll answer is one body written once, so compressing it costs one
//! compressor run per answer and no state between requests. Small bodies
//! are sent as they are: the gzip framing (18 bytes) and the two headers it
//! needs (`content-encoding`, `vary`: 47 bytes) eat what deflate saves on a
//! short JSON body; `--gzip-min-bytes` (default 256) is where it starts to
//! pay on event JSON (docs/benchmarks.md, "Compression").
//!
//! A body long enough to be compressed carries `Vary: Accept-Encoding`
//! whether or not this client asked for gzip, so that a cache never hands
//! the gzipped answer to a client that did not; a shorter one never
//! varies, so it does not say so.
//!
//! SSE is not compressed: see docs/architecture.md, "Compression", for the
//! measurement behind that.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress, Status};
use hyper::header::{self, HeaderMap, HeaderValue};

thread_local! {
    /// The gzip answers' compressor: one run per poll answer, not per
    /// event, so the default level.
    static GZIP: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(6), false));
}

/// Whether `h` accepts gzip (RFC 9110 §12.5.3): an explicit `gzip` (or
/// `x-gzip`) entry decides by its quality, whatever `*` says; without one,
/// `*` decides; a quality of 0 refuses. Parameter names are
/// case-insensitive (`Q=0`); an entry whose quality is not a valid
/// `qvalue` is ignored, and so is a header that is not text.
pub(crate) fn accepts_gzip(h: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    let entries = h
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for entry in entries {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let Some(q) = weight(parts) else { continue };
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding == "*" {
            &mut any
        } else {
            continue;
        };
        // Named twice: a refusal anywhere holds.
        *slot = Some(slot.map_or(q, |was: u16| was.min(q)));
    }
    gzip.or(any).is_some_and(|q| q > 0)
}

/// An entry's quality in thousandths (1000 without `q`); `None` when its
/// `q` is not a `qvalue`.
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut q = 1000;
    for p in params {
        let Some((name, value)) = p.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            q = qvalue(value.trim())?;
        }
    }
    Some(q)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in
/// thousandths.
fn qvalue(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
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
    out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    gzip(&body)
}

/// `body` as a gzip member (RFC 1952), compressed by the worker thread's
/// DEFLATE compressor (a fresh compressor per answer would allocate and
/// clear hundreds of KiB for a body of a few hundred bytes).
fn gzip(body: &[u8]) -> Bytes {
    let deflated = compress_final(body);
    let mut crc = flate2::Crc::new();
    crc.update(body);
    let mut z = BytesMut::with_capacity(deflated.len() + 18);
    // Magic, DEFLATE, no flags, no mtime, no extra flags, OS unknown.
    z.put_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    z.put_slice(&deflated);
    z.put_u32_le(crc.sum());
    z.put_u32_le(body.len() as u32);
    z.freeze()
}

/// `data` as one complete raw DEFLATE stream (final block), with the
/// per-thread gzip compressor: what a gzip body holds.
fn compress_final(data: &[u8]) -> Vec<u8> {
    GZIP.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = c.total_in();
            let status = c.compress_vec(input, &mut out, FlushCompress::Finish);
            input = &input[(c.total_in() - before) as usize..];
            if matches!(status, Ok(Status::StreamEnd) | Err(_)) {
                break;
            }
        }
        out
    })
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

    /// Issue 20, case 8: an explicit `gzip;q=0` refuses gzip whatever `*`
    /// says, and `q` is case-insensitive.
    #[test]
    fn an_explicit_refusal_wins_over_the_wildcard() {
        for refused in [
            "gzip;q=0, *",
            "*, gzip;q=0",
            "gzip;Q=0",
            "gzip ; q = 0.000",
            "*;q=0",
            "gzip;q=0.5, gzip;q=0",
            "gzip;q=2",
            "gzip;q=0.0001",
            "gzip;q=abc",
            "gzip;q=",
            "identity",
        ] {
            assert!(!accept(refused), "{refused}");
        }
        for accepted in [
            "GZIP",
            "x-gzip",
            "*;q=0, gzip",
            "gzip;q=0.001",
            "gzip;q=1.000",
            "br;q=0, *;q=0.1",
            "gzip;level=9",
        ] {
            assert!(accept(accepted), "{accepted}");
        }
    }

    #[test]
    fn small_bodies_go_as_they_are() {
        let mut h = HeaderMap::new();
        let small = encode(true, 256, Bytes::from_static(b"{}"), &mut h);
        assert_eq!(&small[..], b"{}");
        assert!(h.is_empty());
        let big = Bytes::from(r#"{"a":"bbbbbbbb"},"#.repeat(64));
        let z = encode(true, 256, big.clone(), &mut h);
        assert!(z.len() < big.len() / 4);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&z[..]), &mut plain).unwrap();
        assert_eq!(plain, big);
        assert_eq!(h.get(header::CONTENT_ENCODING).unwrap(), "gzip");
        let mut h = HeaderMap::new();
        assert_eq!(encode(false, 256, big.clone(), &mut h), big);
        assert_eq!(h.get(header::VARY).unwrap(), "accept-encoding");
    }
}
