//! The Rust client: publish, and subscribe over any of the four transports
//! with one interface. `feedgate tail`, `feedgate publish`, the bench and the
//! integration tests all use it.
//!
//! Every connection it opens runs through [`CountingIo`], so a client knows
//! exactly how many bytes it sent and received (the bench compares these with
//! the server's `/metrics`).

mod endpoint;
mod lean;
mod multi;
mod resume;
mod sse_parser;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use endpoint::Endpoint;
pub use lean::{Wire, WsStream, open_websocket_with};
pub use multi::{MultiSubscriber, parse_list};
pub use resume::Resume;
pub use sse_parser::{SseError, SseEvent, SseParser};

use crate::log::{Cursor, Epoch};
use crate::metrics::Transport;
use crate::params::cursor_text;
use crate::wire::{ByteCount, CountingIo};

/// Read buffer of a subscriber's WebSocket. tungstenite zero-fills this
/// much on every read call, so bigger is slower as well as fatter.
const CLIENT_WS_READ_BUFFER: usize = 4 << 10;

/// A client socket that counts its bytes.
pub type CountedStream = CountingIo<TcpStream, Arc<ByteCount>>;

/// What went wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or the socket failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// HTTP-level failure.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// WebSocket-level failure.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server answered with an error status.
    #[error("server answered {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The (JSON error) body.
        body: String,
    },
    /// The server sent something this client cannot read.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The stream ended (the server closed it).
    #[error("the server closed the stream")]
    Closed,
    /// The server is draining for a restart (WebSocket close 1012, an SSE
    /// `restart` event, a long poll answered with `Retry-After-Ms`): come
    /// back after `retry`, its delay for this client, or a random delay
    /// when it gave none ([`Resume`] does this by itself).
    #[error("the server is restarting")]
    Restarting {
        /// The server's delay, drawn at random per client.
        retry: Option<Duration>,
    },
    /// A malformed URL or argument.
    #[error("{0}")]
    Usage(String),
}

/// An event as a client receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// Its seq.
    pub seq: u64,
    /// Its publish time, µs since the Unix epoch.
    pub time_us: u64,
    /// The exact event JSON the server sent.
    pub json: Bytes,
}

/// One thing a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An event.
    Event(ReceivedEvent),
    /// The server skipped `missed` events no longer retained.
    Gap {
        /// How many.
        missed: u64,
        /// The next seq to come.
        resume_seq: u64,
    },
    /// The cursor was from another epoch or past the head; delivery restarts
    /// from the oldest retained event of `epoch`.
    Reset {
        /// `epoch_changed` or `cursor_ahead`.
        reason: String,
        /// The log's current epoch.
        epoch: Epoch,
    },
}

/// Tuning for a subscription.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// Short-poll interval.
    pub poll_interval: Duration,
    /// Long-poll hold asked of the server.
    pub longpoll_timeout: Duration,
    /// Reconnect from the cursor, with jitter, when the server restarts or
    /// the connection fails; `None` (the default): [`Subscriber::next`]
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

/// Request counts of a polling subscription (streams make one request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// HTTP requests made (or WebSocket handshakes).
    pub requests: u64,
    /// Responses that carried no event (empty, 304 or timed out).
    pub empty: u64,
}

