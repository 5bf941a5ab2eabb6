//! Short polling and long polling: "events after N" answered as one JSON
//! document, `{"epoch":…,"events":[…],"next":M}`.
//!
//! A short poll answers at once and supports `ETag` / `If-None-Match` (a
//! `304` when nothing is new, as Nchan's interval poll does). A long poll
//! holds the request until an event after N exists, its timeout passes, or
//! the server drains.

use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::{Reply, account, gap_fields, reset_fields};
use crate::app::App;
use crate::demo::{self, Fault};
use crate::error::ApiError;
use crate::log::{Batch, Log};
use crate::metrics::{Outcome, Transport};
use crate::params::{Query, etag_cursor, format_cursor};
use crate::response::{self, empty};

/// `GET /topics/{topic}/poll`.
pub(crate) async fn short(
    app: &App,
    topic: &str,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Reply, ApiError> {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(etag_cursor);
    let mut cursor = query.cursor()?;
    match demo::fault(app, Transport::Poll) {
        Fault::Ok => {}
        Fault::Refuse => return Err(demo::refused(Transport::Poll)),
        Fault::Stall => {
            let hold = app.config().longpoll_max;
            tokio::select! {
                _ = tokio::time::sleep(hold) => {}
                _ = app.shutdown().cancelled() => {}
            }
        }
    }
    // Like Nchan, an ETag alone is a cursor: a plain HTTP cache that only
    // revalidates still walks the log.
    if cursor.after.is_none()
        && let Some(c) = if_none_match
    {
        cursor = c;
    }
    let batch = app
        .log()
        .read(topic, &cursor, app.config().max_batch)
        .await?;
    let unchanged = batch.events.is_empty() && batch.gap.is_none() && batch.reset.is_none();
    if unchanged && if_none_match == Some(batch.next_cursor()) {
        let mut res = Response::new(empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        set_cache_headers(res.headers_mut(), &batch);
        return Ok(Reply::new(res, Outcome::NotModified));
    }
    Ok(answer(app, Transport::Poll, &batch, Outcome::Empty))
}

/// `GET /topics/{topic}/longpoll`.
pub(crate) async fn long(app: &App, topic: &str, query: &Query) -> Result<Reply, ApiError> {
    let cursor = query.cursor()?;
    let hold = query.timeout(app.config().longpoll_default, app.config().longpoll_max)?;
    let mut sub = app.log().subscribe(topic).await?;
    let cursor = Log::resolve(&cursor, &sub);
    let deadline = tokio::time::sleep(hold);
    tokio::pin!(deadline);
    let stalled = demo::stalled(app, Transport::LongPoll)?;
    loop {
        let batch = app
            .log()
            .read(topic, &cursor, app.config().max_batch)
            .await?;
        let news = !batch.events.is_empty() || batch.gap.is_some() || batch.reset.is_some();
        if news && !stalled {
            return Ok(answer(app, Transport::LongPoll, &batch, Outcome::Events));
        }
        tokio::select! {
            _ = sub.wait_beyond(&cursor), if !stalled => {}
            _ = &mut deadline => {
                // A stalled hold answers as if nothing had happened.
                let batch = if stalled { app.log().read(topic, &cursor, 0).await? } else { batch };
                return Ok(answer(app, Transport::LongPoll, &batch, Outcome::Timeout));
            }
            _ = app.shutdown().cancelled() => {
                return Ok(answer(app, Transport::LongPoll, &batch, Outcome::Empty));
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
