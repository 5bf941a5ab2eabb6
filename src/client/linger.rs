//! Closing a client socket the way TCP allows it to be closed cleanly:
//! the client's side shuts down (FIN), then whatever the server still
//! sends is read — and counted — until the server closes too.
//!
//! This matters to byte accounting. An HTTP/2 client that is done sends
//! GOAWAY and closes; the server answers with a GOAWAY of its own, and a
//! TLS server with its `close_notify`. Those bytes left the server's
//! socket, so the server counts them; a client that had already dropped
//! its socket would never read them, and the two counts would differ by
//! a frame or a record, depending on a race. So a dialed socket is wrapped
//! in [`Linger`]: when the layers above drop it, a task shuts its write
//! side and reads until end of file (at most [`DRAIN_WITHIN`], and no
//! more than [`DRAIN_MAX`] bytes), counting as the socket always did.
//!
//! Under TLS the client sends no `close_notify` of its own
//! ([`NoCloseNotify`]): by the time it would, the server may have closed
//! already (an HTTP/2 server closes once it reads the client's GOAWAY),
//! and a record written to a closed peer is counted by the client and
//! never by the server. The server's `close_notify` still arrives, and is
//! read and counted while draining. (Browsers, too, often just close.)
//!
//! [`Sockets`] says when every socket of one user has closed this way, so
//! a caller that reports a connection's bytes (the bench) reads them once
//! they are final.

use std::io::IoSlice;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;

/// How long a closing socket waits for the server to close its side.
pub const DRAIN_WITHIN: Duration = Duration::from_secs(2);

/// How much a closing socket reads before giving up on the server's end
/// (a server still streaming after the client left is not closing).
pub const DRAIN_MAX: u64 = 1 << 20;

/// The sockets of one user still open (or draining).
#[derive(Clone, Default)]
pub struct Sockets(Arc<Open>);

#[derive(Default)]
struct Open {
    count: AtomicUsize,
    closed: Notify,
}

/// One socket's place in [`Sockets`], given back when it drops.
struct Share(Sockets);

impl Drop for Share {
    fn drop(&mut self) {
        let open = &(self.0).0;
        if open.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            open.closed.notify_waiters();
        }
    }
}

impl Sockets {
    fn share(&self) -> Share {
        self.0.count.fetch_add(1, Ordering::AcqRel);
        Share(self.clone())
    }

    /// How many are open now.
    pub fn open(&self) -> usize {
        self.0.count.load(Ordering::Acquire)
    }

    /// Waits until none is open, at most `within`; whether none is.
    pub async fn closed(&self, within: Duration) -> bool {
        let open = &self.0;
        let _ = tokio::time::timeout(within, async {
            loop {
                let mut changed = pin!(open.closed.notified());
                changed.as_mut().enable();
                if open.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                changed.await;
            }
        })
        .await;
        self.open() == 0
    }
}

/// A socket that, dropped, drains until the server closes (see the
/// module's docs).
pub struct Linger<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> {
    /// `None` only while dropping.
    io: Option<T>,
    /// The server's end of file was read already: nothing to drain.
    eof: bool,
    share: Option<Share>,
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Linger<T> {
    /// `io`, counted among `sockets` (if any) until it has closed.
    pub fn new(io: T, sockets: Option<&Sockets>) -> Self {
        Linger {
            io: Some(io),
            eof: false,
            share: sockets.map(Sockets::share),
        }
    }

    /// The socket; `None` only once `drop` took it, after which nothing
    /// polls it.
    fn io(&mut self) -> std::io::Result<Pin<&mut T>> {
        self.io
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| std::io::ErrorKind::NotConnected.into())
    }
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Drop for Linger<T> {
    fn drop(&mut self) {
        let (Some(mut io), false) = (self.io.take(), self.eof) else {
            return;
        };
        let share = self.share.take();
        // Outside a runtime (a test's runtime already gone) the socket
        // just closes.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(DRAIN_WITHIN, async {
                    let _ = io.shutdown().await;
                    let mut sink = tokio::io::sink();
                    let _ = tokio::io::copy(&mut (&mut io).take(DRAIN_MAX), &mut sink).await;
                })
                .await;
                drop(io);
                drop(share);
            });
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncRead for Linger<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match this.io() {
            Ok(io) => io.poll_read(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Poll::Ready(Ok(())) = polled {
            // An empty read into room is the server's end of file.
            if buf.filled().len() == before && buf.remaining() > 0 {
                this.eof = true;
            }
        }
        polled
    }
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncWrite for Linger<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().io() {
            Ok(io) => io.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().io() {
            Ok(io) => io.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(T::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => io.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => io.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// A TLS stream whose shutdown only flushes: the socket's close, below,
/// ends the connection without a `close_notify` from the client.
pub struct NoCloseNotify<T>(pub T);

impl<T: AsyncRead + Unpin> AsyncRead for NoCloseNotify<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for NoCloseNotify<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// The client drops its socket; what the server writes after seeing
    /// the client's end is still read, and the user learns when.
    #[tokio::test]
    async fn a_dropped_socket_reads_the_servers_last_words() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.unwrap();
            s.write_all(b"goodbye").await.unwrap();
        });
        let bytes = Arc::new(crate::wire::ByteCount::default());
        let tcp = TcpStream::connect(addr).await.unwrap();
        let sockets = Sockets::default();
        let io = Linger::new(
            crate::wire::CountingIo::new(tcp, bytes.clone()),
            Some(&sockets),
        );
        assert_eq!(sockets.open(), 1);
        drop(io);
        assert!(sockets.closed(Duration::from_secs(10)).await);
        assert_eq!(bytes.read(), 7);
        server.await.unwrap();
    }
}
