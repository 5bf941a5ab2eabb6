//! A subscription: one or more topics over one transport, each from its
//! cursor, yielding events, gaps and resets in order per topic.
//!
//! One topic goes on its own path (`/topics/{t}/…`), several on one
//! multiplexed connection (`/…?topics=LIST`); the choice is made each
//! time a connection opens, so adding a topic to a single-topic stream
//! reopens it with the LIST (a multiplexed WebSocket adds and drops topics
//! by message instead). Either way the subscriber keeps one cursor per
//! topic and resumes from them — after a changed topic set, a dropped
//! connection or a draining server (with [`SubscribeOptions::resume`]) —
//! losing and repeating nothing.

use std::sync::Arc;
use std::time::Duration;

use super::lean::Shape;
use super::linger::DRAIN_WITHIN;
use super::poll::PollConn;
use super::resume::{self, Reconnect};
use super::sse::{self, SseConn};
use super::topics::{Followed, Topics};
use super::ws::{self, WsStream};
use super::{ClientError, Delivery, Endpoint, Link, Resume, Wire, poll};
use crate::protocol::{Cursor, Request, Transport};
use crate::wire::ByteCount;

/// Tuning for a subscription.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// Short-poll interval.
    pub poll_interval: Duration,
    /// Long-poll hold asked of the server.
    pub longpoll_timeout: Duration,
    /// Reconnect from the cursors, with jitter, when the server restarts
    /// or the connection fails; `None` (the default): [`Subscriber::next`]
    /// returns the error instead.
    pub resume: Option<Resume>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            poll_interval: Duration::from_secs(1),
            longpoll_timeout: Duration::from_secs(30),
            resume: None,
        }
    }
}

/// Request counts of a subscription (a stream makes one per connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// HTTP requests made (or WebSocket handshakes).
    pub requests: u64,
    /// Responses that carried no event (empty, 304 or timed out).
    pub empty: u64,
}

/// A subscription over one transport: call [`Subscriber::next`] (or
/// [`Subscriber::next_with_topic`]) for each event, gap or reset.
pub struct Subscriber {
    ep: Endpoint,
    transport: Transport,
    opts: SubscribeOptions,
    wire: Wire,
    topics: Topics,
    conn: Conn,
    /// How the open stream's messages read (polls: each request's own).
    shape: Shape,
    bytes: Arc<ByteCount>,
    /// What the open stream's connection speaks (polls: their own).
    link: Option<Link>,
    stats: RequestStats,
    /// Reconnects after a restart or failure.
    reconnects: u64,
    /// Reconnect attempts that failed (refused, 503, cut).
    failed_reconnects: u64,
}

/// The connection a subscriber reads.
enum Conn {
    /// Let go of (a reconnect is under way, or a stream ended).
    Closed,
    Poll(PollConn),
    Sse(SseConn),
    Ws(Box<WsStream>),
    /// The topics changed under an open stream: it reopens with them on
    /// the next read.
    Stale,
    /// A long poll answered with the server's drain delay: a restart, said
    /// on the next read (after that answer's events).
    Draining(Duration),
}

impl Subscriber {
    /// Follows `topic` from `cursor`. Streams (SSE, WebSocket) connect
    /// now; polls on the first [`Subscriber::next`].
    ///
    /// # Errors
    /// When a stream cannot be opened (refused, non-2xx status).
    pub async fn connect(
        ep: &Endpoint,
        topic: &str,
        transport: Transport,
        cursor: Cursor,
        opts: SubscribeOptions,
    ) -> Result<Subscriber, ClientError> {
        Self::connect_with(ep, topic, transport, cursor, opts, Wire::default()).await
    }

    /// [`Subscriber::connect`], asking for the lean encoding and/or
    /// compression.
    ///
    /// # Errors
    /// As [`Subscriber::connect`].
    pub async fn connect_with(
        ep: &Endpoint,
        topic: &str,
        transport: Transport,
        cursor: Cursor,
        opts: SubscribeOptions,
        wire: Wire,
    ) -> Result<Subscriber, ClientError> {
        let topics = [(topic.to_owned(), cursor)];
        Self::connect_list(ep, &topics, transport, opts, wire).await
    }

