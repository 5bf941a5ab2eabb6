//! Server-Sent Events: one endless `text/event-stream` response per
//! subscriber.
//!
//! The stream opens with `retry:` and a `ready` event whose `id:` is the
//! resolved cursor (so even a "from now" subscriber that reconnects resumes
//! without loss). Each event is `id: EPOCH:SEQ` + `data: <event json>`; gap
//! and reset are the named events `gap` and `reset`. Events that are ready
//! together go out in one write. Comment heartbeats keep proxies from
//! timing the stream out. When the server drains, the stream's last chunk
//! is a jittered `retry:` and a `restart` event, then it ends.

use std::future::poll_fn;
use std::io::Write;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::id as sse_id;
use crate::app::App;
use crate::auth::Grant;
use crate::error::ApiError;
use crate::http::chunk::{Prechunked, chunk};
use crate::log::{Cursor, Epoch, Event, Form, FormCache, Topic};
use crate::metrics::{Link, Outcome, Transport};
use crate::params::{self, CursorText, ListItem, Query, cursor_text, format_cursor, list_item};
use crate::transport::encoding::{self, Encoding};
use crate::transport::fanout::{Entry, Fd, Variant};
use crate::transport::feed::{Delivery, End, Feed};
use crate::transport::signal::{GapFields, OpeningFields, ResetFields, Signal};
use crate::transport::{Reply, Wanted, drain_retry, start_of};

/// `GET /topics/{topic}/sse` and `GET /sse?topics=LIST`. `direct` is the
/// socket's descriptor when feedgate writes the response itself, in the
/// clear (`server/direct.rs`): the stream may then lend it to the fast
/// path (`transport/fanout.rs`), and frames its chunks itself so both
/// write the same framing.
pub(crate) async fn subscribe(
    app: &App,
    (link, direct): (Link, Option<Fd>),
    wanted: Wanted,
    query: &Query,
    headers: &HeaderMap,
    grant: &Grant,
) -> Result<Reply, ApiError> {
    let encoding = Encoding::of(query)?;
    let (topics, url, list_tag) = match wanted {
        Wanted::One(topic) => (vec![(topic, cursor(query, headers)?)], None, 0),
        Wanted::Many(list) => {
            let max = app.config().max_topics_per_connection;
            let url: Vec<Option<Cursor>> = list.iter().map(|(_, c)| *c).collect();
            let tag = sse_id::list_tag(list.iter().map(|(t, _)| t.as_str()));
            let topics = match compact_id(query, headers)? {
                // A compact id holds every topic's position, by URL order.
                Some(id) => {
                    let at = sse_id::decode(id, tag, list.len())?;
                    list.into_iter().map(|(t, _)| t).zip(at).collect()
                }
                None => {
                    let resumed = resume_list(query, headers, max)?;
                    list.into_iter()
                        .map(|(topic, c)| {
                            let at = resumed_cursor(&resumed, &topic, c);
                            (topic, at)
                        })
                        .collect()
                }
            };
            (topics, Some(url), tag)
        }
    };
    let feed = Feed::open(app, Transport::Sse, link, topics, grant).await?;
    let every = app.config().sse_heartbeat;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let quiet_since = Instant::now();
    let state = Stream {
        feed,
        heartbeat,
        quiet_since,
        retry_ms: app.config().sse_retry.as_millis(),
        url,
        list_tag,
        opened: false,
        ended: false,
        encoding,
        fast: direct
            .filter(|_| app.sse_fanout().is_some())
            .map(|fd| Box::new(Fast::new(fd))),
    };
    let framed = direct.is_some();
    let frames = futures_util::stream::unfold(state, move |mut s| async move {
        let bytes = match s.next_frame().await? {
            Out::Block(b) if framed => chunk(&b),
            Out::Block(b) | Out::Raw(b) => b,
        };
        Some((Ok(Frame::data(bytes)), s))
    });
    let mut res = Response::new(StreamBody::new(frames.boxed()).boxed_unsync());
    *res.status_mut() = StatusCode::OK;
    if framed {
        res.extensions_mut().insert(Prechunked);
    }
    crate::http::event_stream::headers(res.headers_mut());
    Ok(Reply::new(res, Outcome::Stream))
}