/// Publishes one JSON value; returns the acknowledged seq.
///
/// # Errors
/// [`ClientError::Status`] with the server's JSON error for a 4xx/5xx.
pub async fn publish(
    ep: &Endpoint,
    topic: &str,
    json: impl Into<Bytes>,
) -> Result<u64, ClientError> {
    let bytes = Arc::new(ByteCount::default());
    let mut http = HttpConn::connect(ep, bytes).await?;
    let (status, body) = http
        .request(
            Method::POST,
            &ep.path(&format!("topics/{topic}/events")),
            Some(json.into()),
        )
        .await?;
    if status != StatusCode::CREATED {
        return Err(ClientError::Status {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    #[derive(Deserialize)]
    struct Ack {
        seq: u64,
    }
    let ack: Ack =
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok(ack.seq)
}

/// Opens a `text/event-stream` response at `path` on a new counted
/// connection and returns its (endless) body.
///
/// # Errors
/// When connecting fails or the server answers other than `200`.
pub async fn open_event_stream(
    ep: &Endpoint,
    bytes: &Arc<ByteCount>,
    path: &str,
) -> Result<Incoming, ClientError> {
    let mut http = HttpConn::connect(ep, bytes.clone()).await?;
    let res = http
        .send(
            Method::GET,
            path,
            &[("accept", "text/event-stream".into())],
            None,
        )
        .await?;
    if res.status() != StatusCode::OK {
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        return Err(ClientError::Status {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    Ok(res.into_body())
}

/// Opens a WebSocket at `path` on a new counted connection. A refused
/// upgrade comes back as [`ClientError::Status`] with the server's body.
///
/// # Errors
/// When connecting or the handshake fails.
pub async fn open_websocket(
    ep: &Endpoint,
    bytes: &Arc<ByteCount>,
    path: &str,
) -> Result<WebSocketStream<CountedStream>, ClientError> {
    let stream = ep.connect(bytes.clone()).await?;
    let url = format!("ws://{}{}", ep.host_header(), path);
    // tungstenite allocates and zero-fills its whole read buffer per
    // socket (128 KiB by default): with thousands of subscribers in one
    // process (the bench) that is gigabytes. Frames larger than this
    // still get room for their full length once their header is read.
    let conf = WebSocketConfig::default().read_buffer_size(CLIENT_WS_READ_BUFFER);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(conf))
        .await
        .map_err(handshake_error)?;
    Ok(ws)
}

/// A failed WebSocket handshake as the client reports it: a refused
/// upgrade carries the server's status and (JSON error) body.
fn handshake_error(e: tokio_tungstenite::tungstenite::Error) -> ClientError {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(res) => ClientError::Status {
            status: res.status(),
            body: res
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        },
        e => ClientError::Ws(e),
    }
}

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

/// A subscription over one transport: call [`Subscriber::next`] for each
/// event, gap or reset, in order.
pub struct Subscriber {
    transport: Transport,
    ep: Endpoint,
    topic: String,
    cursor: Cursor,
    opts: SubscribeOptions,
    bytes: Arc<ByteCount>,
    stats: RequestStats,
    pending: VecDeque<Delivery>,
    conn: Conn,
    /// The delay of the server's SSE `restart` event, once it sent one.
    restart_hint: Option<Duration>,
    /// Reconnects after a restart or failure.
    reconnects: u64,
    /// Reconnect attempts that failed (refused, 503, cut).
    failed_reconnects: u64,
    /// Lean encoding, deflate.
    wire: Wire,
    /// The seq of the last lean event (lean events carry none).
    lean_seq: u64,
}

enum Conn {
    Http {
        http: Option<HttpConn>,
        etag: Option<String>,
        polled: bool,
    },
    Sse {
        body: Incoming,
        parser: SseParser,
    },
    Ws(Box<WsStream>),
}

#[derive(Deserialize)]
struct PollBody<'a> {
    epoch: String,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
    next: u64,
    gap: Option<GapBody>,
    reset: Option<ResetBody>,
}

#[derive(Deserialize)]
struct GapBody {
    missed: u64,
    resume_seq: u64,
}

#[derive(Deserialize)]
struct ResetBody {
    reason: String,
    epoch: String,
}

#[derive(Deserialize)]
struct EventHead {
    seq: u64,
    time: u64,
}

#[derive(Deserialize)]
struct Control {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    epoch: Option<String>,
    next: Option<u64>,
    missed: Option<u64>,
    resume_seq: Option<u64>,
    reason: Option<String>,
}

fn protocol(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

fn parse_epoch(s: &str) -> Result<Epoch, ClientError> {
    s.parse().map_err(protocol)
}

/// Parses one event JSON as the server sent it.
///
/// # Errors
/// When it is not an event object.
pub fn parse_event(json: Bytes) -> Result<ReceivedEvent, ClientError> {
    let head: EventHead = serde_json::from_slice(&json).map_err(protocol)?;
    Ok(ReceivedEvent {
        seq: head.seq,
        time_us: head.time,
        json,
    })
}

impl Subscriber {
    /// Opens a subscription. Streams (SSE, WebSocket) connect now; polls
    /// connect on the first [`Subscriber::next`].
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
    /// permessage-deflate.
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
        let bytes = Arc::new(ByteCount::default());
        let mut s = Subscriber {
            transport,
            ep: ep.clone(),
            topic: topic.to_owned(),
            cursor,
            opts,
            bytes,
            stats: RequestStats::default(),
            pending: VecDeque::new(),
            conn: Conn::Http {
                http: None,
                etag: None,
                polled: false,
            },
            restart_hint: None,
            reconnects: 0,
            failed_reconnects: 0,
            wire,
            lean_seq: cursor.after.unwrap_or(0),
        };
        if !Transport::SUBSCRIBERS.contains(&transport) {
            return Err(ClientError::Usage(format!(
                "{} is not a subscriber transport",
                transport.as_str()
            )));
        }
        s.open().await?;
        Ok(s)
    }

    /// Opens the transport's connection from the cursor (polls connect on
    /// their first request).
    async fn open(&mut self) -> Result<(), ClientError> {
        self.restart_hint = None;
        match self.transport {
            Transport::Sse => self.open_sse().await,
            Transport::Ws => self.open_ws().await,
            _ => {
                self.conn = Conn::Http {
                    http: None,
                    etag: None,
                    polled: false,
                };
                Ok(())
            }
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

    /// The cursor after everything yielded so far.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Bytes this subscription sent and received, counted at its sockets.
    pub fn bytes(&self) -> &Arc<ByteCount> {
        &self.bytes
    }

    /// Requests made and empty responses received.
    pub fn stats(&self) -> RequestStats {
        self.stats
    }

    fn query(&self) -> String {
        let mut q = String::new();
        if let Some(after) = self.cursor.after {
            q.push_str(&format!("after={after}"));
            if let Some(e) = self.cursor.epoch {
                q.push_str(&format!("&epoch={e}"));
            }
        }
        if let Some(enc) = self.wire.query() {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(enc);
        }
        q
    }

    fn topic_path(&self, action: &str) -> String {
        let q = self.query();
        let base = self.ep.path(&format!("topics/{}/{action}", self.topic));
        if q.is_empty() {
            base
        } else {
            format!("{base}?{q}")
        }
    }

    async fn open_sse(&mut self) -> Result<(), ClientError> {
        let path = self.topic_path("sse");
        self.stats.requests += 1;
        let body = open_event_stream(&self.ep, &self.bytes, &path).await?;
        self.conn = Conn::Sse {
            body,
            parser: SseParser::new(16 << 20),
        };
        Ok(())
    }

    async fn open_ws(&mut self) -> Result<(), ClientError> {
        let path = self.topic_path("ws");
        self.stats.requests += 1;
        let ws = open_websocket_with(&self.ep, &self.bytes, &path, self.wire.deflate).await?;
        self.conn = Conn::Ws(Box::new(ws));
        Ok(())
    }

    /// The next event, gap or reset, waiting as the transport waits.
    ///
    /// # Errors
    /// On connection failure or a server error status; [`ClientError::Closed`]
    /// when a stream ends.
    ///
    /// With [`SubscribeOptions::resume`], a restart or a failed connection
    /// is not an error: it waits (jittered) and reconnects from the cursor,
    /// and fails only with a final error or after [`Resume::give_up`].
    pub async fn next(&mut self) -> Result<Delivery, ClientError> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                self.advance(&d);
                return Ok(d);
            }
            let step = match self.transport {
                Transport::Poll | Transport::LongPoll => self.poll_once().await,
                Transport::Sse => self.read_sse().await,
                _ => self.read_ws().await,
            };
            match (step, self.opts.resume) {
                (Ok(()), _) => {}
                (Err(e), Some(r)) if resume::retryable(&e) => self.reconnect(r, e).await?,
                (Err(e), _) => return Err(e),
            }
        }
    }

    /// Waits as [`Resume`] says after `cause`, then reconnects from the
    /// cursor, backing off while the server refuses.
    async fn reconnect(&mut self, r: Resume, cause: ClientError) -> Result<(), ClientError> {
        let hint = match cause {
            ClientError::Restarting { retry } => retry,
            _ => None,
        };
        let given_up = tokio::time::Instant::now() + r.give_up;
        // A drain signal waits the server's (or a random) delay; a
        // connection that just broke retries after a first backoff.
        let mut wait = match cause {
            ClientError::Restarting { .. } => r.first_wait(hint),
            _ => r.backoff(1),
        };
        let mut failures = 1;
        // Let go of the old connection now, not after the wait: a draining
        // server waits for its sockets to close (a WebSocket's close reply).
        self.conn = Conn::Http {
            http: None,
            etag: None,
            polled: false,
        };
        loop {
            tokio::time::sleep(wait).await;
            let opened = self.open().await;
            // Polls connect lazily: their first request proves the server.
            let proved = match (opened, self.transport) {
                (Ok(()), Transport::Poll | Transport::LongPoll) => self.probe_poll().await,
                (r, _) => r,
            };
            let e = match proved {
                Ok(()) => {
                    self.reconnects += 1;
                    return Ok(());
                }
                Err(e) => e,
            };
            self.failed_reconnects += 1;
            match e {
                e if !resume::retryable(&e) => return Err(e),
                e if tokio::time::Instant::now() >= given_up => return Err(e),
                ClientError::Restarting { retry } => wait = r.first_wait(retry),
                _ => {
                    wait = r.backoff(failures);
                    failures += 1;
                }
            }
        }
    }

    /// Connects a poll's keep-alive connection, so a reconnect is proved
    /// before the wait ends.
    async fn probe_poll(&mut self) -> Result<(), ClientError> {
        let Conn::Http { http, .. } = &mut self.conn else {
            return Ok(());
        };
        *http = Some(HttpConn::connect(&self.ep, self.bytes.clone()).await?);
        Ok(())
    }

    /// Closes the subscription (a WebSocket close handshake; HTTP just drops).
    pub async fn close(mut self) {
        if let Conn::Ws(ws) = &mut self.conn {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                WebSocketStream::close(ws, None).await?;
                while ws.next().await.transpose()?.is_some() {}
                Ok::<_, tokio_tungstenite::tungstenite::Error>(())
            })
            .await;
        }
    }

    fn advance(&mut self, d: &Delivery) {
        match d {
            Delivery::Event(e) => self.cursor.after = Some(e.seq),
            Delivery::Gap { resume_seq, .. } => {
                self.cursor.after = Some(resume_seq.saturating_sub(1))
            }
            Delivery::Reset { epoch, .. } => {
                self.cursor = Cursor::at(0, *epoch);
            }
        }
    }

    async fn poll_once(&mut self) -> Result<(), ClientError> {
        let long = self.transport == Transport::LongPoll;
        let path = if long {
            let t = self.opts.longpoll_timeout.as_secs_f64();
            let p = self.topic_path("longpoll");
            let sep = if p.contains('?') { '&' } else { '?' };
            format!("{p}{sep}timeout={t}")
        } else {
            self.topic_path("poll")
        };
        let Conn::Http { http, etag, polled } = &mut self.conn else {
            unreachable!("polling transports use Conn::Http");
        };
        if !long && *polled {
            tokio::time::sleep(self.opts.poll_interval).await;
        }
        *polled = true;
        if http.as_ref().is_none_or(|h| h.is_closed()) {
            *http = Some(HttpConn::connect(&self.ep, self.bytes.clone()).await?);
        }
        let conn = http.as_mut().expect("connected above");
        // Only a short poll revalidates (304); a long poll waits instead,
        // so the header would be wasted bytes on every request.
        let mut headers: Vec<(&str, String)> = etag
            .iter()
            .filter(|_| !long)
            .map(|e| ("if-none-match", e.clone()))
            .collect();
        headers.extend(self.wire.accept_encoding());
        let res = conn.send(Method::GET, &path, &headers, None).await?;
        self.stats.requests += 1;
        let status = res.status();
        if let Some(e) = res.headers().get("etag").and_then(|v| v.to_str().ok()) {
            *etag = Some(e.to_owned());
        }
        // A `200` with a retry hint: the server drains (after this answer,
        // which still moves the cursor).
        let draining = (status == StatusCode::OK)
            .then(|| retry_hint(res.headers()))
            .flatten();
        let gzipped = lean::gzipped(res.headers());
        let mut body = res.into_body().collect().await?.to_bytes();
        if gzipped {
            body = lean::gunzip(&body)?;
        }
        if status == StatusCode::NOT_MODIFIED {
            self.stats.empty += 1;
            return Ok(());
        }
        if status != StatusCode::OK {
            return Err(ClientError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let parsed: PollBody = serde_json::from_slice(&body).map_err(protocol)?;
        let epoch = parse_epoch(&parsed.epoch)?;
        if let Some(r) = parsed.reset {
            self.pending.push_back(Delivery::Reset {
                reason: r.reason,
                epoch: parse_epoch(&r.epoch)?,
            });
        }
        if let Some(g) = parsed.gap {
            self.pending.push_back(Delivery::Gap {
                missed: g.missed,
                resume_seq: g.resume_seq,
            });
        }
        if parsed.events.is_empty() {
            self.stats.empty += 1;
        }
        // Lean events count back from `next`: they end there.
        let first = parsed.next + 1 - parsed.events.len() as u64;
        for (i, raw) in parsed.events.into_iter().enumerate() {
            let json = body.slice_ref(raw.get().as_bytes());
            let event = match self.wire.lean {
                true => lean::event(first + i as u64, json),
                false => parse_event(json)?,
            };
            self.pending.push_back(Delivery::Event(event));
        }
        // The response's cursor stands even when it delivered nothing (a
        // "from now" poll learns the head and epoch this way).
        self.cursor.epoch = Some(epoch);
        if self.pending.is_empty() {
            self.cursor.after = Some(parsed.next);
        }
        match draining {
            // Events first: the restart is reported on the call after them.
            Some(retry) if self.pending.is_empty() => {
                Err(ClientError::Restarting { retry: Some(retry) })
            }
            Some(_) => {
                self.conn = Conn::Http {
                    http: None,
                    etag: None,
                    polled: false,
                };
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn read_sse(&mut self) -> Result<(), ClientError> {
        let Conn::Sse { body, parser } = &mut self.conn else {
            unreachable!("sse uses Conn::Sse");
        };
        let mut events = Vec::new();
        while events.is_empty() {
            let Some(frame) = body.frame().await else {
                return Err(match self.restart_hint {
                    Some(retry) => ClientError::Restarting { retry: Some(retry) },
                    None => ClientError::Closed,
                });
            };
            if let Ok(data) = frame?.into_data() {
                parser.feed(&data, &mut events).map_err(protocol)?;
            }
        }
        for ev in events {
            let id_cursor = ev.id.as_deref().and_then(|id| cursor_text(id).ok());
            match ev.event.as_str() {
                "" | "message" if self.wire.lean => {
                    let seq = id_cursor.and_then(|c| c.after).unwrap_or(0);
                    let event = lean::event(seq, Bytes::from(ev.data));
                    self.pending.push_back(Delivery::Event(event));
                }
                "" | "message" => {
                    self.pending
                        .push_back(Delivery::Event(parse_event(Bytes::from(ev.data))?));
                }
                // The server drains: the stream ends next.
                "restart" => {
                    let ms = ev.retry.unwrap_or_default();
                    self.restart_hint = Some(Duration::from_millis(ms));
                }
                kind => {
                    if let Some(d) = control(kind, ev.data.as_bytes())? {
                        self.pending.push_back(d);
                    }
                }
            }
            if let Some(c) = id_cursor {
                self.cursor.epoch = c.epoch.or(self.cursor.epoch);
                if self.pending.is_empty() {
                    self.cursor.after = c.after;
                }
            }
        }
        Ok(())
    }

    async fn read_ws(&mut self) -> Result<(), ClientError> {
        let Conn::Ws(ws) = &mut self.conn else {
            unreachable!("ws uses Conn::Ws");
        };
        loop {
            let Some(msg) = ws.next().await else {
                return Err(ClientError::Closed);
            };
            let text = match msg? {
                Message::Text(t) => t,
                Message::Close(frame) => return Err(closed_by(frame)),
                _ => continue,
            };
            let mut bytes: Bytes = Bytes::from(text);
            if self.wire.lean {
                // `#` and a control message, or an event's data.
                if bytes.starts_with(b"#") {
                    bytes = bytes.slice(1..);
                    let c: Control = serde_json::from_slice(&bytes).map_err(protocol)?;
                    if let Some(n) = c.next {
                        self.lean_seq = n;
                    }
                } else {
                    self.lean_seq += 1;
                    let event = lean::event(self.lean_seq, bytes);
                    self.pending.push_back(Delivery::Event(event));
                    return Ok(());
                }
            }
            if bytes.starts_with(br#"{"type":"#) {
                let c: Control = serde_json::from_slice(&bytes).map_err(protocol)?;
                let kind = c.kind.unwrap_or_default();
                if kind == "ready" {
                    if let (Some(e), Some(n)) = (c.epoch.as_deref(), c.next) {
                        self.cursor = Cursor::at(n, parse_epoch(e)?);
                    }
                    continue;
                }
                if let Some(d) = control(&kind, &bytes)? {
                    self.pending.push_back(d);
                    return Ok(());
                }
                continue;
            }
            self.pending.push_back(Delivery::Event(parse_event(bytes)?));
            return Ok(());
        }
    }
}

/// What a WebSocket close frame means to a subscriber: 1012 (service
/// restart) is a draining server, anything else the end of the stream.
pub(crate) fn closed_by(
    frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>,
) -> ClientError {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    match frame {
        Some(f) if f.code == CloseCode::Restart => ClientError::Restarting { retry: None },
        _ => ClientError::Closed,
    }
}

/// The `Retry-After-Ms` (else `Retry-After`, seconds) of a long poll that
/// a draining server answered.
fn retry_hint(h: &hyper::HeaderMap) -> Option<Duration> {
    let num = |name: &str| h.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    num("retry-after-ms")
        .map(Duration::from_millis)
        .or_else(|| num("retry-after").map(Duration::from_secs))
}

/// Decodes a gap or reset signal's JSON (SSE data or WebSocket message);
/// `None` for signals a subscriber need not act on (`ready`).
///
/// # Errors
/// [`ClientError::Protocol`] when the JSON does not fit the signal `kind`.
pub fn control(kind: &str, json: &[u8]) -> Result<Option<Delivery>, ClientError> {
    let c: Control = serde_json::from_slice(json).map_err(protocol)?;
    Ok(match kind {
        "gap" => Some(Delivery::Gap {
            missed: c.missed.ok_or_else(|| protocol("gap without missed"))?,
            resume_seq: c
                .resume_seq
                .ok_or_else(|| protocol("gap without resume_seq"))?,
        }),
        "reset" => Some(Delivery::Reset {
            reason: c.reason.unwrap_or_default(),
            epoch: parse_epoch(c.epoch.as_deref().unwrap_or(""))?,
        }),
        _ => None,
    })
}
