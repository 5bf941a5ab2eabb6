//! Short polling and long polling: "events after N" answered as one JSON
//! document, `{"epoch":…,"events":[…],"next":M}`.
//!
//! A short poll answers at once and supports `ETag` / `If-None-Match` (a
//! `304` when nothing is new, as Nchan's interval poll does). A long poll
//! holds the request on a [`Feed`] until it yields news, its timeout passes,
//! or the server drains (then its answer carries a jittered `Retry-After`).
//! A caught-up single-topic long poll whose answer feedgate writes itself
//! (cleartext HTTP/1.1, `server/direct.rs`) waits on the fast path instead
//! (`transport/fanout.rs`): the publish's pass writes its whole answer,
//! made once for every such poll of the topic and encoding, and its task
//! is not woken for it.

use std::fmt;
use std::future::poll_fn;
use std::io::Write as _;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::time::Sleep;

use super::encoding::{Encoding, single_bytes};
use super::fanout::{Entry, Fd, Handback, Variant};
use super::feed::{End, Feed, account};
use super::signal::{GapFields, ResetFields};
use super::{Reply, Wanted, drain_retry};
use crate::app::App;
use crate::auth::Grant;
use crate::error::ApiError;
use crate::http::gzip as compress;
use crate::http::response::{self, Written, empty};
use crate::log::{Batch, Epoch, Event, Form, FormCache, Topic};
use crate::metrics::{Link, Outcome, Transport};
use crate::params::{CursorText, ListItem, Query, if_none_match, list_item};

