//! What a client may say on a multiplexed WebSocket (`/ws?topics=LIST`):
//! `subscribe` and `unsubscribe` messages, which add topics to and remove
//! them from the socket's [`Feed`] while events flow.
//!
//! ```text
//! → {"type":"subscribe","topic":"T","after":"CURSOR"}   (after: optional)
//! ← {"type":"subscribed","topic":"T","epoch":"…","next":N}   (from the feed)
//! → {"type":"unsubscribe","topic":"T"}
//! ← {"type":"unsubscribed","topic":"T"}
//! ← {"type":"error","code":"…","topic":"T","message":"…"}   (socket stays open)
//! ```
//!
//! A subscribe is checked as a `topics=` item is — topic name, cursor, the
//! per-connection limit, the token's grant — and creates no topic. Its
//! answer is the feed's opening delivery for the topic, so it comes in
//! order with the topic's first events.

use serde::Deserialize;

use crate::app::App;
use crate::error::ApiError;
use crate::log::{Cursor, Topic};
use crate::params;
use crate::transport::feed::Feed;
use crate::transport::signal::{ErrorMessage, NoFields, Signal};

/// One message from the client.
#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    kind: String,
    topic: Option<String>,
    /// `"N"`, `"EPOCH:N"` or a number; absent or null: from now.
    #[serde(default)]
    after: Option<serde_json::Value>,
}

/// What the session does about one client message.
pub(crate) enum Answer {
    /// Nothing now: a subscribe's answer is the feed's opening delivery.
    Nothing,
    /// Send this control message.
    Reply(String),
    /// Stop following this (followed) topic, then answer `unsubscribed`;
    /// a subscribe not yet answered is answered first, so every subscribe
    /// gets its `subscribed`, in order.
    Unsubscribe(Topic),
}

/// Acts on one client text message.
pub(crate) async fn handle(app: &App, token: Option<&str>, feed: &mut Feed, text: &str) -> Answer {
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            return Answer::Reply(error(
                "invalid_message",
                None,
                &format!("not a control message: {e}"),
            ));
        }
    };
    let name = req.topic.as_deref();
    let result = match req.kind.as_str() {
        "subscribe" => subscribe(app, token, feed, name, req.after)
            .await
            .map(|()| Answer::Nothing),
        "unsubscribe" => unsubscribe(feed, name).map(Answer::Unsubscribe),
        other => Err(Refusal::new(
            "unsupported",
            format!("unknown message type {other:?}: subscribe or unsubscribe"),
        )),
    };
    result.unwrap_or_else(|r| Answer::Reply(error(r.code, name, &r.message)))
}

/// Why a message was refused: an error code and a message.
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(code: &'static str, message: String) -> Self {
        Refusal { code, message }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::new(e.code(), e.to_string())
    }
}

async fn subscribe(
    app: &App,
    token: Option<&str>,
    feed: &mut Feed,
    name: Option<&str>,
    after: Option<serde_json::Value>,
) -> Result<(), Refusal> {
    let topic = topic(name)?;
    if feed.follows(&topic) {
        return Err(Refusal::new(
            "already_subscribed",
            format!("{topic} is already followed"),
        ));
    }
    let cursor = match after {
        None | Some(serde_json::Value::Null) => Cursor::default(),
        Some(serde_json::Value::String(s)) => params::cursor_text(&s)?,
        Some(serde_json::Value::Number(n)) => params::cursor_text(&n.to_string())?,
        Some(other) => {
            return Err(
                ApiError::InvalidCursor(format!("after must be a string, got {other}")).into(),
            );
        }
    };
    let max = app.config().max_topics_per_connection;
    if feed.len() >= max {
        return Err(ApiError::TooManyTopics(max).into());
    }
    let grant = crate::admit::admit_topic(app, token, &topic)?;
    feed.restrict(&grant);
    feed.add(topic, cursor).await?;
    Ok(())
}

fn unsubscribe(feed: &Feed, name: Option<&str>) -> Result<Topic, Refusal> {
    let topic = topic(name)?;
    if !feed.follows(&topic) {
        return Err(Refusal::new(
            "not_subscribed",
            format!("{topic} is not followed"),
        ));
    }
    Ok(topic)
}

/// `{"type":"unsubscribed","topic":…}`.
pub(crate) fn unsubscribed(topic: &Topic) -> String {
    Signal::new(Some("unsubscribed"), Some(topic), NoFields {}).json()
}

/// The error that answers a subscribe whose opening the log could not
/// give (it is down): the subscribe is still answered.
pub(crate) fn unavailable(topic: &Topic, e: &ApiError) -> String {
    error(e.code(), Some(topic.as_str()), &e.to_string())
}

fn topic(name: Option<&str>) -> Result<Topic, Refusal> {
    let name =
        name.ok_or_else(|| Refusal::new("invalid_message", "the message names no topic".into()))?;
    Ok(params::topic(name)?)
}

/// `{"type":"error","code":…,"topic":…,"message":…}`, `type` first like
/// every control message (a frame is an event iff it does not start with
/// `{"type":`).
fn error(code: &str, topic: Option<&str>, message: &str) -> String {
    ErrorMessage::new(code, topic, message).json()
}
