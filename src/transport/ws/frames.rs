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
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// One event's frame: its payload, and whether that payload is compressed
/// (permessage-deflate's RSV1 bit).
pub(crate) struct EventFrame {
    pub payload: Bytes,
    pub compressed: bool,
}

/// The header of a final, unmasked text frame (RFC 6455 §5.2), with RSV1
/// when the payload is compressed.
fn header(compressed: bool) -> FrameHeader {
    FrameHeader {
        is_final: true,
        rsv1: compressed,
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    }
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
    let len = frames.iter().fold(0usize, |n, f| {
        n.saturating_add(f.payload.len()).saturating_add(10)
    });
    let mut buf = BytesMut::with_capacity(len);
    for f in frames {
        header(f.compressed)
            .format(f.payload.len() as u64, &mut (&mut buf).writer())
            .map_err(io::Error::other)?;
        buf.put_slice(&f.payload);
    }
    io.write_all(&buf).await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

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