/// The `Last-Event-ID` (header, else `last_event_id=`) when it is a
/// compact id ([`sse_id`]).
fn compact_id<'a>(query: &'a Query, headers: &'a HeaderMap) -> Result<Option<&'a str>, ApiError> {
    let header = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::InvalidCursor("Last-Event-ID is not ASCII".into()))?
                .trim(),
        ),
        None => None,
    };
    let text = header
        .filter(|t| !t.is_empty())
        .or(query.last_event_id.as_deref());
    Ok(text.filter(|t| t.starts_with(sse_id::MARK)))
}

/// The `Last-Event-ID` of a multiplexed stream (header, else
/// `last_event_id=`): a LIST of the topics that moved from the URL's
/// cursors. Empty when there is none.
fn resume_list(query: &Query, headers: &HeaderMap, max: usize) -> Result<Vec<ListItem>, ApiError> {
    let header = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::InvalidCursor("Last-Event-ID is not ASCII".into()))?,
        ),
        None => None,
    };
    let text = header
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or(query.last_event_id.as_deref())
        .unwrap_or("");
    // A leading `@EPOCH` item is the epoch of the items that name none.
    let (common, rest) = match text.strip_prefix('@') {
        Some(t) => {
            let (e, rest) = t.split_once(',').unwrap_or((t, ""));
            let e = e
                .parse::<Epoch>()
                .map_err(|_| ApiError::InvalidCursor(format!("Last-Event-ID: bad epoch @{e}")))?;
            (Some(e), rest)
        }
        None => (None, text),
    };
    let mut items = params::topic_list(rest, max)?;
    for (_, cursor) in &mut items {
        if let Some(c) = cursor
            && c.epoch.is_none()
        {
            c.epoch = common;
        }
    }
    Ok(items)
}

/// Where a topic resumes: its item in the `Last-Event-ID` LIST (which wins;
/// without an epoch it keeps the URL's), else its cursor in the URL (none:
/// from now).
fn resumed_cursor(resumed: &[ListItem], topic: &Topic, url: Option<Cursor>) -> Cursor {
    let from_id = resumed
        .iter()
        .find(|(t, _)| t == topic)
        .and_then(|(_, c)| *c);
    match (from_id, url) {
        (Some(mut c), Some(u)) => {
            c.epoch = c.epoch.or(u.epoch);
            c
        }
        (Some(c), None) => c,
        (None, u) => u.unwrap_or_default(),
    }
}

/// The cursor, by precedence: `Last-Event-ID` header (what a reconnecting
/// `EventSource` sends), then `last_event_id`, then `after` / `epoch`.
fn cursor(query: &Query, headers: &HeaderMap) -> Result<Cursor, ApiError> {
    if let Some(v) = headers.get("last-event-id") {
        let text = v
            .to_str()
            .map_err(|_| ApiError::InvalidCursor("Last-Event-ID is not ASCII".into()))?;
        // An empty id is "no id" (an EventSource resets it so): the
        // cursors in the query stand.
        if !text.trim().is_empty() {
            // A lean stream's ids are bare seqs: the URL's `epoch=` is
            // theirs.
            let mut c = cursor_text(text)?;
            if c.epoch.is_none() && query.epoch.is_some() {
                c.epoch = query.cursor()?.epoch;
            }
            return Ok(c);
        }
    }
    if let Some(text) = &query.last_event_id {
        return cursor_text(text);
    }
    query.cursor()
}

/// The state of one SSE response body: a feed and a heartbeat.
struct Stream {
    feed: Feed,
    heartbeat: Interval,
    /// When the stream last sent something: a heartbeat is due after
    /// `--sse-heartbeat` of silence. Kept instead of resetting the
    /// heartbeat's timer on every event (a timer-wheel update per
    /// delivery, where this is a clock read).
    quiet_since: Instant,
    retry_ms: u128,
    /// A multiplexed stream's cursors as its URL gave them, by feed index:
    /// its ids name only the topics that moved from these.
    url: Option<Vec<Option<Cursor>>>,
    /// The URL LIST's tag, which its compact ids carry ([`sse_id::list_tag`]).
    list_tag: u32,
    /// Whether the first chunk (with `retry:`) went out.
    opened: bool,
    /// Whether the last chunk (on drain) went out.
    ended: bool,
    encoding: Encoding,
    /// The stream's place on the fast path, when its socket can be lent.
    fast: Option<Box<Fast>>,
}