    /// Follows every topic of `topics` from its cursor (`after: None`:
    /// from now) over one connection. A WebSocket may start with none and
    /// [`Subscriber::subscribe`] later.
    ///
    /// # Errors
    /// [`ClientError::Usage`] for a topic listed twice or an empty list
    /// (except on a WebSocket); as [`Subscriber::connect`].
    pub async fn connect_list(
        ep: &Endpoint,
        topics: &[(String, Cursor)],
        transport: Transport,
        opts: SubscribeOptions,
        wire: Wire,
    ) -> Result<Subscriber, ClientError> {
        if !Transport::SUBSCRIBERS.contains(&transport) {
            return Err(ClientError::Usage(format!(
                "{} is not a subscriber transport",
                transport.as_str()
            )));
        }
        let mut followed = Topics::default();
        for (name, cursor) in topics {
            if followed.index(name).is_some() {
                return Err(ClientError::Usage(format!("{name} is listed twice")));
            }
            followed.list.push(Followed::new(name, *cursor));
        }
        if followed.list.is_empty() && transport != Transport::Ws {
            return Err(ClientError::Usage(format!(
                "{} needs at least one topic",
                transport.as_str()
            )));
        }
        let mut s = Subscriber {
            // Its own sockets tracked, so that `close` can wait for them.
            ep: ep.clone().tracked(),
            transport,
            opts,
            wire,
            topics: followed,
            conn: Conn::Closed,
            shape: Shape::default(),
            // An endpoint's shared connection counts its bytes itself.
            bytes: ep.shared_bytes().unwrap_or_default(),
            link: None,
            stats: RequestStats::default(),
            reconnects: 0,
            failed_reconnects: 0,
        };
        s.open().await?;
        Ok(s)
    }

    /// The next event, gap or reset of any topic, waiting as the transport
    /// waits.
    ///
    /// # Errors
    /// On connection failure, a server error status or `error` message;
    /// [`ClientError::Closed`] when a stream ends.
    ///
    /// With [`SubscribeOptions::resume`], a restart or a failed connection
    /// is not an error: it waits (jittered) and reconnects from the
    /// cursors, and fails only with a final error or after
    /// [`Resume::give_up`].
    pub async fn next(&mut self) -> Result<Delivery, ClientError> {
        Ok(self.next_of().await?.1)
    }

    /// [`Subscriber::next`] with the name of the topic it is about.
    ///
    /// # Errors
    /// As [`Subscriber::next`].
    pub async fn next_with_topic(&mut self) -> Result<(String, Delivery), ClientError> {
        let (i, d) = self.next_of().await?;
        Ok((self.topics.list[i].name.clone(), d))
    }

    /// The next delivery and the index of its topic.
    async fn next_of(&mut self) -> Result<(usize, Delivery), ClientError> {
        loop {
            if let Some(next) = self.topics.next_delivery() {
                return Ok(next);
            }
            match (self.read().await, self.opts.resume) {
                (Ok(()), _) => {}
                (Err(e), Some(r)) if resume::retryable(&e) => self.reconnect(r, e).await?,
                (Err(e), _) => return Err(e),
            }
        }
    }

    /// Reads the connection until it yields steps.
    async fn read(&mut self) -> Result<(), ClientError> {
        if self.topics.list.is_empty() && !matches!(self.conn, Conn::Ws(_)) {
            return Err(ClientError::Usage(
                "the subscription follows no topic".into(),
            ));
        }
        match &mut self.conn {
            Conn::Closed => Err(ClientError::Closed),
            Conn::Stale => self.open().await,
            Conn::Draining(retry) => {
                let retry = Some(*retry);
                self.conn = Conn::Closed;
                Err(ClientError::Restarting { retry })
            }
            Conn::Sse(sse) => {
                let events = sse.read().await?;
                sse::decode(events, &mut self.topics, self.shape)
            }
            Conn::Ws(ws) => {
                let text = ws::read_text(ws).await?;
                ws::decode(text, &mut self.topics, self.shape)
            }
            Conn::Poll(_) => self.poll().await,
        }
    }