/// `GET /topics/{topic}/poll` and `GET /poll?topics=LIST`.
pub(crate) async fn short(
    app: &App,
    link: Link,
    wanted: Wanted,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Reply, ApiError> {
    let style = Style::of(query, headers, link)?;
    let topic = match wanted {
        Wanted::One(topic) => topic,
        Wanted::Many(list) => return Box::pin(short_many(app, list, style)).await,
    };
    let topic = &topic;
    let mut cursor = query.cursor()?;
    let etag = if_none_match(headers.get(header::IF_NONE_MATCH));
    // Like Nchan, an ETag alone is a cursor: a plain HTTP cache that only
    // revalidates still walks the log. Then it must be one of ours.
    if cursor.after.is_none()
        && let Some(c) = etag.clone()?
    {
        cursor = c;
    }
    Feed::poll_gate(app).await?;
    let batch = app
        .log()
        .read(topic, &cursor, app.config().max_batch)
        .await?;
    if !batch.has_news() && etag.ok().flatten() == Some(batch.next_cursor()) {
        let mut res = Response::new(empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        set_cache_headers(res.headers_mut(), &batch);
        return Ok(Reply::new(res, Outcome::NotModified));
    }
    Ok(answer(app, Transport::Poll, &batch, Outcome::Empty, style))
}

/// How an answer is written: its encoding (`encoding=`) and whether the
/// client takes gzip.
#[derive(Clone, Copy)]
struct Style {
    encoding: Encoding,
    gzip: bool,
    /// The connection's link: the labels the answer is counted under.
    link: Link,
}

impl Style {
    fn of(query: &Query, headers: &HeaderMap, link: Link) -> Result<Style, ApiError> {
        Ok(Style {
            encoding: Encoding::of(query)?,
            gzip: compress::accepts_gzip(headers),
            link,
        })
    }
}

/// `GET /topics/{topic}/longpoll` and `GET /longpoll?topics=LIST`.
/// `direct` is the socket's descriptor when feedgate writes the answer
/// itself, in the clear: a caught-up poll may then be held on the fast
/// path.
pub(crate) async fn long(
    app: &App,
    (link, direct): (Link, Option<Fd>),
    wanted: Wanted,
    query: &Query,
    headers: &HeaderMap,
    grant: &Grant,
) -> Result<Reply, ApiError> {
    let hold = query.timeout(app.config().longpoll_default, app.config().longpoll_max)?;
    let style = Style::of(query, headers, link)?;
    let topic = match wanted {
        Wanted::One(topic) => topic,
        // Boxed: held for up to a minute, this future is part of every
        // request's state (router.rs keeps that small).
        Wanted::Many(list) => return Box::pin(long_many(app, list, hold, grant, style)).await,
    };
    let cursor = query.cursor()?;
    let mut feed = Feed::open(app, Transport::LongPoll, link, vec![(topic, cursor)], grant).await?;
    let mut fast = direct.filter(|_| app.longpoll_fanout().is_some() && Held::may_hold(headers));
    let deadline = tokio::time::sleep(hold);
    tokio::pin!(deadline);
    // Why it is answered empty, if it is: its hold ran out (`None`), or
    // its feed ended (a drain, a token that ran out).
    let ended: Option<End> = loop {
        let next = tokio::select! {
            next = feed.next() => next,
            _ = &mut deadline => break None,
        };
        match next {
            Ok(d) if d.batch.has_news() => {
                let t = Transport::LongPoll;
                return Ok(answer(app, t, &d.batch, Outcome::Events, style));
            }
            // The opening read found nothing yet: keep holding.
            Ok(_) => {}
            Err(end) => break Some(end),
        }
        // Caught up: held on the fast path, if it takes the poll (once;
        // given back, the poll reads on from its feed).
        let Some(fd) = fast.take() else { continue };
        // Not boxed: its state shares room with the feed's read, which is
        // no smaller (router.rs's size test holds the sum).
        let held = Held::new(fd, style);
        match held.hold(&mut feed, deadline.as_mut()).await {
            Woke::Written(rest) => {
                let mut res = Response::new(crate::http::response::full(rest));
                res.extensions_mut().insert(Written);
                return Ok(Reply::new(res, Outcome::Events));
            }
            Woke::TimedOut => break None,
            Woke::Ended(end) => break Some(end),
            Woke::Resumed => {}
        }
    };
    // Answered now, empty, where it stands.
    let batch = feed.idle_batch(0).await?;
    Ok(match ended {
        None => answer(app, Transport::LongPoll, &batch, Outcome::Timeout, style),
        Some(end) => {
            let reply = answer(app, Transport::LongPoll, &batch, Outcome::Empty, style);
            retry_hint(app, reply, end)
        }
    })
}

/// A caught-up long poll's place on the fast path.
struct Held {
    fd: Fd,
    variant: Variant,
    entry: Option<Arc<Entry>>,
}

/// What ended a long poll's wait on the fast path.
enum Woke {
    /// The fast path wrote its answer: the rest of it, if the socket did
    /// not take it all, is the task's to write.
    Written(Bytes),
    /// Its hold ran out.
    TimedOut,
    /// Its feed ended.
    Ended(End),
    /// The fast path did not take it, or gave it back: it reads on from
    /// its feed.
    Resumed,
}

impl Held {
    /// Whether every parked poll would get the same answer as this one's
    /// request: one with an `Origin` gets its own CORS headers, and one
    /// that says `Connection: close` needs its task to close after.
    fn may_hold(headers: &HeaderMap) -> bool {
        !headers.contains_key(header::ORIGIN) && !crate::http::head::wants_close(headers)
    }

    fn new(fd: Fd, style: Style) -> Held {
        let variant = Variant::LongPoll {
            lean: style.encoding.is_lean(),
            gzip: style.gzip,
        };
        Held {
            fd,
            variant,
            entry: None,
        }
    }

    /// Parks the poll, caught up on its one topic, until the fast path
    /// answers it or gives it back, its hold (`deadline`) runs out or its
    /// feed ends; the socket is the poll's again when this returns.
    async fn hold(mut self, feed: &mut Feed, mut deadline: Pin<&mut Sleep>) -> Woke {
        let app = feed.app().clone();
        let (Some(fanout), Some((topic, cursor)), true) =
            (app.longpoll_fanout(), feed.single(), feed.fast_eligible())
        else {
            return Woke::Resumed;
        };
        // A topic nobody has published to: its first publish starts an
        // epoch, which the pass would hand back (`Behind`) anyway, and a
        // deliverer started for it would keep the topic followed (on
        // Redis, its channel subscribed) after the poll: it waits on its
        // own feed.
        if cursor.epoch.is_none_or(|e| e == Epoch::NONE) {
            return Woke::Resumed;
        }
        let entry = Entry::new(self.fd, self.variant, feed.expires(), app.metrics());
        self.entry = Some(entry.clone());
        if !fanout.join(&app, topic, &entry, cursor).await {
            return Woke::Resumed;
        }
        let woke = {
            let mut ended = pin!(feed.ended());
            let mut polled = false;
            poll_fn(|cx| {
                if let Poll::Ready(end) = ended.as_mut().poll(cx) {
                    return Poll::Ready(Woke::Ended(end));
                }
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woke::TimedOut);
                }
                if entry.poll_handed_back(cx).is_ready() {
                    return Poll::Ready(Woke::Resumed);
                }
                // Woken for none of those: the peer sent something while
                // the poll waits unanswered (a pipelined request). The pass
                // would answer without waking this task, and that request
                // would wait for the hold's end: the poll leaves the fast
                // path, and its task answers it.
                if std::mem::replace(&mut polled, true) {
                    return Poll::Ready(Woke::Resumed);
                }
                Poll::Pending
            })
            .await
        };
        let mut back = entry.reclaim();
        match (back.why, back.pending.take()) {
            (Some(Handback::Answered), _) => return Woke::Written(Bytes::new()),
            (Some(Handback::Blocked), Some(rest)) => return Woke::Written(rest),
            _ => {}
        }
        feed.advance_to(back.cursor);
        match back.ended() {
            Some(end) => Woke::Ended(end),
            None => woke,
        }
    }
}

