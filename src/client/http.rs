//! One keep-alive HTTP/1.1 connection on a counted socket: what publishes,
//! polls, event streams, the bench's scrapes and the doctor's probes send
//! their requests on. Also the one thing a client reads of gzip: a whole
//! poll answer.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

use super::{ClientError, Endpoint};
use crate::wire::ByteCount;

/// One keep-alive HTTP/1.1 connection.
pub struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl HttpConn {
    /// Connects to `ep`, counting bytes into `bytes`.
    ///
    /// # Errors
    /// When the TCP connection or the HTTP handshake fails.
    pub async fn connect(ep: &Endpoint, bytes: Arc<ByteCount>) -> Result<HttpConn, ClientError> {
        let stream = ep.connect(bytes).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpConn {
            sender,
            host: ep.host_header(),
        })
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
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
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        self.sender.ready().await?;
        Ok(self.sender.send_request(req).await?)
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