    /// One poll and its answer.
    async fn poll(&mut self) -> Result<(), ClientError> {
        let shape = Shape {
            multiplexed: self.topics.list.len() != 1,
            lean: self.wire.lean,
        };
        let long = self.transport == Transport::LongPoll;
        let path = self.path(if long { "longpoll" } else { "poll" });
        let Conn::Poll(conn) = &mut self.conn else {
            return Ok(());
        };
        let timing = (long, self.opts.poll_interval);
        let answer = conn
            .request(
                &self.ep,
                &self.bytes,
                &path,
                timing,
                self.wire,
                &mut self.stats,
            )
            .await?;
        let held = match &answer.body {
            Some(body) => poll::decode(body, &mut self.topics, shape)?,
            None => 0,
        };
        if held == 0 && answer.body.is_some() {
            self.stats.empty += 1;
        }
        if let Some(retry) = answer.draining {
            self.conn = Conn::Draining(retry);
        }
        Ok(())
    }

    /// Opens the transport's connection from the cursors (polls connect
    /// on their first request).
    async fn open(&mut self) -> Result<(), ClientError> {
        self.conn = Conn::Closed;
        self.shape = Shape {
            multiplexed: self.topics.list.len() != 1,
            lean: self.wire.lean,
        };
        self.conn = match self.transport {
            Transport::Sse => {
                let path = self.path("sse");
                self.stats.requests += 1;
                let sse = SseConn::open(&self.ep, &self.bytes, &path).await?;
                self.link = Some(sse.link);
                Conn::Sse(sse)
            }
            Transport::Ws => {
                let path = self.path("ws");
                self.stats.requests += 1;
                let deflate = self.wire.deflate;
                let (ws, route) =
                    ws::open_websocket_route(&self.ep, &self.bytes, &path, deflate).await?;
                self.link = Some(route.link);
                Conn::Ws(Box::new(ws))
            }
            _ => Conn::Poll(PollConn::default()),
        };
        Ok(())
    }

    /// Waits as [`Resume`] says after `cause`, then reconnects from the
    /// cursors, backing off while the server refuses.
    async fn reconnect(&mut self, r: Resume, cause: ClientError) -> Result<(), ClientError> {
        let mut plan = Reconnect::after(r, &cause);
        // Let go of the old connection now, not after the wait: a draining
        // server waits for its sockets to close (a WebSocket's close reply).
        self.conn = Conn::Closed;
        loop {
            tokio::time::sleep(plan.wait()).await;
            match self.open_proved().await {
                Ok(()) => {
                    self.reconnects += 1;
                    return Ok(());
                }
                Err(e) => {
                    self.failed_reconnects += 1;
                    plan.failed(e)?;
                }
            }
        }
    }

    /// [`Subscriber::open`], connecting a poll's keep-alive connection too
    /// (its first request would otherwise be the first proof).
    async fn open_proved(&mut self) -> Result<(), ClientError> {
        self.open().await?;
        if let Conn::Poll(p) = &mut self.conn {
            p.connect(&self.ep, &self.bytes).await?;
        }
        Ok(())
    }

    /// The request path for `action` (`poll`, `sse`, …): the topic's own
    /// with its cursor for one topic, the LIST of all for several.
    fn path(&self, action: &str) -> String {
        let mut q = Vec::new();
        let base = match self.topics.list.as_slice() {
            [one] => {
                if let Some(after) = one.cursor.after {
                    q.push(format!("after={after}"));
                    if let Some(e) = one.cursor.epoch {
                        q.push(format!("epoch={e}"));
                    }
                }
                format!("topics/{}/{action}", one.name)
            }
            _ => {
                let list = self.topics.list_text();
                if !list.is_empty() {
                    let list: String = form_urlencoded::byte_serialize(list.as_bytes()).collect();
                    q.push(format!("topics={list}"));
                }
                action.to_owned()
            }
        };
        q.extend(self.wire.query().map(str::to_owned));
        if action == "longpoll" {
            q.push(format!(
                "timeout={}",
                self.opts.longpoll_timeout.as_secs_f64()
            ));
        }
        match q.is_empty() {
            true => self.ep.path(&base),
            false => self.ep.path(&format!("{base}?{}", q.join("&"))),
        }
    }