impl Drop for Held {
    /// Takes the socket back: the fast path never writes it again.
    fn drop(&mut self) {
        if let Some(entry) = &self.entry {
            entry.reclaim();
        }
    }
}

/// The whole HTTP/1.1 answer, head and body, that a held single-topic long
/// poll gets for `batch` in `encoding` (gzipped if `gzip` and it pays):
/// what [`long`] answers such a poll (held polls have no `Origin`, so no
/// CORS headers), made once by the fast path for all of them. Not
/// accounted: the fast path counts what it writes. `None` if it cannot be
/// made whole.
pub(crate) fn held_answer(
    app: &App,
    batch: &Batch,
    encoding: Encoding,
    gzip: bool,
) -> Option<Bytes> {
    let style = Style {
        encoding,
        gzip,
        link: Link::H1,
    };
    let reply = reply_to(app, Transport::LongPoll, batch, Outcome::Events, style);
    crate::http::head::whole(reply.response)
}

/// `GET /poll?topics=LIST`: every topic's news now, sharing one batch.
async fn short_many(app: &App, list: Vec<ListItem>, style: Style) -> Result<Reply, ApiError> {
    Feed::poll_gate(app).await?;
    let mut answers = Vec::with_capacity(list.len());
    let share = app.config().max_batch.div_ceil(list.len().max(1));
    for (topic, cursor) in list {
        let batch = app
            .log()
            .read(&topic, &cursor.unwrap_or_default(), share)
            .await?;
        answers.push((topic, batch));
    }
    Ok(answer_many(
        app,
        Transport::Poll,
        &answers,
        Outcome::Empty,
        style,
    ))
}

/// `GET /longpoll?topics=LIST`: holds until any topic has news, then
/// answers with what every topic has.
async fn long_many(
    app: &App,
    list: Vec<ListItem>,
    hold: std::time::Duration,
    grant: &Grant,
    style: Style,
) -> Result<Reply, ApiError> {
    let items = list.into_iter().map(|(t, c)| (t, c.unwrap_or_default()));
    let mut feed = Feed::open(app, Transport::LongPoll, style.link, items.collect(), grant).await?;
    feed.share_batch();
    let deadline = tokio::time::sleep(hold);
    tokio::pin!(deadline);
    let mut news = Vec::new();
    let mut ended = None;
    let outcome = loop {
        tokio::select! {
            next = feed.next() => match next {
                Ok(d) if d.batch.has_news() => {
                    news.push(d);
                    news.extend(feed.ready_now().await);
                    break Outcome::Events;
                }
                Ok(_) => {}
                Err(end) => {
                    ended = Some(end);
                    break Outcome::Empty;
                }
            },
            _ = &mut deadline => break Outcome::Timeout,
        }
    };
    // Every topic's entry: its batch when it had one, else where it stands.
    let answers: Vec<(Topic, Batch)> = (0..feed.len())
        .map(|i| {
            let (topic, cursor) = feed.position(i);
            let batch = match news.iter().position(|d| d.index == i) {
                Some(k) => news.swap_remove(k).batch,
                None => Batch::at(cursor),
            };
            (topic.clone(), batch)
        })
        .collect();
    let reply = answer_many(app, Transport::LongPoll, &answers, outcome, style);
    Ok(match ended {
        Some(end) => retry_hint(app, reply, end),
        None => reply,
    })
}

/// A long poll answered because the server drains tells its client when
/// to come back, drawn per client (docs/protocol.md, "Restarts"):
/// `Retry-After` in whole seconds (rounded up) for any HTTP client, and
/// `Retry-After-Ms` with the exact delay.
fn retry_hint(app: &App, mut reply: Reply, end: End) -> Reply {
    if end == End::Shutdown {
        let wait = drain_retry(app.config());
        let h = reply.response.headers_mut();
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_millis().div_ceil(1000) as u64),
        );
        h.insert("retry-after-ms", HeaderValue::from(wait.as_millis() as u64));
    }
    reply
}

