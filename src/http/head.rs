//! HTTP/1.1 response heads written by feedgate itself: the status line, the
//! headers, `Date` and the body's framing. Used by the connections whose
//! subscriptions are served off hyper (`server/direct.rs`) and by the fast
//! path when it answers held long polls (`transport/fanout.rs`): both
//! write the same bytes for the same response.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::Body as _;
use hyper::header;
use hyper::http::response::Parts;
use hyper::{Response, StatusCode};

use super::response::Body;

/// How a response's body is framed on HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all (`204`, `304`): neither a length nor chunks.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl Framing {
    /// The framing of a response with `status` whose body's exact length,
    /// if known, is `length`.
    pub fn of(status: StatusCode, length: Option<u64>) -> Framing {
        match length {
            _ if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) => {
                Framing::None
            }
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        }
    }
}

/// The status line and headers of `parts`, with `Date` and `framing`'s
/// header, up to the blank line.
pub(crate) fn head(parts: &Parts, framing: Framing) -> Bytes {
    let mut head = BytesMut::with_capacity(256);
    head.put_slice(b"HTTP/1.1 ");
    head.put_slice(parts.status.as_str().as_bytes());
    head.put_u8(b' ');
    head.put_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    head.put_slice(b"\r\n");
    for (name, value) in &parts.headers {
        head.put_slice(name.as_str().as_bytes());
        head.put_slice(b": ");
        head.put_slice(value.as_bytes());
        head.put_slice(b"\r\n");
    }
    head.put_slice(b"date: ");
    put_date(&mut head);
    head.put_slice(b"\r\n");
    match framing {
        Framing::None => {}
        Framing::Length(n) => {
            head.put_slice(b"content-length: ");
            head.put_slice(n.to_string().as_bytes());
            head.put_slice(b"\r\n");
        }
        Framing::Chunked => head.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    head.put_slice(b"\r\n");
    head.freeze()
}

/// The whole of `res` on HTTP/1.1 — head and body in one buffer — when its
/// body is all there now and has a length (a poll's answer); `None`
/// otherwise.
pub(crate) fn whole(res: Response<Body>) -> Option<Bytes> {
    let (parts, mut body) = res.into_parts();
    let length = body.size_hint().exact()?;
    let head = head(&parts, Framing::of(parts.status, Some(length)));
    let mut out = BytesMut::with_capacity(head.len().checked_add(usize::try_from(length).ok()?)?);
    out.put_slice(&head);
    let mut got = 0u64;
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    got = got.checked_add(data.len() as u64)?;
                    out.put_slice(&data);
                }
            }
            Poll::Ready(None) => break,
            Poll::Ready(Some(Err(e))) => match e {},
            Poll::Pending => return None,
        }
    }
    (got == length).then(|| out.freeze())
}

/// Whether `headers` say `Connection: close`.
pub(crate) fn wants_close(headers: &hyper::HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

/// Appends the `Date` of now (RFC 9110's IMF-fixdate), formatted once per
/// second per thread.
pub(crate) fn put_date(head: &mut BytesMut) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != second {
            *at = second;
            *text = httpdate::fmt_http_date(now);
        }
        head.put_slice(text.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::{full, json};
    use hyper::header::HeaderValue;

    #[test]
    fn the_date_is_an_imf_fixdate() {
        let mut b = BytesMut::new();
        put_date(&mut b);
        let text = std::str::from_utf8(&b).unwrap();
        assert_eq!(text.len(), 29, "{text}");
        assert!(text.ends_with(" GMT"), "{text}");
        assert!(httpdate::parse_http_date(text).is_ok(), "{text}");
    }

    /// A ready answer is its head, then exactly its body; a stream (no
    /// length) is not whole.
    #[test]
    fn a_whole_answer_is_head_then_body() {
        let out = whole(json(StatusCode::OK, "{\"a\":1}")).expect("a ready body");
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("content-type: application/json\r\n"),
            "{text}"
        );
        assert!(text.contains("content-length: 7\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n{\"a\":1}"), "{text}");
        let stream = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
            hyper::body::Frame::data(Bytes::from_static(b"x")),
        )]);
        let body = http_body_util::BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream));
        assert!(whole(Response::new(body)).is_none());
        let empty = whole(Response::new(full(Bytes::new()))).expect("an empty body");
        assert!(empty.ends_with(b"content-length: 0\r\n\r\n"));
    }

    #[test]
    fn connection_close_is_read_from_any_token() {
        let mut h = hyper::HeaderMap::new();
        assert!(!wants_close(&h));
        h.append(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        assert!(!wants_close(&h));
        h.append(header::CONNECTION, HeaderValue::from_static("foo, Close"));
        assert!(wants_close(&h));
    }
}
