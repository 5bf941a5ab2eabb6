//! Nchan's dialect, so the same run can measure Nchan (nginx +
//! libnginx-mod-nchan, configured by `bench/nchan.conf`):
//!
//! - publish: `POST /pub?id=C`, the raw payload as the message;
//! - long poll: `GET /sub?id=C`, one message per response, the cursor
//!   carried by `Last-Modified` / `Etag` → `If-Modified-Since` /
//!   `If-None-Match`;
//! - interval poll ("short poll"): `GET /poll?id=C`, the same headers, `304`
//!   when nothing is new;
//! - EventSource: `GET /sub?id=C` with `Accept: text/event-stream`;
//! - WebSocket: `GET /sub?id=C` upgraded, one text frame per message.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, StatusCode};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{ClientError, Endpoint, HttpConn, Link, RequestStats, SseParser, WsStream};
use crate::protocol::Transport;
use crate::wire::ByteCount;

/// One Nchan subscriber.
pub struct NchanSub {
    transport: Transport,
    ep: Endpoint,
    channel: String,
    poll_interval: Duration,
    bytes: Arc<ByteCount>,
    stats: RequestStats,
    conn: Conn,
    /// Offer permessage-deflate on a WebSocket (bench/nchan.conf has
    /// `nchan_deflate_message_for_websocket on`).
    deflate: bool,
    /// What the stream's connection spoke (polls: their own).
    link: Option<Link>,
}

enum Conn {
    Http {
        http: Option<HttpConn>,
        last_modified: Option<String>,
        etag: Option<String>,
        /// Wait an interval before the next interval poll (the last one
        /// brought nothing).
        wait: bool,
    },
    Sse {
        body: Incoming,
        parser: SseParser,
    },
    Ws(Box<WsStream>),
}