/// What a stream writes next.
enum Out {
    /// Event blocks, a heartbeat, the last chunk: one chunk of the body.
    Block(Bytes),
    /// The tail of a chunk the fast path wrote only part of: as it is.
    Raw(Bytes),
}

/// An SSE stream's place on the fast path.
struct Fast {
    fd: Fd,
    entry: Option<Arc<Entry>>,
    /// Whether to try to park before the next wait: after the stream
    /// wrote (never right after the fast path gave it back).
    try_park: bool,
}

impl Fast {
    fn new(fd: Fd) -> Fast {
        Fast {
            fd,
            entry: None,
            try_park: false,
        }
    }
}

impl Drop for Fast {
    /// Takes the socket back: the fast path never writes it again.
    fn drop(&mut self) {
        if let Some(entry) = &self.entry {
            entry.reclaim();
        }
    }
}

/// What woke a stream parked on the fast path.
enum Parked {
    /// The heartbeat timer.
    Heartbeat,
    /// The feed ends.
    Ended(End),
    /// The fast path gave the socket back: read on from the feed.
    Resumed,
}

impl Stream {
    /// The next chunk to write, or `None` to end the stream.
    async fn next_frame(&mut self) -> Option<Out> {
        if self.ended {
            return None;
        }
        loop {
            if self.park().await {
                let (woke, pending) = self.wait_parked().await;
                if let Some(tail) = pending {
                    // First the rest of the fast path's chunk; whatever
                    // woke the stream is seen again on the next call.
                    return Some(Out::Raw(tail));
                }
                match woke {
                    Parked::Resumed => {}
                    Parked::Ended(End::Shutdown) => return Some(Out::Block(self.restart_chunk())),
                    Parked::Ended(_) => return None,
                    Parked::Heartbeat => {
                        if let Some(beat) = self.heartbeat_due() {
                            return Some(Out::Block(beat));
                        }
                        self.set_try_park();
                        continue;
                    }
                }
            }
            // The feed first: a stream that keeps up with a busy topic is
            // woken by it. (Polling the heartbeat only when its own waker
            // fired, as the WebSocket session gates its peer and timer,
            // measured within the spread here: docs/benchmarks.md.)
            let woke = {
                let mut next = pin!(self.feed.next());
                let heartbeat = &mut self.heartbeat;
                poll_fn(|cx| {
                    if let Poll::Ready(next) = next.as_mut().poll(cx) {
                        return Poll::Ready(Some(next));
                    }
                    heartbeat.poll_tick(cx).map(|_| None)
                })
                .await
            };
            match woke {
                Some(next) => {
                    let bytes = match next {
                        Ok(d) => self.encode(&d),
                        Err(End::Shutdown) => self.restart_chunk(),
                        Err(_) => return None,
                    };
                    self.quiet_since = Instant::now();
                    self.set_try_park();
                    return Some(Out::Block(bytes));
                }
                None => {
                    if let Some(beat) = self.heartbeat_due() {
                        return Some(Out::Block(beat));
                    }
                }
            }
        }
    }

    /// A heartbeat, if `--sse-heartbeat` of silence has passed; otherwise
    /// the timer is set for when it will have.
    fn heartbeat_due(&mut self) -> Option<Bytes> {
        let due = self.quiet_since + self.heartbeat.period();
        if due <= Instant::now() {
            self.quiet_since = Instant::now();
            self.set_try_park();
            return Some(Bytes::from_static(b":\n\n"));
        }
        // Events went out since: the silence starts later.
        self.heartbeat.reset_at(due);
        None
    }

    fn set_try_park(&mut self) {
        if let Some(fast) = &mut self.fast {
            fast.try_park = true;
        }
    }