/// The `200` answer to a multiplexed poll:
/// `{"events":[…],"topics":{"T":{"epoch":…,"next":N},…},"next":"LIST"}`;
/// lean: `{"topics":{"T":{"epoch":…,"next":N,"events":[data…]},…},"next":"LIST"}`.
fn answer_many(
    app: &App,
    t: Transport,
    answers: &[(Topic, Batch)],
    if_empty: Outcome,
    style: Style,
) -> Reply {
    let tm = app.metrics().transport(t);
    let mut events_len = 64;
    for (_, batch) in answers {
        account(tm, style.link, batch);
        events_len += batch.events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 96;
    }
    let lean = style.encoding.is_lean();
    let mut b = BytesMut::with_capacity(events_len);
    if lean {
        b.put_slice(br#"{"#);
    } else {
        b.put_slice(br#"{"events":["#);
        put_events(
            &mut b,
            answers.iter().flat_map(|(_, batch)| &batch.events),
            Encoding::Json,
        );
        b.put_slice(br#"],"#);
    }
    b.put_slice(br#""topics":{"#);
    let mut next = String::new();
    for (i, (topic, batch)) in answers.iter().enumerate() {
        if i > 0 {
            b.put_u8(b',');
        }
        b.put_slice(format!(r#""{topic}":"#).as_bytes());
        let mut pos = position(batch);
        if lean {
            // A topic's events, in its entry: their seqs end at `next`.
            pos.pop();
            b.put_slice(&pos);
            b.put_slice(br#","events":["#);
            put_events(&mut b, &batch.events, Encoding::Lean);
            b.put_slice(b"]}");
        } else {
            b.put_slice(&pos);
        }
        list_item(&mut next, topic, Some(batch.epoch), batch.next);
    }
    b.put_slice(format!(r#"}},"next":"{next}"}}"#).as_bytes());
    let outcome = if answers.iter().any(|(_, b)| !b.events.is_empty()) {
        Outcome::Events
    } else {
        if_empty
    };
    let mut res = respond(app, style, b.freeze());
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Reply::new(res, outcome)
}

/// Events, comma-separated, as `encoding` writes them.
fn put_events<'a>(
    b: &mut BytesMut,
    events: impl IntoIterator<Item = &'a Event>,
    encoding: Encoding,
) {
    for (i, e) in events.into_iter().enumerate() {
        if i > 0 {
            b.put_u8(b',');
        }
        b.put_slice(&single_bytes(e, encoding));
    }
}

/// A `200` JSON answer with `body`, gzipped when that pays and the client
/// takes it.
fn respond(app: &App, style: Style, body: Bytes) -> Response<crate::http::response::Body> {
    let mut extra = HeaderMap::new();
    let body = compress::encode(style.gzip, app.config().gzip_min, body, &mut extra);
    let mut res = response::json(StatusCode::OK, body);
    res.headers_mut().extend(extra);
    res
}

/// `{"epoch":"…","next":N}` plus `"gap"` / `"reset"`: where a batch leaves
/// its reader, and what it must be told.
fn position(batch: &Batch) -> Vec<u8> {
    let mut b = BytesMut::with_capacity(64);
    let _ = fmt::Write::write_fmt(
        &mut b,
        format_args!(r#"{{"epoch":"{}","next":{}"#, batch.epoch, batch.next),
    );
    put_signals(&mut b, batch);
    b.put_u8(b'}');
    b.to_vec()
}

/// The `200` answer for a batch; `if_empty` is the outcome when it holds no
/// event.
fn answer(app: &App, t: Transport, batch: &Batch, if_empty: Outcome, style: Style) -> Reply {
    account(app.metrics().transport(t), style.link, batch);
    reply_to(app, t, batch, if_empty, style)
}

/// [`answer`], not accounted.
fn reply_to(app: &App, t: Transport, batch: &Batch, if_empty: Outcome, style: Style) -> Reply {
    let mut res = respond(app, style, shared_body(app.forms(), batch, style.encoding));
    if style.encoding.is_lean() && t == Transport::LongPoll {
        // A lean long poll's body says where it stands; a long poll never
        // revalidates, so it needs no ETag.
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else {
        set_cache_headers(res.headers_mut(), batch);
    }
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
    // The cursor's text, quoted, written in place: every poll answer has
    // one, and two formatted strings per answer showed in the long-poll
    // profile.
    const MAX: usize = 48;
    let mut tag = [0u8; MAX];
    let mut w = &mut tag[..];
    let len = match write!(w, "\"{}\"", CursorText(batch.epoch, batch.next)) {
        Ok(()) => MAX - w.len(),
        Err(_) => return,
    };
    if let Ok(v) = HeaderValue::from_bytes(&tag[..len]) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// [`body`], made once per event and encoding when the batch is that one
/// event and nothing else (what every caught-up long poll of a topic gets
/// after a publish): shared by all of them through the event's cached
/// forms, as an SSE block is.
fn shared_body(forms: &Arc<FormCache>, batch: &Batch, encoding: Encoding) -> Bytes {
    let single = match &batch.events[..] {
        [e] if batch.gap.is_none() && batch.reset.is_none() && batch.next == e.seq => e,
        _ => return body(batch, encoding),
    };
    let form = match encoding {
        Encoding::Json => Form::PollJson,
        Encoding::Lean => Form::PollLean,
    };
    single.form(form, forms, |_| body(batch, encoding))
}

/// `{"epoch":"…","events":[…],"next":M}` plus `"gap"` / `"reset"` when set.
/// Events are the log's shared JSON bytes (lean: their `data`), copied in
/// without re-encoding.
pub(crate) fn body(batch: &Batch, encoding: Encoding) -> Bytes {
    let events_len: usize = batch.events.iter().map(|e| e.json.len() + 1).sum();
    let mut b = BytesMut::with_capacity(events_len + 128);
    // Written into the body directly, without a string per piece.
    let _ = fmt::Write::write_fmt(
        &mut b,
        format_args!(r#"{{"epoch":"{}","events":["#, batch.epoch),
    );
    put_events(&mut b, &batch.events, encoding);
    let _ = fmt::Write::write_fmt(&mut b, format_args!(r#"],"next":{}"#, batch.next));
    put_signals(&mut b, batch);
    b.put_u8(b'}');
    b.freeze()
}

/// `,"gap":{…}` and `,"reset":{…}`, as the batch needs them.
fn put_signals(b: &mut BytesMut, batch: &Batch) {
    if let Some(gap) = &batch.gap {
        b.put_slice(br#","gap":"#);
        let _ = serde_json::to_writer(b.writer(), &GapFields::from(gap));
    }
    if let Some(reason) = batch.reset {
        b.put_slice(br#","reset":"#);
        let fields = ResetFields::new(reason, batch.epoch);
        let _ = serde_json::to_writer(b.writer(), &fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Epoch, Gap};
    use crate::params::format_cursor;

    /// The ETag and body, written in place, say what the contract says.
    #[test]
    fn etag_and_body_text() {
        let batch = Batch {
            epoch: Epoch(u64::MAX),
            events: Vec::new(),
            next: u64::MAX,
            gap: Some(Gap {
                missed: 2,
                resume_seq: 9,
            }),
            reset: None,
        };
        let mut h = HeaderMap::new();
        set_cache_headers(&mut h, &batch);
        assert_eq!(
            h[header::ETAG],
            format!("\"{}\"", format_cursor(batch.epoch, batch.next)).as_str()
        );
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert_eq!(
            &body(&batch, Encoding::Json)[..],
            br#"{"epoch":"ffffffffffffffff","events":[],"next":18446744073709551615,"gap":{"missed":2,"resume_seq":9}}"#
        );
    }

    /// A one-event answer is made once per encoding and shared (the same
    /// bytes, not equal copies); a batch with more is made for itself.
    #[test]
    fn a_one_event_body_is_made_once_and_shared() {
        let topic = Topic::new("t").unwrap();
        let e = Event::build(&topic, 7, 1, br#"{"a":1}"#);
        let batch = |events: Vec<Event>, next| Batch {
            epoch: Epoch(5),
            events,
            next,
            gap: None,
            reset: None,
        };
        let cache = FormCache::new(1 << 20);
        let one = batch(vec![e.clone()], 7);
        let a = shared_body(&cache, &one, Encoding::Json);
        let b = shared_body(&cache, &one, Encoding::Json);
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(a, body(&one, Encoding::Json));
        let lean = shared_body(&cache, &one, Encoding::Lean);
        assert_eq!(lean, body(&one, Encoding::Lean));
        assert_ne!(lean, a);
        let two = batch(vec![e.clone(), Event::build(&topic, 8, 1, b"2")], 8);
        assert_eq!(
            shared_body(&cache, &two, Encoding::Json),
            body(&two, Encoding::Json)
        );
    }
}
