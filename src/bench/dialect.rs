//! One interface over the gateways the bench speaks: a [`Source`] yields the
//! payload-bearing messages of one subscriber, a [`Publisher`] posts
//! payloads. feedgate is spoken through the library's own client
//! ([`Subscriber`]); Nchan through [`super::nchan`].

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::args::Target;
use super::nchan::{self, NchanSub};
use crate::client::{
    ClientError, Delivery, Endpoint, HttpConn, Link, RequestStats, Sockets, SubscribeOptions,
    Subscriber, Wire,
};
use crate::protocol::{Cursor, Transport};
use crate::wire::{ByteCount, Meter};

/// How long a split subscriber's shared HTTP/2 connection may take to
/// close once its last stream is gone (the server's GOAWAY read).
const SHARED_CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

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
    /// feedgate, through [`Subscriber`]: one topic on its own path, or
    /// several over one connection (`topics=LIST`).
    Feedgate(Box<Subscriber>),
    /// feedgate, several topics over a connection each, merged.
    Split(Box<Split>),
    /// Nchan.
    Nchan(Box<NchanSub>),
}

/// K single-topic subscriptions read as one: each runs in a task of its
/// own and hands its deliveries over a small bounded channel. On HTTP/2
/// they are K streams of one shared connection, as a browser's would be.
pub struct Split {
    rx: tokio::sync::mpsc::Receiver<Result<Delivery, ClientError>>,
    tasks: tokio::task::JoinSet<Subscriber>,
    /// Each connection's count once (K, or one shared by all).
    bytes: Vec<Arc<ByteCount>>,
    link: Option<Link>,
    /// The shared HTTP/2 connection's socket, until it has closed.
    shared: Option<Sockets>,
    stop: tokio_util::sync::CancellationToken,
}