    /// Parks the stream on the fast path if it may take it now: it wrote
    /// since it was last given back, it follows one topic whose opening it
    /// told, and a deliverer stands at its cursor (or none runs yet). The
    /// writer (`server/direct.rs`) asks for the next chunk only once
    /// the socket took the last one whole: nothing of the stream's is
    /// unsent when the fast path takes the socket.
    async fn park(&mut self) -> bool {
        let app = self.feed.app().clone();
        let Some(fast) = self.fast.as_deref_mut() else {
            return false;
        };
        if !std::mem::take(&mut fast.try_park) || !self.feed.fast_eligible() {
            return false;
        }
        let (Some(fanout), Some((topic, cursor))) = (app.sse_fanout(), self.feed.single()) else {
            return false;
        };
        let fd = fast.fd;
        let entry = fast.entry.get_or_insert_with(|| {
            let variant = Variant::Sse {
                lean: self.encoding == Encoding::Lean,
            };
            Entry::new(fd, variant, self.feed.expires(), app.metrics())
        });
        fanout.join(&app, topic, entry, cursor).await
    }

    /// Waits, parked, for the heartbeat, the feed's end or the fast path
    /// giving the socket back; then takes the socket back and moves the
    /// feed to where the fast path left it. Returns what woke it and the
    /// bytes the fast path could not write, which go first.
    async fn wait_parked(&mut self) -> (Parked, Option<Bytes>) {
        let Some(entry) = self.fast.as_ref().and_then(|f| f.entry.clone()) else {
            return (Parked::Resumed, None);
        };
        let woke = {
            let mut ended = pin!(self.feed.ended());
            let heartbeat = &mut self.heartbeat;
            poll_fn(|cx| {
                if let Poll::Ready(end) = ended.as_mut().poll(cx) {
                    return Poll::Ready(Parked::Ended(end));
                }
                if heartbeat.poll_tick(cx).is_ready() {
                    return Poll::Ready(Parked::Heartbeat);
                }
                entry.poll_handed_back(cx).map(|()| Parked::Resumed)
            })
            .await
        };
        let back = entry.reclaim();
        self.feed.advance_to(back.cursor);
        if let Some(at) = back.written_at {
            self.quiet_since = self.quiet_since.max(at);
        }
        let woke = back.ended().map_or(woke, Parked::Ended);
        (woke, back.pending)
    }

    /// The last chunk of a draining server: a `retry:` drawn for this
    /// client (an `EventSource` waits that long before it reconnects), and
    /// a `restart` event with the same delay for clients that cannot read
    /// `retry:` (FeedgateSocket). No `id:`, so the client's cursor stands.
    fn restart_chunk(&mut self) -> Bytes {
        self.ended = true;
        let ms = drain_retry(self.feed.app().config()).as_millis();
        Bytes::from(format!(
            "retry: {ms}\nevent: restart\ndata: {{\"retry\":{ms}}}\n\n"
        ))
    }

    /// Encodes a delivery (with the stream's opening the first time) as
    /// one chunk, and accounts for it.
    fn encode(&mut self, d: &Delivery) -> Bytes {
        if self.url.is_some() {
            return self.encode_many(d);
        }
        let batch = &d.batch;
        // Each event's block is the same for every subscriber of the topic:
        // made once and shared. A subscriber that keeps up gets one event
        // at a time, and that chunk is the block itself: nothing to copy.
        if let [e] = &batch.events[..]
            && !d.opening
            && batch.reset.is_none()
            && batch.gap.is_none()
        {
            self.feed.delivered(batch);
            return sse_block(e, batch.epoch, self.encoding, self.feed.app().forms());
        }
        let events_len: usize = batch.events.iter().map(|e| e.json.len() + 48).sum();
        let mut b = BytesMut::with_capacity(events_len + 128);
        let start = format_cursor(batch.epoch, start_of(batch));
        if d.opening {
            let _ = writeln!((&mut b).writer(), "retry: {}", self.retry_ms);
        }
        let mut control = |name: &str, data: String| {
            let _ = write!(
                (&mut b).writer(),
                "event: {name}\nid: {start}\ndata: {data}\n\n"
            );
        };
        if d.opening {
            let opening = OpeningFields::new(batch.epoch);
            control(
                "ready",
                Signal::new(None, None, opening)
                    .next(Some(start_of(batch)))
                    .json(),
            );
        }
        // Lean events carry no seq: gap and reset say where they resume.
        let next = encoding::lean_next(self.encoding, start_of(batch));
        if let Some(reason) = batch.reset {
            let fields = ResetFields::new(reason, batch.epoch);
            control("reset", Signal::new(None, None, fields).next(next).json());
        }
        if let Some(gap) = &batch.gap {
            control(
                "gap",
                Signal::new(None, None, GapFields::from(gap))
                    .next(next)
                    .json(),
            );
        }
        for e in &batch.events {
            b.put_slice(&sse_block(
                e,
                batch.epoch,
                self.encoding,
                self.feed.app().forms(),
            ));
        }
        self.feed.delivered(batch);
        b.freeze()
    }

