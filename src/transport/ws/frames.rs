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
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::deflate::{self, Params};
use crate::log::{Event, Form, FormCache, Topic};
use crate::transport::encoding::{Encoding, event_bytes};

/// One event's frame: its payload, and whether that payload is compressed
/// (permessage-deflate's RSV1 bit).
pub(crate) struct EventFrame {
    pub payload: Bytes,
    pub compressed: bool,
}

/// The WebSocket frame for an event: a text frame of its bytes, or with
/// permessage-deflate the event's one compressed payload (made by the
/// first subscriber that needs it, shared by all the others). Either way
/// the payload is shared; only the frame header is the subscriber's.
pub(crate) fn event(
    e: &Event,
    encoding: Encoding,
    topic: Option<&Topic>,
    deflate: Option<Params>,
    cache: &Arc<FormCache>,
) -> EventFrame {
    let plain = event_bytes(e, encoding, topic, cache);
    if let Some(p) = deflate
        && p.may_compress(plain.len())
    {
        let form = match (encoding, topic) {
            (Encoding::Json, _) => Form::JsonDeflated,
            (Encoding::Lean, None) => Form::LeanDeflated,
            (Encoding::Lean, Some(_)) => Form::LeanMultiDeflated,
        };
        let packed = e.form(form, cache, |_| deflate::compress(&plain));
        // Deflate does not pay on every event (tiny or random ones):
        // whichever is smaller goes.
        if packed.len() < plain.len() {
            return EventFrame {
                payload: packed,
                compressed: true,
            };
        }
    }
    // The event JSON is valid UTF-8 (`EventJson`'s invariant); its `data`
    // is a whole JSON value within it, so it starts and ends on character
    // boundaries; a topic is ASCII: a text frame's payload.
    EventFrame {
        payload: plain,
        compressed: false,
    }
}

/// Writes `frames` to `io` in order and flushes it: headers and payloads
/// copied into one buffer ([`put`]), written with one plain write. (A
/// vectored write of header and shared payload copies nothing in user
/// space, but the kernel's `writev` path cost more than the copy saves:
/// `vfs_writev` and `fdget_pos` 6.3 % of the server's CPU against
/// `sendto`'s 4.9 %.)
///
/// # Errors
/// The socket's error.
pub(crate) async fn write<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: &[EventFrame],
) -> io::Result<()> {
    let mut buf = BytesMut::new();
    put(&mut buf, frames);
    io.write_all(&buf).await?;
    io.flush().await
}

/// Appends `frames` to `buf`, each header followed by its payload.
pub(crate) fn put(buf: &mut BytesMut, frames: &[EventFrame]) {
    let len = frames.iter().fold(0usize, |n, f| {
        n.saturating_add(f.payload.len()).saturating_add(10)
    });
    buf.reserve(len);
    for f in frames {
        put_header(buf, f);
        buf.put_slice(&f.payload);
    }
}

/// Appends the header of `f`'s frame (RFC 6455 §5.2: no mask, so at most
/// 10 bytes).
fn put_header(buf: &mut BytesMut, f: &EventFrame) {
    let first = 0x80 | if f.compressed { 0x40 } else { 0 } | 0x1;
    buf.put_u8(first);
    match f.payload.len() {
        n @ 0..=125 => buf.put_u8(n as u8),
        n @ 126..=0xffff => {
            buf.put_u8(126);
            buf.put_u16(n as u16);
        }
        n => {
            buf.put_u8(127);
            buf.put_u64(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(f: &EventFrame) -> &[u8] {
        &f.payload
    }

    #[test]
    fn every_clone_of_an_event_shares_one_compressed_form() {
        let topic = Topic::new("t").unwrap();
        let e = Event::build(
            &topic,
            1,
            2,
            br#"{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","c":"bbbbbbbb"}"#,
        );
        let clone = e.clone();
        let cache = FormCache::new(1 << 20);
        let p = Some(Params {
            server_window_bits: 15,
            client_no_context_takeover: false,
        });
        for (enc, named) in [
            (Encoding::Json, None),
            (Encoding::Lean, None),
            (Encoding::Lean, Some(&topic)),
        ] {
            let a = event(&e, enc, named, p, &cache);
            let b = event(&clone, enc, named, p, &cache);
            assert!(a.compressed && b.compressed, "{enc:?} compressed");
            // The same bytes, not equal ones: compressed once.
            assert_eq!(payload(&a).as_ptr(), payload(&b).as_ptr(), "{enc:?}");
        }
        // Lean, uncompressed: a slice of the event JSON itself.
        let lean = event(&e, Encoding::Lean, None, None, &cache);
        let json = e.json.bytes();
        let at = payload(&lean).as_ptr() as usize - json.as_ptr() as usize;
        assert!(at < json.len());
        assert_eq!(payload(&lean), &json[at..json.len() - 1]);
        assert_eq!(
            payload(&event(&e, Encoding::Lean, Some(&topic), None, &cache)),
            br#"t {"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","c":"bbbbbbbb"}"#
        );
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
