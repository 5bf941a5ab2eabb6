//! A multiplexed subscription: many topics over one connection on any
//! transport (`topics=LIST`, docs/protocol.md "Multiplexed subscriptions").
//!
//! The client keeps a cursor per topic and resumes with a LIST of all of
//! them, so a reconnect — or a change of the topic set on SSE and polls,
//! which reconnect with the new LIST — loses and repeats nothing on the
//! topics that stay. On a WebSocket, topics are added and removed by
//! message while events flow.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::{
    ClientError, CountedStream, Delivery, HttpConn, SseParser, SubscribeOptions, control,
    open_event_stream, open_websocket, parse_epoch, parse_event, protocol,
};
use crate::log::Cursor;
use crate::metrics::Transport;
use crate::params::topic_list;
use crate::wire::ByteCount;

use super::Endpoint;

/// Most topics a client-side LIST is parsed with (the server has its own
/// limit, `--max-topics-per-connection`).
const MAX_LIST: usize = 100_000;

/// Many topics over one connection.
pub struct MultiSubscriber {
    transport: Transport,
    ep: Endpoint,
    /// Every followed topic and where it stands (`after: None`: from now,
    /// until the server resolves it).
    topics: Vec<(String, Cursor)>,
    opts: SubscribeOptions,
    bytes: Arc<ByteCount>,
    pending: VecDeque<(String, Delivery)>,
    conn: Conn,
    /// The delay of the server's SSE `restart` event, once it sent one.
    restart_hint: Option<Duration>,
}

enum Conn {
    /// Polls; `None` until connected. A changed topic set needs no action:
    /// the next request carries it.
    Http(Option<HttpConn>),
    Sse {
        body: Incoming,
        parser: SseParser,
    },
    Ws(Box<WebSocketStream<CountedStream>>),
    /// SSE whose topic set changed: reopened on the next read.
    Stale,
}

#[derive(Deserialize)]
struct PollBody<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
    topics: std::collections::HashMap<String, Position>,
}

#[derive(Deserialize)]
struct Position {
    epoch: String,
    next: u64,
    gap: Option<serde_json::Value>,
    reset: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Named {
    topic: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    epoch: Option<String>,
    next: Option<u64>,
    code: Option<String>,
    message: Option<String>,
}

impl MultiSubscriber {
    /// Follows `topics` (each from its cursor; `after: None` is from now)
    /// over `transport`. Streams connect now; polls on the first
    /// [`MultiSubscriber::next`].
    ///
    /// # Errors
    /// When a stream cannot be opened (refused, non-2xx status).
    pub async fn connect(
        ep: &Endpoint,
        topics: &[(String, Cursor)],
        transport: Transport,
        opts: SubscribeOptions,
    ) -> Result<MultiSubscriber, ClientError> {
        if !Transport::SUBSCRIBERS.contains(&transport) {
            return Err(ClientError::Usage(format!(
                "{} is not a subscriber transport",
                transport.as_str()
            )));
        }
        let mut s = MultiSubscriber {
            transport,
            ep: ep.clone(),
            topics: topics.to_vec(),
            opts,
            bytes: Arc::new(ByteCount::default()),
            pending: VecDeque::new(),
            conn: Conn::Http(None),
            restart_hint: None,
        };
        match transport {
            Transport::Sse => s.open_sse().await?,
            Transport::Ws => s.open_ws().await?,
            _ => {}
        }
        Ok(s)
    }

    /// Every followed topic and the cursor after everything yielded.
    pub fn cursors(&self) -> &[(String, Cursor)] {
        &self.topics
    }

    /// The LIST that resumes every topic (`topics=` of a new subscription).
    pub fn list(&self) -> String {
        let items: Vec<String> = self
            .topics
            .iter()
            .map(|(t, c)| match (c.after, c.epoch) {
                (Some(n), Some(e)) => format!("{t}@{e}:{n}"),
                (Some(n), None) => format!("{t}@{n}"),
                (None, _) => t.clone(),
            })
            .collect();
        items.join(",")
    }

    /// Bytes this subscription sent and received, counted at its sockets.
    pub fn bytes(&self) -> &Arc<ByteCount> {
        &self.bytes
    }