    /// A multiplexed stream's chunk: control events name their topic, and
    /// every `id:` is a LIST that resumes every topic (see
    /// docs/protocol.md, "Multiplexed subscriptions", SSE).
    fn encode_many(&mut self, d: &Delivery) -> Bytes {
        let batch = &d.batch;
        let topic = self.feed.position(d.index).0.clone();
        // The other topics' items are the same for the whole batch: only
        // this topic's cursor moves.
        let others: Vec<IdItem> = (0..self.feed.len())
            .filter(|&i| i != d.index)
            .filter_map(|i| {
                let c = self.feed.position(i).1;
                self.moved(i, c.epoch.unwrap_or(Epoch::NONE), c.after.unwrap_or(0))
            })
            .collect();
        // The compact form when the topics' epochs allow, else the LIST.
        let common = self.common_epoch(batch.epoch);
        let id = |seq: u64| {
            let positions = (0..self.feed.len()).map(|i| match i == d.index {
                true => (batch.epoch, seq),
                false => {
                    let c = self.feed.position(i).1;
                    (c.epoch.unwrap_or(Epoch::NONE), c.after.unwrap_or(0))
                }
            });
            sse_id::encode(common, self.list_tag, positions).unwrap_or_else(|| {
                let mut items = others.clone();
                items.extend(self.moved(d.index, batch.epoch, seq));
                self.format_id(&items, batch.epoch)
            })
        };
        let events_len: usize = batch.events.iter().map(|e| e.json.len() + 64).sum();
        let mut b = BytesMut::with_capacity(events_len * (1 + others.len() / 4) + 256);
        if !self.opened {
            b.put_slice(format!("retry: {}\n", self.retry_ms).as_bytes());
        }
        let start = start_of(batch);
        let mut control = |name: &str, data: String| {
            let _ = write!(
                (&mut b).writer(),
                "event: {name}\nid: {}\ndata: {data}\n\n",
                id(start)
            );
        };
        let named = Some(&topic);
        if d.opening {
            let opening = OpeningFields::new(batch.epoch);
            control(
                "subscribed",
                Signal::new(None, named, opening).next(Some(start)).json(),
            );
        }
        let next = encoding::lean_next(self.encoding, start);
        if let Some(reason) = batch.reset {
            let fields = ResetFields::new(reason, batch.epoch);
            control("reset", Signal::new(None, named, fields).next(next).json());
        }
        if let Some(gap) = &batch.gap {
            control(
                "gap",
                Signal::new(None, named, GapFields::from(gap))
                    .next(next)
                    .json(),
            );
        }
        for e in &batch.events {
            match self.encoding {
                Encoding::Json => {
                    let _ = write!((&mut b).writer(), "id: {}\ndata: ", id(e.seq));
                    b.put_slice(&e.json);
                }
                Encoding::Lean => {
                    let _ = write!((&mut b).writer(), "id:{}\ndata:", id(e.seq));
                    b.put_slice(&encoding::lean_multi(e, &topic, self.feed.app().forms()));
                }
            }
            b.put_slice(b"\n\n");
        }
        self.feed.delivered(batch);
        self.opened = true;
        b.freeze()
    }

    /// The epoch a compact id states: the delivering batch's, or (while it
    /// has none yet) any topic's.
    fn common_epoch(&self, batch: Epoch) -> Epoch {
        if batch != Epoch::NONE {
            return batch;
        }
        (0..self.feed.len())
            .filter_map(|i| self.feed.position(i).1.epoch)
            .find(|e| *e != Epoch::NONE)
            .unwrap_or(Epoch::NONE)
    }

