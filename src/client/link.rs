//! Dialing: one connection to a server, counted at its TCP socket (below
//! TLS: ciphertext and handshakes, as the server counts), wrapped in TLS
//! for an `https://` endpoint, and the HTTP it speaks — its [`Link`].
//!
//! Under TLS, ALPN decides (`h2` when the endpoint asks for HTTP/2 and the
//! server agrees, else `http/1.1`); in the clear, an endpoint that asks for
//! HTTP/2 speaks h2c with prior knowledge (feedgate tells the two apart by
//! the preface on one port).

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::linger::{Linger, NoCloseNotify};
use super::tls::server_name;
use super::{ClientError, Endpoint};
use crate::wire::{ByteCount, CountingIo};

/// Anything a connection can run on: a counted socket, with or without
/// TLS, or an upgraded HTTP/2 stream.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A connection's byte stream, whatever it runs on.
pub type BoxIo = Box<dyn Io>;

/// What one connection speaks: HTTP/1.1 or HTTP/2, in the clear or over
/// TLS — the server's `protocol` and `tls` metric labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Link {
    /// HTTP/2 (h2 by ALPN, or h2c).
    pub http2: bool,
    /// Over TLS.
    pub tls: bool,
}

impl Link {
    /// The server's `protocol` label: `h1` or `h2`.
    pub fn protocol(self) -> &'static str {
        if self.http2 { "h2" } else { "h1" }
    }

    /// The server's `tls` label: `true` or `false`.
    pub fn tls_label(self) -> &'static str {
        if self.tls { "true" } else { "false" }
    }

    /// `h1`, `h2`, `h1+tls` or `h2+tls`.
    pub fn name(self) -> &'static str {
        match (self.http2, self.tls) {
            (false, false) => "h1",
            (true, false) => "h2",
            (false, true) => "h1+tls",
            (true, true) => "h2+tls",
        }
    }

    /// Parses [`Link::name`]'s forms (`h2c` is `h2`; `https` is `h1+tls`).
    pub fn parse(s: &str) -> Option<Link> {
        let (http2, tls) = match s.trim() {
            "h1" | "http1" | "http/1.1" => (false, false),
            "h2" | "h2c" => (true, false),
            "h1+tls" | "https" => (false, true),
            "h2+tls" => (true, true),
            _ => return None,
        };
        Some(Link { http2, tls })
    }

    /// All four, in the order tables show them.
    pub const ALL: [Link; 4] = [
        Link {
            http2: false,
            tls: false,
        },
        Link {
            http2: true,
            tls: false,
        },
        Link {
            http2: false,
            tls: true,
        },
        Link {
            http2: true,
            tls: true,
        },
    ];
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Opens a connection to `ep`, its socket's bytes counted into `bytes`.
/// `http2`: whether HTTP/2 may be spoken on it (offered by ALPN, or h2c);
/// the returned [`Link`] says what was agreed.
///
/// # Errors
/// When connecting or the TLS handshake fails.
pub async fn dial(
    ep: &Endpoint,
    bytes: Arc<ByteCount>,
    http2: bool,
) -> Result<(BoxIo, Link), ClientError> {
    let socket = CountingIo::new(ep.connect_tcp().await?, bytes);
    // Dropped, it reads what the server still says until it closes.
    let socket = Linger::new(socket, ep.sockets());
    let Some(tls) = ep.tls() else {
        return Ok((Box::new(socket), Link { http2, tls: false }));
    };
    let name = server_name(ep.host())?;
    let stream = tls
        .connector(http2)
        .connect(name, socket)
        .await
        .map_err(tls_error)?;
    let agreed = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    Ok((
        Box::new(NoCloseNotify(stream)),
        Link {
            http2: agreed,
            tls: true,
        },
    ))
}

/// An [`Io`] that keeps something alive for as long as it lives: the
/// sender of the HTTP/2 connection under a WebSocket's stream.
pub struct Holding<T, K> {
    io: T,
    _kept: K,
}

impl<T, K> Holding<T, K> {
    /// `io`, keeping `kept` until it is dropped.
    pub fn new(io: T, kept: K) -> Self {
        Holding { io, _kept: kept }
    }
}

impl<T: AsyncRead + Unpin, K: Unpin> AsyncRead for Holding<T, K> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin, K: Unpin> AsyncWrite for Holding<T, K> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A failed handshake: the certificate or the protocol (final), or the
/// socket (worth retrying).
fn tls_error(e: std::io::Error) -> ClientError {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(tls) => ClientError::Tls(tls.to_string()),
        None => ClientError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in Link::ALL {
            assert_eq!(Link::parse(l.name()), Some(l));
        }
        assert_eq!(Link::parse("h2c").map(Link::name), Some("h2"));
        assert_eq!(Link::parse("h3"), None);
        assert_eq!(Link::ALL[3].protocol(), "h2");
        assert_eq!(Link::ALL[3].tls_label(), "true");
    }
}
