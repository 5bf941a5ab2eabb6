//! The Server-Sent Events connection: one `text/event-stream` response,
//! read event by event (single topic: `/topics/{t}/sse`, several:
//! `/sse?topics=LIST`).
//!
//! A draining server's last event is `restart` with its delay; the stream
//! ends right after, which this connection reports as
//! [`ClientError::Restarting`] with that delay.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, StatusCode};

use super::error::protocol;
use super::lean::Shape;
use super::topics::{Step, Topics};
use super::{ClientError, Endpoint, HttpConn, Link, SseEvent, SseParser};
use crate::protocol::{Control, Cursor};
use crate::wire::ByteCount;

/// Longest line of a stream a subscriber reads.
const MAX_LINE: usize = 16 << 20;

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
    Ok(open_event_stream_link(ep, bytes, path).await?.0)
}

/// [`open_event_stream`], and what its connection speaks.
///
/// # Errors
/// As [`open_event_stream`].
pub async fn open_event_stream_link(
    ep: &Endpoint,
    bytes: &Arc<ByteCount>,
    path: &str,
) -> Result<(Incoming, Link), ClientError> {
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
        return Err(ClientError::status(status, &body));
    }
    Ok((res.into_body(), http.link()))
}

/// A subscriber's open event stream.
pub(super) struct SseConn {
    body: Incoming,
    /// What its connection speaks.
    pub link: Link,
    parser: SseParser,
    /// The delay of the server's `restart` event, once it sent one.
    restart: Option<Duration>,
}

impl SseConn {
    /// Opens the stream at `path`.
    ///
    /// # Errors
    /// As [`open_event_stream`].
    pub async fn open(
        ep: &Endpoint,
        bytes: &Arc<ByteCount>,
        path: &str,
    ) -> Result<SseConn, ClientError> {
        let (body, link) = open_event_stream_link(ep, bytes, path).await?;
        Ok(SseConn {
            body,
            link,
            parser: SseParser::new(MAX_LINE),
            restart: None,
        })
    }

    /// The next events, at least one (a `restart` is kept, not returned).
    ///
    /// # Errors
    /// [`ClientError::Restarting`] when the stream ends after a `restart`,
    /// [`ClientError::Closed`] when it ends otherwise; a broken connection
    /// or format.
    pub async fn read(&mut self) -> Result<Vec<SseEvent>, ClientError> {
        let mut events = Vec::new();
        while events.is_empty() {
            let Some(frame) = self.body.frame().await else {
                return Err(match self.restart {
                    Some(retry) => ClientError::Restarting { retry: Some(retry) },
                    None => ClientError::Closed,
                });
            };
            if let Ok(data) = frame?.into_data() {
                self.parser.feed(&data, &mut events).map_err(protocol)?;
            }
            events.retain(|ev| {
                let restart = ev.event == "restart";
                if restart {
                    // The server drains: the stream ends next.
                    let ms = ev.retry.unwrap_or_default();
                    self.restart = Some(Duration::from_millis(ms));
                }
                !restart
            });
        }
        Ok(events)
    }
}

/// Turns a stream's events into steps. A single-topic stream's `id:` is
/// the cursor after the event (`EPOCH:N`, or a lean stream's bare seq);
/// a multiplexed stream's id resumes every topic at once and is not the
/// client's to read: it keeps its cursors itself.
///
/// # Errors
/// An event or a control message that does not read.
pub(super) fn decode(
    events: Vec<SseEvent>,
    topics: &mut Topics,
    shape: Shape,
) -> Result<(), ClientError> {
    for ev in events {
        let id = match shape.multiplexed {
            false => ev.id.as_deref().and_then(|id| Cursor::parse(id).ok()),
            true => None,
        };
        match ev.event.as_str() {
            "" | "message" if shape.lean => {
                let seq = match shape.multiplexed {
                    false => Some(id.and_then(|c| c.after).unwrap_or(0)),
                    true => None,
                };
                topics.lean_event(shape, Bytes::from(ev.data), seq)?;
            }
            "" | "message" => topics.event(shape, Bytes::from(ev.data))?,
            kind => {
                let c = Control::from_fields(kind, ev.data.as_bytes()).map_err(protocol)?;
                topics.control(shape, c)?;
            }
        }
        if let Some(at) = id
            && !topics.list.is_empty()
        {
            topics.steps.push_back(Step::Stand(0, at));
        }
    }
    Ok(())
}
