//! Short polling and long polling: "events after N" answered as one JSON
//! document, `{"epoch":…,"events":[…],"next":M}`.
//!
//! A short poll answers at once and supports `ETag` / `If-None-Match` (a
//! `304` when nothing is new, as Nchan's interval poll does). A long poll
//! holds the request on a [`Feed`] until it yields news, its timeout passes,
//! or the server drains.

use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::feed::{Feed, account};
use super::{Reply, gap_fields, reset_fields};
use crate::app::App;
use crate::auth::Grant;
use crate::error::ApiError;
use crate::log::{Batch, Topic};
use crate::metrics::{Outcome, Transport};
use crate::params::{Query, format_cursor, if_none_match};
use crate::response::{self, empty};

/// `GET /topics/{topic}/poll`.
pub(crate) async fn short(
    app: &App,
    topic: &Topic,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Reply, ApiError> {
    let mut cursor = query.cursor()?;
    let etag = if_none_match(headers.get(header::IF_NONE_MATCH));
    // Like Nchan, an ETag alone is a cursor: a plain HTTP cache that only
    // revalidates still walks the log. Then it must be one of ours.
    if cursor.after.is_none()
        && let Some(c) = etag.clone()?
    {
        cursor = c;
    }
    let batch = Feed::poll_once(app, topic, &cursor).await?;
    if !batch.has_news() && etag.ok().flatten() == Some(batch.next_cursor()) {
        let mut res = Response::new(empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        set_cache_headers(res.headers_mut(), &batch);
        return Ok(Reply::new(res, Outcome::NotModified));
    }
    Ok(answer(app, Transport::Poll, &batch, Outcome::Empty))
}

/// `GET /topics/{topic}/longpoll`.
pub(crate) async fn long(
    app: &App,
    topic: Topic,
    query: &Query,
    grant: &Grant,
) -> Result<Reply, ApiError> {
    let cursor = query.cursor()?;
    let hold = query.timeout(app.config().longpoll_default, app.config().longpoll_max)?;
    let mut feed = Feed::open(app, Transport::LongPoll, vec![(topic, cursor)], grant).await?;
    let deadline = tokio::time::sleep(hold);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = feed.next() => match next {
                Ok(d) if d.batch.has_news() => {
                    return Ok(answer(app, Transport::LongPoll, &d.batch, Outcome::Events));
                }
                // The opening read found nothing yet: keep holding.
                Ok(_) => {}
                Err(_) => {
                    // Draining (or a token that ran out): answer now, empty.
                    let batch = feed.idle_batch(0).await?;
                    return Ok(answer(app, Transport::LongPoll, &batch, Outcome::Empty));
                }
            },
            _ = &mut deadline => {
                let batch = feed.idle_batch(0).await?;
                return Ok(answer(app, Transport::LongPoll, &batch, Outcome::Timeout));
            }
        }
    }
}

/// The `200` answer for a batch; `if_empty` is the outcome when it holds no
/// event.
fn answer(app: &App, t: Transport, batch: &Batch, if_empty: Outcome) -> Reply {
    account(app.metrics().transport(t), batch);
    let mut res = response::json(StatusCode::OK, body(batch));
    set_cache_headers(res.headers_mut(), batch);
    let outcome = if batch.events.is_empty() {
        if_empty
    } else {
        Outcome::Events
    };
    Reply::new(res, outcome)
}

/// The `ETag` names the cursor the response leaves the client at, so the
/// next poll's `If-None-Match` says exactly where it stands.
fn set_cache_headers(h: &mut HeaderMap, batch: &Batch) {
    let etag = format!("\"{}\"", format_cursor(batch.epoch, batch.next));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// `{"epoch":"…","events":[…],"next":M}` plus `"gap"` / `"reset"` when set.
/// Events are the log's shared JSON bytes, copied in without re-encoding.
pub(crate) fn body(batch: &Batch) -> Bytes {
    let events_len: usize = batch.events.iter().map(|e| e.json.len() + 1).sum();
    let mut b = BytesMut::with_capacity(events_len + 128);
    b.put_slice(format!(r#"{{"epoch":"{}","events":["#, batch.epoch).as_bytes());
    for (i, e) in batch.events.iter().enumerate() {
        if i > 0 {
            b.put_u8(b',');
        }
        b.put_slice(&e.json);
    }
    b.put_slice(format!(r#"],"next":{}"#, batch.next).as_bytes());
    if let Some(gap) = &batch.gap {
        b.put_slice(format!(r#","gap":{{{}}}"#, gap_fields(gap)).as_bytes());
    }
    if let Some(reason) = batch.reset {
        b.put_slice(format!(r#","reset":{{{}}}"#, reset_fields(reason, batch.epoch)).as_bytes());
    }
    b.put_u8(b'}');
    b.freeze()
}