    /// Follows one more topic from `cursor`: by message on a multiplexed
    /// WebSocket, by the next request's LIST on polls, by reopening a
    /// stream otherwise.
    ///
    /// # Errors
    /// [`ClientError::Usage`] when it is already followed; when the
    /// WebSocket message cannot be sent.
    pub async fn subscribe(&mut self, topic: &str, cursor: Cursor) -> Result<(), ClientError> {
        if self.topics.index(topic).is_some() {
            return Err(ClientError::Usage(format!("{topic} is already followed")));
        }
        self.topics.list.push(Followed::new(topic, cursor));
        let request = Request::Subscribe {
            topic: topic.to_owned(),
            after: cursor.text(),
        };
        self.changed(request).await
    }

    /// Stops following `topic`; nothing of it is yielded afterwards.
    ///
    /// # Errors
    /// When the WebSocket message cannot be sent.
    pub async fn unsubscribe(&mut self, topic: &str) -> Result<(), ClientError> {
        let Some(i) = self.topics.index(topic) else {
            return Ok(());
        };
        self.topics.remove(i);
        let request = Request::Unsubscribe {
            topic: topic.to_owned(),
        };
        self.changed(request).await
    }

    /// Tells the connection the topics changed (`request` says how).
    async fn changed(&mut self, request: Request) -> Result<(), ClientError> {
        match &mut self.conn {
            Conn::Ws(ws) if self.shape.multiplexed => ws::send(ws, &request).await?,
            Conn::Ws(ws) => {
                ws::close(ws).await;
                self.conn = Conn::Stale;
            }
            Conn::Sse(_) => self.conn = Conn::Stale,
            Conn::Poll(p) => p.forget_etag(),
            Conn::Closed | Conn::Stale | Conn::Draining(_) => {}
        }
        Ok(())
    }

    /// Closes the subscription (a WebSocket close handshake; HTTP just
    /// drops) and waits, at most a few seconds, until its sockets have
    /// closed: [`Subscriber::bytes`] is final then.
    pub async fn close(mut self) {
        if let Conn::Ws(ws) = &mut self.conn {
            ws::close(ws).await;
        }
        // Its connections close, reading what the server still says, so
        // that `bytes` is final (a shared connection closes with the
        // endpoint's last clone).
        self.conn = Conn::Closed;
        if let Some(sockets) = self.ep.sockets() {
            sockets.closed(DRAIN_WITHIN + Duration::from_secs(1)).await;
        }
    }

    /// How many times it reconnected (with [`SubscribeOptions::resume`]).
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// How many reconnect attempts failed (refused, `503`, cut) before
    /// those succeeded.
    pub fn failed_reconnects(&self) -> u64 {
        self.failed_reconnects
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The first topic's cursor after everything yielded so far (the
    /// cursor of a single-topic subscription).
    pub fn cursor(&self) -> Cursor {
        self.topics
            .list
            .first()
            .map(|f| f.cursor)
            .unwrap_or_default()
    }

    /// Every followed topic and its cursor after everything yielded.
    pub fn cursors(&self) -> impl Iterator<Item = (&str, Cursor)> {
        self.topics.list.iter().map(|f| (f.name.as_str(), f.cursor))
    }

    /// The LIST that resumes every topic (`topics=` of a new
    /// subscription, [`super::parse_list`]'s input).
    pub fn list(&self) -> String {
        self.topics.list_text()
    }

    /// Bytes this subscription sent and received, counted at its sockets
    /// (on an [`Endpoint::shared`] endpoint: the shared connection's, which
    /// every subscription through it reports alike).
    pub fn bytes(&self) -> &Arc<ByteCount> {
        &self.bytes
    }

    /// What its connection speaks (HTTP/1.1 or HTTP/2, TLS or not), once
    /// it has one.
    pub fn link(&self) -> Option<Link> {
        match &self.conn {
            Conn::Poll(p) => p.link().or(self.link),
            _ => self.link,
        }
    }

    /// Requests made and empty responses received.
    pub fn stats(&self) -> RequestStats {
        self.stats
    }
}
