//! Every byte on the wire, counted at the socket and attributed to the
//! transport it served.
//!
//! [`CountingIo`] wraps the accepted `TcpStream`, below TLS and below
//! hyper, so handshakes, TLS records, request lines, headers, HTTP/2 frames,
//! chunked encoding, SSE fields, WebSocket frame headers, masks, pings and
//! close frames are all counted: nothing is estimated from payload sizes.
//! It reports to a [`Meter`]; clients (the bench, `feedgate tail`) use a
//! plain [`ByteCount`]. On the server, what a byte served is decided where
//! the protocol can be read:
//!
//! - [`h1`]: HTTP/1.1 — the router says which transport each request is;
//! - [`h2`]: HTTP/2 — each frame is its stream's, read from the frames
//!   themselves (a stream's transport from its request's `:path`);
//! - [`tls_ledger`]: under TLS, the ciphertext the socket carried is shared
//!   out to the transports of the plaintext it carried;
//! - [`account`]: where a connection's attributed bytes are counted;
//! - [`watch`]: a socket whose writes are refused for too long.
//!
//! The connection layer stacks them (docs/architecture.md, "Connections"):
//!
//! ```text
//! HTTP/1.1:           TcpStream → CountingIo(h1 meter + watch)               → hyper
//! HTTP/2 (h2c):       TcpStream → CountingIo(watch) → FrameIo                → hyper
//! TLS, HTTP/1.1:      TcpStream → CountingIo(ledger + watch) → TLS → CountingIo(h1 meter) → hyper
//! TLS, HTTP/2:        TcpStream → CountingIo(ledger + watch) → TLS → FrameIo → hyper
//! ```

pub(crate) mod account;
pub(crate) mod h1;
pub(crate) mod h2;
pub(crate) mod tls_ledger;
pub(crate) mod watch;

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(crate) use h1::H1Meter;

/// Receives the byte counts of one connection.
pub trait Meter {
    /// `n > 0` bytes were read from the socket.
    fn on_read(&self, n: usize);
    /// `n > 0` bytes were written to the socket.
    fn on_write(&self, n: usize);
    /// A write could not proceed: the peer's receive window is full.
    fn on_write_blocked(&self) {}
}

/// Two meters of one socket (a classifier and a watch), both told.
impl<A: Meter, B: Meter> Meter for (A, B) {
    fn on_read(&self, n: usize) {
        self.0.on_read(n);
        self.1.on_read(n);
    }
    fn on_write(&self, n: usize) {
        self.0.on_write(n);
        self.1.on_write(n);
    }
    fn on_write_blocked(&self) {
        self.0.on_write_blocked();
        self.1.on_write_blocked();
    }
}

impl<M: Meter + ?Sized> Meter for Arc<M> {
    fn on_read(&self, n: usize) {
        (**self).on_read(n)
    }
    fn on_write(&self, n: usize) {
        (**self).on_write(n)
    }
    fn on_write_blocked(&self) {
        (**self).on_write_blocked()
    }
}

pin_project_lite::pin_project! {
    /// An `AsyncRead + AsyncWrite` that reports every byte that really
    /// crossed the socket (counted only on `Ready(Ok(n))`) to its meter.
    pub struct CountingIo<T, M> {
        #[pin]
        inner: T,
        meter: M,
    }
}

impl<T, M: Meter> CountingIo<T, M> {
    /// Wraps `inner`, reporting to `meter`.
    pub fn new(inner: T, meter: M) -> Self {
        CountingIo { inner, meter }
    }
}

impl<T: AsyncRead, M: Meter> AsyncRead for CountingIo<T, M> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let n = buf.filled().len() - before;
            if n > 0 {
                this.meter.on_read(n);
            }
        }
        res
    }
}

impl<T: AsyncWrite, M: Meter> AsyncWrite for CountingIo<T, M> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write(cx, buf);
        match res {
            Poll::Ready(Ok(n)) if n > 0 => this.meter.on_write(n),
            Poll::Pending => this.meter.on_write_blocked(),
            _ => {}
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write_vectored(cx, bufs);
        match res {
            Poll::Ready(Ok(n)) if n > 0 => this.meter.on_write(n),
            Poll::Pending => this.meter.on_write_blocked(),
            _ => {}
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// A plain pair of counters, for clients.
#[derive(Debug, Default)]
pub struct ByteCount {
    read: AtomicU64,
    written: AtomicU64,
}

impl ByteCount {
    /// Bytes read so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

impl Meter for ByteCount {
    fn on_read(&self, n: usize) {
        self.read.fetch_add(n as u64, Ordering::Relaxed);
    }
    fn on_write(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_both_directions_including_vectored() {
        let (a, mut b) = tokio::io::duplex(64);
        let count = Arc::new(ByteCount::default());
        let mut io = CountingIo::new(a, count.clone());
        io.write_all(b"hello").await.unwrap();
        let bufs = [IoSlice::new(b"ab"), IoSlice::new(b"cde")];
        let n = io.write_vectored(&bufs).await.unwrap();
        b.write_all(b"xyz").await.unwrap();
        let mut got = [0u8; 3];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(count.written(), 5 + n as u64);
        assert_eq!(count.read(), 3);
    }
}