impl Source {
    /// Subscribes to `topics` from their first events: one on its own
    /// path, several over one connection, or (`split`) a connection each.
    ///
    /// # Errors
    /// When a stream cannot be opened.
    pub async fn connect(
        target: Target,
        ep: &Endpoint,
        topics: &[String],
        split: bool,
        transport: Transport,
        opts: SubscribeOptions,
        wire: Wire,
    ) -> Result<Source, ClientError> {
        let poll_interval = opts.poll_interval;
        // `after=0` on a fresh topic: every subscriber sees every publish of
        // the run, however late its first poll lands.
        let cursor = Cursor {
            after: Some(0),
            epoch: None,
        };
        Ok(match target {
            Target::Feedgate if topics.len() > 1 && split => {
                // One simulated browser: on HTTP/2 its topics' streams
                // share one connection.
                let ep = &match ep.http2() {
                    true => ep.clone().shared(),
                    false => ep.clone(),
                };
                let mut subs = Vec::with_capacity(topics.len());
                for t in topics {
                    let opts = opts.clone();
                    subs.push(
                        Subscriber::connect_with(ep, t, transport, cursor, opts, wire).await?,
                    );
                }
                Source::Split(Box::new(Split::start(subs, ep.shared_sockets())))
            }
            Target::Feedgate => {
                let list: Vec<(String, Cursor)> =
                    topics.iter().map(|t| (t.clone(), cursor)).collect();
                let sub = Subscriber::connect_list(ep, &list, transport, opts, wire).await?;
                Source::Feedgate(Box::new(sub))
            }
            Target::Nchan => Source::Nchan(Box::new(
                NchanSub::connect(ep, &topics[0], transport, poll_interval, wire.deflate).await?,
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
        let delivery = match self {
            Source::Feedgate(sub) => sub.next().await?,
            Source::Split(split) => split.rx.recv().await.ok_or(ClientError::Closed)??,
            Source::Nchan(sub) => return sub.next(out).await,
        };
        match delivery {
            Delivery::Event(e) => out.push(e.json),
            Delivery::Gap { .. } => signals.gaps += 1,
            Delivery::Reset { .. } => signals.resets += 1,
        }
        Ok(())
    }

    /// Bytes sent and received, counted at the socket.
    pub fn bytes(&self) -> Arc<ByteCount> {
        match self {
            Source::Feedgate(s) => s.bytes().clone(),
            Source::Split(s) => sum(&s.bytes),
            Source::Nchan(s) => s.bytes().clone(),
        }
    }

    /// What its (first) connection spoke, once it had one.
    pub fn link(&self) -> Option<Link> {
        match self {
            Source::Feedgate(s) => s.link(),
            Source::Split(s) => s.link,
            Source::Nchan(s) => s.link(),
        }
    }

    /// Requests made, empty responses received.
    pub fn stats(&self) -> RequestStats {
        match self {
            Source::Feedgate(s) => s.stats(),
            // A split subscription counts its requests as it closes.
            Source::Split(_) => RequestStats::default(),
            Source::Nchan(s) => s.stats(),
        }
    }

    /// Ends the subscription cleanly (WebSocket close handshake), so both
    /// sides have counted the same bytes; returns its request counts and
    /// its bytes, close included.
    pub async fn close(self) -> (RequestStats, Arc<ByteCount>) {
        let (stats, bytes) = (self.stats(), self.bytes());
        match self {
            Source::Feedgate(s) => s.close().await,
            Source::Split(mut s) => {
                s.stop.cancel();
                let mut stats = RequestStats::default();
                while let Some(Ok(sub)) = s.tasks.join_next().await {
                    let r = sub.stats();
                    sub.close().await;
                    stats.requests += r.requests;
                    stats.empty += r.empty;
                }
                // The last subscriber gone, the shared connection closes.
                if let Some(shared) = &s.shared {
                    shared.closed(SHARED_CLOSE_WITHIN).await;
                }
                return (stats, sum(&s.bytes));
            }
            Source::Nchan(s) => s.close().await,
        }
        (stats, bytes)
    }
}

/// The bytes of several counts, each counted once however many hold it.
fn sum(counts: &[Arc<ByteCount>]) -> Arc<ByteCount> {
    let sum = ByteCount::default();
    for b in counts {
        sum.on_read(b.read() as usize);
        sum.on_write(b.written() as usize);
    }
    Arc::new(sum)
}

impl Split {
    fn start(subs: Vec<Subscriber>, shared: Option<Sockets>) -> Split {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let stop = tokio_util::sync::CancellationToken::new();
        let mut bytes: Vec<Arc<ByteCount>> = Vec::new();
        for b in subs.iter().map(|s| s.bytes()) {
            if !bytes.iter().any(|seen| Arc::ptr_eq(seen, b)) {
                bytes.push(b.clone());
            }
        }
        let link = subs.iter().find_map(Subscriber::link);
        let mut tasks = tokio::task::JoinSet::new();
        for mut sub in subs {
            let (tx, stop) = (tx.clone(), stop.clone());
            tasks.spawn(async move {
                loop {
                    let next = tokio::select! {
                        _ = stop.cancelled() => break,
                        n = sub.next() => n,
                    };
                    let failed = next.is_err();
                    if tx.send(next).await.is_err() || failed {
                        break;
                    }
                }
                sub
            });
        }
        Split {
            rx,
            tasks,
            bytes,
            link,
            shared,
            stop,
        }
    }
}

/// The one publisher of a run, on one keep-alive connection.
pub struct Publisher {
    http: HttpConn,
    ep: Endpoint,
    /// The publish path of each topic; event i goes to `paths[i % len]`.
    paths: Vec<String>,
    bytes: Arc<ByteCount>,
}

impl Publisher {
    /// Connects to the gateway's publish endpoints for `topics`.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn connect(
        target: Target,
        ep: &Endpoint,
        topics: &[String],
    ) -> Result<Publisher, ClientError> {
        let bytes = Arc::new(ByteCount::default());
        let paths = topics
            .iter()
            .map(|topic| match target {
                Target::Feedgate => ep.path(&format!("topics/{topic}/events")),
                Target::Nchan => nchan::publish_path(ep, topic),
            })
            .collect();
        Ok(Publisher {
            http: HttpConn::connect(ep, bytes.clone()).await?,
            ep: ep.clone(),
            paths,
            bytes,
        })
    }

    /// Publishes event `i`, to topic `i mod K`.
    ///
    /// # Errors
    /// When the request fails or the gateway refuses it.
    pub async fn publish(&mut self, i: u64, payload: Vec<u8>) -> Result<(), ClientError> {
        let path = self.paths[(i % self.paths.len() as u64) as usize].clone();
        if self.http.is_closed() {
            self.http = HttpConn::connect(&self.ep, self.bytes.clone()).await?;
        }
        let (status, body) = self
            .http
            .request(Method::POST, &path, Some(Bytes::from(payload)))
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
