//! Response bodies and builders shared by every handler.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::error::ApiError;
use crate::wire::H1Meter;

/// The body type of every response: boxed so that fixed bodies and endless
/// SSE streams share one type.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A fixed body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().boxed_unsync()
}

/// A response with a JSON body.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The JSON error response for `e`, with `Allow` / `Retry-After` where the
/// status calls for them.
pub fn error(e: &ApiError) -> Response<Body> {
    let mut res = json(e.status(), e.body());
    let h = res.headers_mut();
    match e {
        ApiError::MethodNotAllowed { allow } => {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        ApiError::RateLimited { retry_after_s } => {
            h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
        ApiError::UnsupportedWsVersion => {
            h.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        _ => {}
    }
    res
}

/// Set in a response's extensions when the fast path already wrote it to
/// the socket (a held long poll it answered, `transport/fanout.rs`): the
/// body holds what the socket did not take yet, to be written as it is,
/// with no head; the request was counted when it was written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written;

/// A body that tells an HTTP/1.1 connection's meter when the response is
/// over, so the next request's bytes are attributed to the next request
/// (on HTTP/2 the frames say: `meter` is `None`).
pub struct MeteredBody {
    inner: Body,
    meter: Option<Arc<H1Meter>>,
    ended: bool,
}

impl MeteredBody {
    /// Wraps a response body of the connection metered by `meter`.
    pub(crate) fn new(inner: Body, meter: Option<Arc<H1Meter>>) -> Self {
        MeteredBody {
            inner,
            meter,
            ended: false,
        }
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            if let Some(m) = &self.meter {
                m.response_ended();
            }
        }
    }
}

impl HttpBody for MeteredBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let res = Pin::new(&mut self.inner).poll_frame(cx);
        match &res {
            Poll::Ready(None) => self.end(),
            Poll::Ready(Some(_)) if self.inner.is_end_stream() => self.end(),
            _ => {}
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        self.end();
    }
}
