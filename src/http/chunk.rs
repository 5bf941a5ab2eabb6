//! HTTP/1.1 chunked framing, for the bodies feedgate writes itself (an
//! SSE stream served off hyper, `server/direct.rs`, and the frames the
//! fast path writes to such streams, `transport/fanout.rs`).

use bytes::{BufMut, Bytes, BytesMut};

/// A response whose body frames are chunks already (size line, data,
/// CRLF): the writer sends them as they are. Set in the response's
/// extensions by a body that frames itself because the fast path writes
/// the same socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prechunked;

/// `data` as one chunk.
pub(crate) fn chunk(data: &[u8]) -> Bytes {
    chunk_of(&[data])
}

/// `parts`, one after the other, as one chunk (empty parts are nothing:
/// a chunk of size 0 would end the body).
pub(crate) fn chunk_of(parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut b = BytesMut::with_capacity(len + 20);
    if len == 0 {
        return b.freeze();
    }
    put_hex(&mut b, len);
    b.put_slice(b"\r\n");
    for p in parts {
        b.put_slice(p);
    }
    b.put_slice(b"\r\n");
    b.freeze()
}

/// `n` in lowercase hex, without leading zeros.
fn put_hex(b: &mut BytesMut, n: usize) {
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        b.put_u8(b"0123456789abcdef"[(n >> (i * 4)) & 0xf]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_its_hex_length_the_data_and_a_crlf() {
        assert_eq!(
            &chunk(&[b'x'; 26])[..],
            b"1a\r\nxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
        );
        assert_eq!(&chunk(b"ab")[..], b"2\r\nab\r\n");
        assert_eq!(&chunk_of(&[b"ab", b"", b"c"])[..], b"3\r\nabc\r\n");
        assert!(chunk(b"").is_empty());
        let big = vec![0u8; 0x1_0000];
        assert!(chunk(&big).starts_with(b"10000\r\n"));
    }
}
