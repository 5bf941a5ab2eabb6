//! An HTTP/2 client connection: hyper's, plus the one thing of the
//! server's SETTINGS a client must know and hyper's `SendRequest` does not
//! say — whether WebSockets may ride it (RFC 8441,
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`). A browser opens a WebSocket over
//! HTTP/2 only when the server said so, and over a connection of its own,
//! HTTP/1.1, otherwise; so does this client.
//!
//! The connection's task is wrapped ([`Watched`]) so that every time it is
//! polled — and every millisecond until the SETTINGS came — it copies what
//! the server's SETTINGS said into [`Settings`], which a WebSocket opener
//! waits on. hyper's handshake returns before the
//! server's SETTINGS arrive, so "not known yet" must differ from "not
//! allowed": until the first SETTINGS, h2 keeps the stream limit the client
//! started with, [`UNKNOWN_STREAMS`]; the SETTINGS replace it with the
//! server's `MAX_CONCURRENT_STREAMS` (or no limit).

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2::{Builder, Connection, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::ClientError;
use super::link::BoxIo;

/// The stream limit before the server's SETTINGS: a number no server
/// announces in practice (nginx says 128, feedgate 256, Go 250, h2o 100),
/// so that its replacement shows the SETTINGS arrived. Streams opened
/// before then are few (a subscriber's first request).
const UNKNOWN_STREAMS: usize = 997;

/// How often to look for the server's SETTINGS until they came.
const RECHECK: Duration = Duration::from_millis(1);

/// How long to look for them.
const SETTINGS_WITHIN: Duration = Duration::from_secs(5);

/// What the server's SETTINGS said, as the connection task last saw them.
#[derive(Default)]
struct Settings {
    /// The server's first SETTINGS arrived (or the connection ended).
    known: AtomicBool,
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`.
    extended_connect: AtomicBool,
    /// Wakes whoever waits for `known`.
    changed: Notify,
}

/// The sending side of an HTTP/2 connection; clones share the connection.
#[derive(Clone)]
pub(super) struct H2 {
    /// hyper's request sender.
    pub send: SendRequest<Full<Bytes>>,
    settings: Arc<Settings>,
}

impl H2 {
    /// Starts HTTP/2 on `io` (the preface and SETTINGS go out now) and
    /// spawns the connection's task.
    ///
    /// # Errors
    /// When the handshake fails.
    pub async fn handshake(io: BoxIo) -> Result<H2, ClientError> {
        let (send, conn) = Builder::new(TokioExecutor::new())
            .initial_max_send_streams(UNKNOWN_STREAMS)
            .handshake(TokioIo::new(io))
            .await?;
        let settings = Arc::new(Settings::default());
        tokio::spawn(Watched {
            conn: Box::pin(conn),
            settings: settings.clone(),
            recheck: Box::pin(tokio::time::sleep(RECHECK)),
            give_up: Instant::now() + SETTINGS_WITHIN,
        });
        Ok(H2 { send, settings })
    }

    /// Whether the server allows WebSockets over this connection, waiting
    /// up to `within` for its SETTINGS (a server that never sends them
    /// allows nothing).
    pub async fn extended_connect(&self, within: Duration) -> bool {
        let s = &self.settings;
        let _ = tokio::time::timeout(within, async {
            loop {
                let mut changed = pin!(s.changed.notified());
                changed.as_mut().enable();
                if s.known.load(Ordering::Acquire) {
                    return;
                }
                changed.await;
            }
        })
        .await;
        s.extended_connect.load(Ordering::Acquire)
    }
}

type Conn = Connection<TokioIo<BoxIo>, Full<Bytes>, TokioExecutor>;

/// The connection's task, noting the server's SETTINGS as it goes.
///
/// hyper runs the HTTP/2 connection itself in a task of its own; the
/// future it hands back (polled here) wakes only for requests and the
/// connection's end. So until the SETTINGS are known this one also wakes
/// itself every [`RECHECK`] to look — for at most [`SETTINGS_WITHIN`],
/// after which a server that sent none is taken to allow nothing.
struct Watched {
    conn: Pin<Box<Conn>>,
    settings: Arc<Settings>,
    recheck: Pin<Box<tokio::time::Sleep>>,
    give_up: Instant,
}

impl Future for Watched {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let done = self.conn.as_mut().poll(cx).is_ready();
        let conn = self.conn.as_ref().get_ref();
        let extended = conn.is_extended_connect_protocol_enabled();
        let now = Instant::now();
        let known = done
            || extended
            || conn.current_max_send_streams() != UNKNOWN_STREAMS
            || now >= self.give_up;
        let s = self.settings.clone();
        s.extended_connect.store(extended, Ordering::Release);
        if known && !s.known.swap(true, Ordering::AcqRel) {
            s.changed.notify_waiters();
        }
        if !known {
            // Registers the timer's waker (a fired one is set again).
            while self.recheck.as_mut().poll(cx).is_ready() {
                self.recheck.as_mut().reset(now + RECHECK);
            }
        }
        match done {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }
}