    /// Topic `index` at `epoch:seq` as an id item, unless that is where
    /// the URL already puts it.
    fn moved(&self, index: usize, epoch: Epoch, seq: u64) -> Option<IdItem> {
        let url = self.url.as_ref().and_then(|u| u[index]);
        let url_epoch = url.is_some_and(|u| u.epoch == Some(epoch));
        let unmoved = url.is_some_and(|u| u.after == Some(seq) && (url_epoch || u.epoch.is_none()));
        (!unmoved).then_some(IdItem {
            index,
            epoch,
            seq,
            url_epoch,
        })
    }

    /// Writes id items as a LIST. When several items share `common` (topics
    /// of one log usually do), it is said once, as a leading `@EPOCH` item,
    /// and items without an epoch are in it; otherwise an item's epoch is
    /// left out when the URL names the same one.
    fn format_id(&self, items: &[IdItem], common: Epoch) -> String {
        let sharing = items
            .iter()
            .filter(|i| !i.url_epoch && i.epoch == common)
            .count();
        let mut out = String::new();
        if sharing >= 2 {
            out.push_str(&format!("@{common}"));
        }
        for i in items {
            // With the prefix, an item without epoch means `common`;
            // without it, the URL's epoch (see `resume_list`).
            let implied = if sharing >= 2 {
                i.epoch == common
            } else {
                i.url_epoch
            };
            let topic = self.feed.position(i.index).0;
            list_item(&mut out, topic, (!implied).then_some(i.epoch), i.seq);
        }
        out
    }
}

/// One topic's part of a multiplexed SSE id.
#[derive(Clone, Copy)]
struct IdItem {
    index: usize,
    epoch: Epoch,
    seq: u64,
    /// The URL names this epoch for the topic.
    url_epoch: bool,
}

/// An event's block on a single-topic stream, `id:` to the blank line:
/// `id: EPOCH:SEQ` and the event JSON, or lean, `id:SEQ` (the epoch is the
/// `ready` one) and the data alone. Made once per event ([`Form`]).
pub(crate) fn sse_block(
    e: &Event,
    epoch: Epoch,
    encoding: Encoding,
    cache: &Arc<FormCache>,
) -> Bytes {
    let make = |e: &Event| {
        let mut b = BytesMut::with_capacity(e.json.len() + 48);
        match encoding {
            Encoding::Json => {
                let id = CursorText(epoch, e.seq);
                let _ = write!((&mut b).writer(), "id: {id}\ndata: ");
                b.put_slice(&e.json);
            }
            Encoding::Lean => {
                let _ = write!((&mut b).writer(), "id:{}\ndata:", e.seq);
                b.put_slice(&e.data());
            }
        }
        b.put_slice(b"\n\n");
        b.freeze()
    };
    match encoding {
        Encoding::Json => e.form(Form::SseJson, cache, make),
        Encoding::Lean => e.form(Form::SseLean, cache, make),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subscriber of a topic writes the same bytes for an event:
    /// made once, by the first, and shared (not equal copies).
    #[test]
    fn an_event_block_is_made_once_and_shared() {
        let topic = Topic::new("t").unwrap();
        let e = Event::build(&topic, 7, 1, br#"{"a":1}"#);
        let epoch = Epoch(0x0123_4567_89ab_cdef);
        let cache = FormCache::new(1 << 20);
        let a = sse_block(&e, epoch, Encoding::Json, &cache);
        let b = sse_block(&e.clone(), epoch, Encoding::Json, &cache);
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(
            &a[..],
            format!("id: {epoch}:7\ndata: {}\n\n", e.as_str()).as_bytes()
        );
        let lean = sse_block(&e, epoch, Encoding::Lean, &cache);
        assert_eq!(&lean[..], b"id:7\ndata:{\"a\":1}\n\n");
        let again = sse_block(&e, epoch, Encoding::Lean, &cache);
        assert_eq!(lean.as_ptr(), again.as_ptr());
    }
}
