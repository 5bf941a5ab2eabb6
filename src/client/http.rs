//! One keep-alive HTTP connection on a counted socket — HTTP/1.1 or
//! HTTP/2, in the clear or over TLS, as the endpoint asks and the server
//! agrees: what publishes, polls, event streams, the bench's scrapes and
//! the doctor's probes send their requests on. Also the one thing a
//! client reads of gzip: a whole poll answer.
//!
//! On HTTP/2 every request is a stream of the one connection: a request
//! names its target as `:scheme` and `:authority` (no `Host` header, as a
//! browser sends it), and clones of an [`HttpConn`] share the connection
//! (an endpoint made with [`Endpoint::shared`] hands every user the same
//! one, as a browser does for one origin).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

use super::h2::H2;
use super::link::{self, Link};
use super::{ClientError, Endpoint};
use crate::wire::ByteCount;

/// One keep-alive HTTP connection.
pub struct HttpConn {
    sender: Sender,
    /// `host:port`: the `Host` header, or HTTP/2's `:authority`.
    authority: String,
    /// `http` or `https`, for HTTP/2's `:scheme`.
    scheme: &'static str,
    link: Link,
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(H2),
}

impl HttpConn {
    /// Connects to `ep`, counting bytes into `bytes` — or, on an endpoint
    /// made with [`Endpoint::shared`] that speaks HTTP/2, opens a stream
    /// on its one connection (whose bytes count into
    /// [`Endpoint::shared_bytes`]).
    ///
    /// # Errors
    /// When the TCP connection, TLS or the HTTP handshake fails.
    pub async fn connect(ep: &Endpoint, bytes: Arc<ByteCount>) -> Result<HttpConn, ClientError> {
        match ep.pool() {
            Some(pool) if ep.http2() => pool.conn(ep).await,
            _ => Self::dial(ep, bytes, ep.http2()).await,
        }
    }

    /// A connection of its own, speaking HTTP/2 if `http2` and the server
    /// agrees.
    ///
    /// # Errors
    /// As [`HttpConn::connect`].
    pub(super) async fn dial(
        ep: &Endpoint,
        bytes: Arc<ByteCount>,
        http2: bool,
    ) -> Result<HttpConn, ClientError> {
        let (io, link) = link::dial(ep, bytes, http2).await?;
        Self::on(ep, io, link).await
    }

    /// Speaks HTTP on a connection already dialed.
    ///
    /// # Errors
    /// When the HTTP handshake fails.
    pub(super) async fn on(
        ep: &Endpoint,
        io: link::BoxIo,
        link: Link,
    ) -> Result<HttpConn, ClientError> {
        let sender = match link.http2 {
            true => Sender::H2(H2::handshake(io).await?),
            false => {
                let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Sender::H1(sender)
            }
        };
        Ok(HttpConn {
            sender,
            authority: ep.host_header(),
            scheme: ep.scheme(),
            link,
        })
    }

    /// What this connection speaks.
    pub fn link(&self) -> Link {
        self.link
    }

    /// Another handle on the same HTTP/2 connection (`None` on HTTP/1.1,
    /// which carries one request at a time).
    pub(super) fn share(&self) -> Option<HttpConn> {
        match &self.sender {
            Sender::H2(h2) => Some(HttpConn {
                sender: Sender::H2(h2.clone()),
                authority: self.authority.clone(),
                scheme: self.scheme,
                link: self.link,
            }),
            Sender::H1(_) => None,
        }
    }

    /// The HTTP/2 side, for an extended CONNECT.
    pub(super) fn h2(&self) -> Option<&H2> {
        match &self.sender {
            Sender::H2(h2) => Some(h2),
            Sender::H1(_) => None,
        }
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(h) => h.send.is_closed(),
        }
    }

    /// A request for `path` as this connection sends it: origin-form with
    /// `Host` on HTTP/1.1, absolute (`:scheme`, `:authority`) on HTTP/2.
    pub(super) fn request_to(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        match self.sender {
            Sender::H1(_) => Request::builder()
                .method(method)
                .uri(path)
                .header("host", &self.authority),
            Sender::H2(_) => Request::builder()
                .method(method)
                .uri(format!("{}://{}{path}", self.scheme, self.authority)),
        }
    }

    /// Sends a request and returns the response head with its streaming body.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let mut req = self.request_to(method, path);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        self.send_request(req).await
    }

    /// Sends a request built by [`HttpConn::request_to`].
    ///
    /// # Errors
    /// When the connection fails.
    pub(super) async fn send_request(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        Ok(match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Sender::H2(h) => {
                h.send.ready().await?;
                h.send.send_request(req).await?
            }
        })
    }

    /// Sends a request and collects the whole response body.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let res = self.send(method, path, &[], body).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Whether a response says its body is gzipped.
pub(super) fn gzipped(h: &HeaderMap) -> bool {
    h.get(hyper::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
}

/// A gzipped body, decoded.
///
/// # Errors
/// [`ClientError::Protocol`] when it is not gzip.
pub(super) fn gunzip(body: &[u8]) -> Result<Bytes, ClientError> {
    let mut out = Vec::with_capacity(body.len() * 4);
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out)
        .map_err(|e| ClientError::Protocol(format!("bad gzip body: {e}")))?;
    Ok(Bytes::from(out))
}