fn status_error(status: StatusCode, body: &[u8]) -> ClientError {
    ClientError::Status {
        status,
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

impl NchanSub {
    /// Subscribes to channel `channel`; streams connect now.
    ///
    /// # Errors
    /// When a stream cannot be opened.
    pub async fn connect(
        ep: &Endpoint,
        channel: &str,
        transport: Transport,
        poll_interval: Duration,
        deflate: bool,
    ) -> Result<NchanSub, ClientError> {
        let mut s = NchanSub {
            deflate,
            link: None,
            transport,
            ep: ep.clone(),
            channel: channel.to_owned(),
            poll_interval,
            bytes: Arc::new(ByteCount::default()),
            stats: RequestStats::default(),
            conn: Conn::Http {
                http: None,
                last_modified: None,
                etag: None,
                wait: false,
            },
        };
        match transport {
            Transport::Sse => s.open_sse().await?,
            Transport::Ws => s.open_ws().await?,
            _ => {}
        }
        Ok(s)
    }

    /// Bytes sent and received, counted at the socket.
    pub fn bytes(&self) -> &Arc<ByteCount> {
        &self.bytes
    }

    /// Requests made, empty responses received.
    pub fn stats(&self) -> RequestStats {
        self.stats
    }

    /// What its connection speaks, once it has one.
    pub fn link(&self) -> Option<Link> {
        match &self.conn {
            Conn::Http { http: Some(h), .. } => Some(h.link()),
            _ => self.link,
        }
    }

    async fn open_sse(&mut self) -> Result<(), ClientError> {
        let path = self.ep.path(&format!("sub?id={}", self.channel));
        self.stats.requests += 1;
        let (body, link) =
            crate::client::open_event_stream_link(&self.ep, &self.bytes, &path).await?;
        self.link = Some(link);
        self.conn = Conn::Sse {
            body,
            parser: SseParser::new(16 << 20),
        };
        Ok(())
    }

    async fn open_ws(&mut self) -> Result<(), ClientError> {
        let path = self.ep.path(&format!("sub?id={}", self.channel));
        self.stats.requests += 1;
        // nginx takes no WebSocket over HTTP/2 (RFC 8441): on --http2 the
        // client goes HTTP/1.1 for it, as browsers do.
        let (ws, route) =
            crate::client::open_websocket_route(&self.ep, &self.bytes, &path, self.deflate).await?;
        self.link = Some(route.link);
        self.conn = Conn::Ws(Box::new(ws));
        Ok(())
    }

    /// Waits for the next message(s) and appends them to `out`.
    ///
    /// # Errors
    /// On connection failure, an unexpected status, or a closed stream.
    pub async fn next(&mut self, out: &mut Vec<Bytes>) -> Result<(), ClientError> {
        let start = out.len();
        while out.len() == start {
            match &mut self.conn {
                Conn::Http { .. } => self.poll_once(out).await?,
                Conn::Sse { body, parser } => {
                    let Some(frame) = body.frame().await else {
                        return Err(ClientError::Closed);
                    };
                    let mut events = Vec::new();
                    if let Ok(data) = frame?.into_data() {
                        parser
                            .feed(&data, &mut events)
                            .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    }
                    out.extend(
                        events
                            .into_iter()
                            .filter(|e| e.event.is_empty() || e.event == "message")
                            .map(|e| Bytes::from(e.data)),
                    );
                }
                Conn::Ws(ws) => match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => return Err(ClientError::Closed),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(Message::Text(t))) => out.push(Bytes::from(t)),
                    Some(Ok(Message::Binary(b))) => out.push(b),
                    Some(Ok(_)) => {}
                },
            }
        }
        Ok(())
    }

    async fn poll_once(&mut self, out: &mut Vec<Bytes>) -> Result<(), ClientError> {
        let interval = self.transport == Transport::Poll;
        let path = self.ep.path(&format!(
            "{}?id={}",
            if interval { "poll" } else { "sub" },
            self.channel
        ));
        let Conn::Http {
            http,
            last_modified,
            etag,
            wait,
        } = &mut self.conn
        else {
            unreachable!("polls use Conn::Http");
        };
        if interval && *wait {
            tokio::time::sleep(self.poll_interval).await;
        }
        if http.as_ref().is_none_or(|h| h.is_closed()) {
            *http = Some(HttpConn::connect(&self.ep, self.bytes.clone()).await?);
        }
        let conn = http.as_mut().expect("connected above");
        let mut headers = Vec::new();
        if let Some(lm) = last_modified.as_ref() {
            headers.push(("if-modified-since", lm.clone()));
        }
        if let Some(e) = etag.as_ref() {
            headers.push(("if-none-match", e.clone()));
        }
        let res = conn.send(Method::GET, &path, &headers, None).await?;
        self.stats.requests += 1;
        let status = res.status();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (lm, et) = (header("last-modified"), header("etag"));
        let body = res.into_body().collect().await?.to_bytes();
        match status {
            StatusCode::OK => {
                if lm.is_some() {
                    *last_modified = lm;
                }
                if et.is_some() {
                    *etag = et;
                }
                *wait = false;
                out.push(body);
            }
            // Nothing new (interval poll), or a long poll that timed out.
            StatusCode::NOT_MODIFIED | StatusCode::REQUEST_TIMEOUT | StatusCode::NOT_FOUND => {
                self.stats.empty += 1;
                *wait = true;
            }
            s => return Err(status_error(s, &body)),
        }
        Ok(())
    }

    /// Ends the subscription (a close handshake on WebSocket).
    pub async fn close(self) {
        if let Conn::Ws(mut ws) = self.conn {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                ws.close(None).await?;
                while ws.next().await.transpose()?.is_some() {}
                Ok::<_, tokio_tungstenite::tungstenite::Error>(())
            })
            .await;
        }
    }
}

/// The publish request path for channel `channel`.
pub fn publish_path(ep: &Endpoint, channel: &str) -> String {
    ep.path(&format!("pub?id={channel}"))
}