    /// Follows one more topic from `cursor`: by message on a WebSocket, by
    /// the next request's LIST on polls, by reopening the stream on SSE.
    ///
    /// # Errors
    /// When the WebSocket message cannot be sent.
    pub async fn subscribe(&mut self, topic: &str, cursor: Cursor) -> Result<(), ClientError> {
        self.topics.push((topic.to_owned(), cursor));
        match &mut self.conn {
            Conn::Ws(ws) => {
                let mut msg = serde_json::json!({"type": "subscribe", "topic": topic});
                if let Some(after) = cursor.after {
                    msg["after"] = match cursor.epoch {
                        Some(e) => format!("{e}:{after}").into(),
                        None => after.to_string().into(),
                    };
                }
                ws.send(Message::text(msg.to_string())).await?;
            }
            Conn::Sse { .. } => self.conn = Conn::Stale,
            _ => {}
        }
        Ok(())
    }

    /// Stops following `topic`; nothing of it is yielded afterwards.
    ///
    /// # Errors
    /// When the WebSocket message cannot be sent.
    pub async fn unsubscribe(&mut self, topic: &str) -> Result<(), ClientError> {
        self.topics.retain(|(t, _)| t != topic);
        self.pending.retain(|(t, _)| t != topic);
        match &mut self.conn {
            Conn::Ws(ws) => {
                let msg = serde_json::json!({"type": "unsubscribe", "topic": topic});
                ws.send(Message::text(msg.to_string())).await?;
            }
            Conn::Sse { .. } => self.conn = Conn::Stale,
            _ => {}
        }
        Ok(())
    }

    /// The next event, gap or reset of any topic, with the topic's name.
    ///
    /// # Errors
    /// On connection failure, a server error status or error message;
    /// [`ClientError::Closed`] when a stream ends.
    pub async fn next(&mut self) -> Result<(String, Delivery), ClientError> {
        loop {
            if let Some((topic, d)) = self.pending.pop_front() {
                if let Some((_, c)) = self.topics.iter_mut().find(|(t, _)| *t == topic) {
                    advance(c, &d);
                    return Ok((topic, d));
                }
                // Unsubscribed meanwhile: drop what was in flight.
                continue;
            }
            match (&self.conn, self.transport) {
                (Conn::Stale, _) => self.open_sse().await?,
                (_, Transport::Poll | Transport::LongPoll) => self.poll_once().await?,
                (_, Transport::Sse) => self.read_sse().await?,
                _ => self.read_ws().await?,
            }
        }
    }

    fn path(&self, action: &str) -> String {
        let list: String = form_urlencoded::byte_serialize(self.list().as_bytes()).collect();
        self.ep.path(&format!("{action}?topics={list}"))
    }

    async fn open_sse(&mut self) -> Result<(), ClientError> {
        let path = self.path("sse");
        let body = open_event_stream(&self.ep, &self.bytes, &path).await?;
        self.conn = Conn::Sse {
            body,
            parser: SseParser::new(16 << 20),
        };
        Ok(())
    }

    async fn open_ws(&mut self) -> Result<(), ClientError> {
        let path = self.path("ws");
        let ws = open_websocket(&self.ep, &self.bytes, &path).await?;
        self.conn = Conn::Ws(Box::new(ws));
        Ok(())
    }

