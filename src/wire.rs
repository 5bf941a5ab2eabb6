//! The byte-counting IO wrapper: every byte on the wire, counted at the socket.
//!
//! [`CountingIo`] sits between the accepted `TcpStream` and hyper, so request
//! lines, headers, chunked encoding, SSE fields, WebSocket frame headers,
//! masks, pings and close frames are all counted: nothing is estimated from
//! payload sizes. It reports to a [`Meter`]. On the server the meter is a
//! [`ConnMeter`], which attributes each byte to the transport of the request
//! it belongs to; clients (the bench, `feedgate tail`) use a plain
//! [`ByteCount`].

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use crate::metrics::{Metrics, Transport};

/// Receives the byte counts of one connection.
pub trait Meter {
    /// `n > 0` bytes were read from the socket.
    fn on_read(&self, n: usize);
    /// `n > 0` bytes were written to the socket.
    fn on_write(&self, n: usize);
    /// A write could not proceed: the peer's receive window is full.
    fn on_write_blocked(&self) {}
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

/// Attributes one server connection's bytes to transports.
///
/// The rules, for a connection that does not pipeline requests:
/// - bytes read before a request is routed are held as *pending*, and go to
///   the request's transport once the router classifies it (or to `other`
///   if it never is: a malformed request, a timeout, a refused connection);
/// - while a routed request is active (until its response body ends), reads
///   and writes go to its transport;
/// - after the response body ends, writes still go to that transport (hyper
///   writes the final chunk after the body reports its end), until the next
///   request's first byte arrives;
/// - after a WebSocket upgrade every byte is `ws`, for good.
///
/// The `feedgate_connections` gauge follows the same attribution: a
/// connection is counted under the transport of its latest request.
pub struct ConnMeter {
    metrics: Arc<Metrics>,
    state: Mutex<MeterState>,
    /// Where writes go now, as a [`Transport`] index: read on every write,
    /// so kept out of the lock (the connection's own task is the only
    /// writer of every field here; the lock and atomics only make the
    /// meter `Sync`).
    writing: AtomicU8,
    /// Since when writes have been refused by a full socket, in
    /// nanoseconds after `BASE` plus one (0: they are not), so a write
    /// clears it without taking the lock.
    blocked_since: AtomicU64,
    /// Signalled when writes start being blocked, so a watchdog sleeps
    /// until then instead of polling every connection.
    blocked: tokio::sync::Notify,
    /// The connection-limit permit: released when the socket is dropped,
    /// which for an upgraded WebSocket is when its session ends.
    _permit: Option<OwnedSemaphorePermit>,
}

struct MeterState {
    /// Where reads go now; `None` means pending.
    reading: Option<Transport>,
    pending_in: u64,
    /// The gauge this connection is counted under.
    gauge: Transport,
    upgraded: bool,
}

/// The instant `ConnMeter::blocked_since` counts from.
static BASE: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

fn since_base(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(*BASE).as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

impl ConnMeter {
    /// A meter for a freshly accepted connection, counted under `other`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self::build(metrics, None)
    }

    /// A meter that also holds the connection's slot under the limit.
    pub fn with_permit(metrics: Arc<Metrics>, permit: OwnedSemaphorePermit) -> Self {
        Self::build(metrics, Some(permit))
    }

    fn build(metrics: Arc<Metrics>, permit: Option<OwnedSemaphorePermit>) -> Self {
        metrics.transport(Transport::Other).connections.inc();
        ConnMeter {
            metrics,
            _permit: permit,
            blocked: tokio::sync::Notify::new(),
            writing: AtomicU8::new(Transport::Other as u8),
            blocked_since: AtomicU64::new(0),
            state: Mutex::new(MeterState {
                reading: None,
                pending_in: 0,
                gauge: Transport::Other,
                upgraded: false,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut MeterState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The router classified the current request as `t`.
    pub fn route(&self, t: Transport) {
        self.with(|s| {
            if s.upgraded {
                return;
            }
            let tm = self.metrics.transport(t);
            if s.pending_in > 0 {
                tm.wire_in.inc_by(std::mem::take(&mut s.pending_in));
            }
            s.reading = Some(t);
            self.writing.store(t as u8, Ordering::Relaxed);
            if s.gauge != t {
                self.metrics.transport(s.gauge).connections.dec();
                tm.connections.inc();
                s.gauge = t;
            }
        });
    }

    /// The current response's body has ended (or was dropped).
    pub fn response_ended(&self) {
        self.with(|s| {
            if !s.upgraded {
                s.reading = None;
            }
        });
    }

    /// Resolves once writes have been blocked for `limit` without a byte
    /// getting through. Costs nothing while writes flow.
    pub async fn stuck_for(&self, limit: Duration) {
        loop {
            self.blocked.notified().await;
            loop {
                let blocked = match self.blocked_since.load(Ordering::Relaxed) {
                    0 => None,
                    at => Some(BASE.elapsed().saturating_sub(Duration::from_nanos(at - 1))),
                };
                match blocked {
                    None => break,
                    Some(d) if d >= limit => return,
                    Some(d) => tokio::time::sleep(limit - d).await,
                }
            }
        }
    }

    /// The connection was upgraded to WebSocket: every byte from now is `ws`.
    pub fn upgraded(&self) {
        self.route(Transport::Ws);
        self.with(|s| s.upgraded = true);
    }
}

impl Meter for ConnMeter {
    fn on_read(&self, n: usize) {
        self.with(|s| match s.reading {
            Some(t) => self.metrics.transport(t).wire_in.inc_by(n as u64),
            None => {
                s.pending_in += n as u64;
                // The next request has begun: whatever it provokes before
                // it is routed (hyper's own 400, say) is `other`.
                self.writing
                    .store(Transport::Other as u8, Ordering::Relaxed);
            }
        })
    }

    fn on_write(&self, n: usize) {
        if self.blocked_since.load(Ordering::Relaxed) != 0 {
            self.blocked_since.store(0, Ordering::Relaxed);
        }
        let t = Transport::ALL[usize::from(self.writing.load(Ordering::Relaxed))];
        self.metrics.transport(t).wire_out.inc_by(n as u64);
    }

    fn on_write_blocked(&self) {
        let now = since_base(Instant::now());
        let newly = self
            .blocked_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if newly {
            self.blocked.notify_one();
        }
    }
}

impl Drop for ConnMeter {
    fn drop(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if s.pending_in > 0 {
            self.metrics
                .transport(Transport::Other)
                .wire_in
                .inc_by(s.pending_in);
        }
        self.metrics.transport(s.gauge).connections.dec();
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

    fn wire(m: &Metrics, t: Transport) -> (u64, u64) {
        let tm = m.transport(t);
        (tm.wire_in.get(), tm.wire_out.get())
    }

    #[test]
    fn attributes_pending_reads_to_the_routed_transport() {
        let m = Arc::new(Metrics::new());
        let meter = ConnMeter::new(m.clone());
        meter.on_read(100); // request head, before routing
        meter.route(Transport::Poll);
        meter.on_write(50);
        meter.response_ended();
        meter.on_write(5); // final chunk after the body's end
        meter.on_read(80); // the next request
        meter.route(Transport::Sse);
        meter.on_write(30);
        meter.response_ended();
        meter.on_read(7); // never routed: a malformed third request
        meter.on_write(3); // hyper's 400
        drop(meter);
        assert_eq!(wire(&m, Transport::Poll), (100, 55));
        assert_eq!(wire(&m, Transport::Sse), (80, 30));
        assert_eq!(wire(&m, Transport::Other), (7, 3));
        for t in Transport::ALL {
            assert_eq!(m.transport(t).connections.get(), 0);
        }
    }

    #[test]
    fn upgrade_keeps_everything_on_ws() {
        let m = Arc::new(Metrics::new());
        let meter = ConnMeter::new(m.clone());
        meter.on_read(200);
        meter.upgraded();
        meter.response_ended();
        meter.on_write(129);
        meter.on_read(10);
        assert_eq!(m.transport(Transport::Ws).connections.get(), 1);
        drop(meter);
        assert_eq!(wire(&m, Transport::Ws), (210, 129));
        assert_eq!(m.transport(Transport::Ws).connections.get(), 0);
    }
}
