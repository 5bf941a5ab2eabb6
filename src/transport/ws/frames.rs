//! Event frames written straight to a WebSocket's socket: the frame header
//! made per subscriber, the payload shared by every subscriber (the event
//! JSON, its lean form, or its one compressed form), one write per batch.
//!
//! tungstenite would copy every payload into its own write buffer and frame
//! it there, once per subscriber (`buffer_frame` and `format_into_buf` were
//! 2.5 % of the server's CPU with 10 000 WebSocket subscribers:
//! bench/profile.sh, docs/benchmarks.md). Event frames are server frames —
//! unmasked, never fragmented — so they need none of that. Control messages
//! (`ready`, `gap`, `reset`, pings, close) still go through tungstenite; the
//! session writes here only when tungstenite has nothing buffered, so frames
//! never interleave.

use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// One event's frame: its payload, and whether that payload is compressed
/// (permessage-deflate's RSV1 bit).
pub(crate) struct EventFrame {
    pub payload: Bytes,
    pub compressed: bool,
}

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const OP_TEXT: u8 = 0x1;
const MASKED: u8 = 0x80;

/// The header of a final, unmasked text frame of `len` bytes (RFC 6455
/// §5.2): the bytes and how many of them are used.
pub(crate) fn header(len: usize, compressed: bool) -> ([u8; 14], usize) {
    let first = FIN | OP_TEXT | if compressed { RSV1 } else { 0 };
    frame_header(first, len as u64, false)
}

/// A frame header: `first` (FIN, RSV and opcode bits), the length in its
/// shortest form, and with `zero_mask` the mask bit and an all-zero key
/// (how `deflate::Inflating` hands tungstenite a client frame it rebuilt).
pub(crate) fn frame_header(first: u8, len: u64, zero_mask: bool) -> ([u8; 14], usize) {
    let mut h = [0u8; 14];
    h[0] = first;
    let mask = if zero_mask { MASKED } else { 0 };
    let used = match len {
        0..=125 => {
            h[1] = mask | len as u8;
            2
        }
        126..=0xffff => {
            h[1] = mask | 126;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            h[1] = mask | 127;
            h[2..10].copy_from_slice(&len.to_be_bytes());
            10
        }
    };
    // The key's four bytes are already zero.
    (h, if zero_mask { used + 4 } else { used })
}

/// Writes `frames` to `io` in order and flushes it: headers and payloads
/// copied into one buffer, written with one plain write. (A vectored write
/// of header and shared payload copies nothing in user space, but the
/// kernel's `writev` path cost more than the copy saves: `vfs_writev` and
/// `fdget_pos` 6.3 % of the server's CPU against `sendto`'s 4.9 %.)
///
/// # Errors
/// The socket's error.
pub(crate) async fn write<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: &[EventFrame],
) -> io::Result<()> {
    let len = frames.iter().map(|f| f.payload.len() + 10).sum();
    let mut buf = BytesMut::with_capacity(len);
    for f in frames {
        let (h, used) = header(f.payload.len(), f.compressed);
        buf.put_slice(&h[..used]);
        buf.put_slice(&f.payload);
    }
    io.write_all(&buf).await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    /// tungstenite reads back what this writes: the same opcode, RSV1,
    /// length and payload, for each length encoding.
    #[test]
    fn headers_parse_as_tungstenite_frames() {
        for (len, compressed) in [
            (0, false),
            (125, true),
            (126, false),
            (65535, true),
            (65536, false),
        ] {
            let (h, used) = header(len, compressed);
            let mut cursor = std::io::Cursor::new(&h[..used]);
            let (parsed, payload_len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!(payload_len, len as u64, "{len}");
            assert!(parsed.is_final);
            assert_eq!(parsed.rsv1, compressed);
            assert!(parsed.mask.is_none());
            assert_eq!(parsed.opcode, OpCode::Data(Data::Text));
            // The same length as a client frame with a zero key.
            let (h, used) = frame_header(0x81, len as u64, true);
            let mut cursor = std::io::Cursor::new(&h[..used]);
            let (parsed, payload_len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!((payload_len, parsed.mask), (len as u64, Some([0; 4])));
        }
    }

    #[tokio::test]
    async fn writes_each_frame_whole_and_in_order() {
        let frames = [
            EventFrame {
                payload: Bytes::from_static(b"{\"a\":1}"),
                compressed: false,
            },
            EventFrame {
                payload: Bytes::from(vec![b'y'; 300]),
                compressed: true,
            },
        ];
        for n in [1, 2] {
            let mut out = Vec::new();
            write(&mut out, &frames[..n]).await.unwrap();
            let mut expected = vec![0x81, 7];
            expected.extend_from_slice(b"{\"a\":1}");
            if n == 2 {
                expected.extend_from_slice(&[0xc1, 126, 1, 44]);
                expected.extend_from_slice(&[b'y'; 300]);
            }
            assert_eq!(out, expected, "{n} frames");
        }
    }
}