    async fn poll_once(&mut self) -> Result<(), ClientError> {
        let long = self.transport == Transport::LongPoll;
        let mut path = self.path(if long { "longpoll" } else { "poll" });
        if long {
            path.push_str(&format!(
                "&timeout={}",
                self.opts.longpoll_timeout.as_secs_f64()
            ));
        }
        let Conn::Http(http) = &mut self.conn else {
            unreachable!("polls use Conn::Http");
        };
        if !long && http.is_some() {
            tokio::time::sleep(self.opts.poll_interval).await;
        }
        if http.as_ref().is_none_or(|h| h.is_closed()) {
            *http = Some(HttpConn::connect(&self.ep, self.bytes.clone()).await?);
        }
        let conn = http.as_mut().expect("connected above");
        let (status, body) = conn.request(Method::GET, &path, None).await?;
        if status != StatusCode::OK {
            return Err(ClientError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let parsed: PollBody = serde_json::from_slice(&body).map_err(protocol)?;
        for (topic, pos) in &parsed.topics {
            for (kind, v) in [("reset", &pos.reset), ("gap", &pos.gap)] {
                if let Some(v) = v
                    && let Some(d) = control(kind, v.to_string().as_bytes())?
                {
                    self.pending.push_back((topic.clone(), d));
                }
            }
        }
        for raw in parsed.events {
            let json = body.slice_ref(raw.get().as_bytes());
            let topic = event_topic(&json)?;
            self.pending
                .push_back((topic, Delivery::Event(parse_event(json)?)));
        }
        // Every topic's position stands, events or not: a "from now" topic
        // learns its head and epoch this way.
        for (topic, c) in &mut self.topics {
            if let Some(pos) = parsed.topics.get(topic.as_str()) {
                *c = Cursor::at(pos.next, parse_epoch(&pos.epoch)?);
            }
        }
        // The positions above are where the answer leaves each topic; the
        // pending deliveries move cursors again as they are yielded, which
        // lands on the same place.
        Ok(())
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
            match ev.event.as_str() {
                "" | "message" => {
                    let json = Bytes::from(ev.data);
                    let topic = event_topic(&json)?;
                    self.pending
                        .push_back((topic, Delivery::Event(parse_event(json)?)));
                }
                // The server drains: the stream ends next.
                "restart" => {
                    let ms = ev.retry.unwrap_or_default();
                    self.restart_hint = Some(Duration::from_millis(ms));
                }
                kind => self.named(kind, ev.data.as_bytes())?,
            }
        }
        Ok(())
    }

    async fn read_ws(&mut self) -> Result<(), ClientError> {
        let Conn::Ws(ws) = &mut self.conn else {
            unreachable!("ws uses Conn::Ws");
        };
        let text = loop {
            let Some(msg) = ws.next().await else {
                return Err(ClientError::Closed);
            };
            match msg? {
                Message::Text(t) => break Bytes::from(t),
                Message::Close(frame) => return Err(super::closed_by(frame)),
                _ => {}
            }
        };
        if text.starts_with(br#"{"type":"#) {
            let kind = serde_json::from_slice::<Named>(&text)
                .map_err(protocol)?
                .kind
                .unwrap_or_default();
            return self.named(&kind, &text);
        }
        let topic = event_topic(&text)?;
        self.pending
            .push_back((topic, Delivery::Event(parse_event(text)?)));
        Ok(())
    }

    /// A control message naming its topic: `subscribed` sets the topic's
    /// position; `gap` / `reset` are delivered; `error` fails the call.
    fn named(&mut self, kind: &str, json: &[u8]) -> Result<(), ClientError> {
        let n: Named = serde_json::from_slice(json).map_err(protocol)?;
        if kind == "error" {
            return Err(ClientError::Protocol(format!(
                "the server refused {}: {} ({})",
                n.topic.unwrap_or_default(),
                n.message.unwrap_or_default(),
                n.code.unwrap_or_default()
            )));
        }
        let topic = n
            .topic
            .ok_or_else(|| protocol(format!("{kind} without a topic")))?;
        if kind == "subscribed" {
            if let (Some(e), Some(next), Some((_, c))) = (
                n.epoch.as_deref(),
                n.next,
                self.topics.iter_mut().find(|(t, _)| *t == topic),
            ) {
                *c = Cursor::at(next, parse_epoch(e)?);
            }
        } else if let Some(d) = control(kind, json)? {
            self.pending.push_back((topic, d));
        }
        Ok(())
    }
}

/// Moves a topic's cursor past a delivery.
fn advance(c: &mut Cursor, d: &Delivery) {
    match d {
        Delivery::Event(e) => c.after = Some(e.seq),
        Delivery::Gap { resume_seq, .. } => c.after = Some(resume_seq.saturating_sub(1)),
        Delivery::Reset { epoch, .. } => *c = Cursor::at(0, *epoch),
    }
}

/// The `topic` of an event's JSON.
fn event_topic(json: &[u8]) -> Result<String, ClientError> {
    #[derive(Deserialize)]
    struct Head {
        topic: String,
    }
    Ok(serde_json::from_slice::<Head>(json)
        .map_err(protocol)?
        .topic)
}

/// Parses a LIST (`a,b@5,c@EPOCH:3`) into topics and cursors, for the
/// command line.
///
/// # Errors
/// [`ClientError::Usage`] for a malformed LIST.
pub fn parse_list(text: &str) -> Result<Vec<(String, Cursor)>, ClientError> {
    let items = topic_list(text, MAX_LIST).map_err(|e| ClientError::Usage(e.to_string()))?;
    Ok(items
        .into_iter()
        .map(|(t, c)| (t.as_str().to_owned(), c.unwrap_or_default()))
        .collect())
}
