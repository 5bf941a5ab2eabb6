//! One HTTP/2 connection shared by everything a simulated browser opens
//! to one origin ([`super::Endpoint::shared`]): its polls, streams and
//! WebSockets become streams of that connection, as a browser makes them —
//! the point of HTTP/2 for a page that follows many topics, which over
//! HTTP/1.1 would need a connection each (and meet the browser's cap of
//! six).
//!
//! The first user dials; the others wait for it and share what it made.
//! A closed connection (the server's GOAWAY) is replaced by the next user.
//! When the server does not agree to HTTP/2 (ALPN said `http/1.1`), nothing
//! is shared: each user gets a connection of its own, as on HTTP/1.1.

use std::sync::Arc;

use super::linger::Sockets;
use super::{ClientError, Endpoint, HttpConn};
use crate::wire::ByteCount;

/// The shared connection of an endpoint and its clones.
#[derive(Default)]
pub(super) struct Pool {
    /// The bytes of every connection made through the pool.
    pub bytes: Arc<ByteCount>,
    /// Its connections, until each has closed.
    pub sockets: Sockets,
    conn: tokio::sync::Mutex<Option<HttpConn>>,
}

impl Pool {
    /// A handle on the shared HTTP/2 connection, dialed if there is none
    /// (or it closed).
    ///
    /// # Errors
    /// When dialing fails.
    pub async fn conn(&self, ep: &Endpoint) -> Result<HttpConn, ClientError> {
        // A tokio mutex, held across the dial on purpose: whoever comes
        // meanwhile waits for this connection rather than making another.
        let mut slot = self.conn.lock().await;
        if let Some(shared) = slot
            .as_ref()
            .filter(|c| !c.is_closed())
            .and_then(HttpConn::share)
        {
            return Ok(shared);
        }
        let ep = ep.clone().tracked_by(self.sockets.clone());
        let conn = HttpConn::dial(&ep, self.bytes.clone(), true).await?;
        *slot = conn.share();
        Ok(conn)
    }
}
