//! One interface over the gateways the bench speaks: a [`Source`] yields the
//! payload-bearing messages of one subscriber, a [`Publisher`] posts
//! payloads. feedgate is spoken through the library's own client
//! ([`Subscriber`]); Nchan through [`super::nchan`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::args::Target;
use super::nchan::{self, NchanSub};
use crate::client::{
    ClientError, Delivery, Endpoint, HttpConn, RequestStats, SubscribeOptions, Subscriber,
};
use crate::log::Cursor;
use crate::metrics::Transport;
use crate::wire::ByteCount;

/// What a subscriber was told besides messages.
#[derive(Debug, Default, Clone, Copy)]
pub struct Signals {
    /// Gap signals (events no longer retained).
    pub gaps: u64,
    /// Reset signals.
    pub resets: u64,
}

/// One subscriber, whichever the gateway.
pub enum Source {
    /// feedgate, through [`Subscriber`].
    Feedgate(Box<Subscriber>),
    /// Nchan.
    Nchan(Box<NchanSub>),
}

impl Source {
    /// Subscribes to `topic` from its first event.
    ///
    /// # Errors
    /// When a stream cannot be opened.
    pub async fn connect(
        target: Target,
        ep: &Endpoint,
        topic: &str,
        transport: Transport,
        poll_interval: Duration,
        longpoll_timeout: Duration,
    ) -> Result<Source, ClientError> {
        Ok(match target {
            Target::Feedgate => {
                let opts = SubscribeOptions {
                    poll_interval,
                    longpoll_timeout,
                };
                // `after=0` on a fresh topic: every subscriber sees every
                // publish of the run, however late its first poll lands.
                let cursor = Cursor {
                    after: Some(0),
                    epoch: None,
                };
                Source::Feedgate(Box::new(
                    Subscriber::connect(ep, topic, transport, cursor, opts).await?,
                ))
            }
            Target::Nchan => Source::Nchan(Box::new(
                NchanSub::connect(ep, topic, transport, poll_interval).await?,
            )),
        })
    }

    /// Waits for the next message(s), appending their bytes to `out`.
    ///
    /// # Errors
    /// When the connection fails or the stream ends.
    pub async fn next(
        &mut self,
        out: &mut Vec<Bytes>,
        signals: &mut Signals,
    ) -> Result<(), ClientError> {
        match self {
            Source::Feedgate(sub) => {
                match sub.next().await? {
                    Delivery::Event(e) => out.push(e.json),
                    Delivery::Gap { .. } => signals.gaps += 1,
                    Delivery::Reset { .. } => signals.resets += 1,
                }
                Ok(())
            }
            Source::Nchan(sub) => sub.next(out).await,
        }
    }

    /// Bytes sent and received, counted at the socket.
    pub fn bytes(&self) -> Arc<ByteCount> {
        match self {
            Source::Feedgate(s) => s.bytes().clone(),
            Source::Nchan(s) => s.bytes().clone(),
        }
    }

    /// Requests made, empty responses received.
    pub fn stats(&self) -> RequestStats {
        match self {
            Source::Feedgate(s) => s.stats(),
            Source::Nchan(s) => s.stats(),
        }
    }

    /// Ends the subscription cleanly (WebSocket close handshake), so both
    /// sides have counted the same bytes.
    pub async fn close(self) {
        match self {
            Source::Feedgate(s) => s.close().await,
            Source::Nchan(s) => s.close().await,
        }
    }
}

/// The one publisher of a run, on one keep-alive connection.
pub struct Publisher {
    http: HttpConn,
    ep: Endpoint,
    path: String,
    bytes: Arc<ByteCount>,
}

impl Publisher {
    /// Connects to the gateway's publish endpoint for `topic`.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn connect(
        target: Target,
        ep: &Endpoint,
        topic: &str,
    ) -> Result<Publisher, ClientError> {
        let bytes = Arc::new(ByteCount::default());
        let path = match target {
            Target::Feedgate => ep.path(&format!("topics/{topic}/events")),
            Target::Nchan => nchan::publish_path(ep, topic),
        };
        Ok(Publisher {
            http: HttpConn::connect(ep, bytes.clone()).await?,
            ep: ep.clone(),
            path,
            bytes,
        })
    }

    /// Publishes one payload.
    ///
    /// # Errors
    /// When the request fails or the gateway refuses it.
    pub async fn publish(&mut self, payload: Vec<u8>) -> Result<(), ClientError> {
        if self.http.is_closed() {
            self.http = HttpConn::connect(&self.ep, self.bytes.clone()).await?;
        }
        let (status, body) = self
            .http
            .request(Method::POST, &self.path, Some(Bytes::from(payload)))
            .await?;
        // feedgate answers 201; Nchan 201 (new channel) or 202 (queued).
        if status != StatusCode::CREATED && status != StatusCode::ACCEPTED {
            return Err(ClientError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(())
    }

    /// Bytes the publisher sent and received.
    pub fn bytes(&self) -> &Arc<ByteCount> {
        &self.bytes
    }
}
