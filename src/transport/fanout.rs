//! One pass per publish: the WebSocket and SSE subscribers of a topic that
//! are caught up, and its held long polls, are written to by one loop, not
//! each by its own task.
//!
//! Woken one by one, 10 000 subscribers of a topic cost 10 000 scheduler
//! wake-ups per publish, each touching its session's cold state (its feed,
//! wake gates, meter, socket readiness) before a `send` of the very bytes
//! all the others send too (docs/benchmarks.md, "Where a WebSocket
//! delivery's CPU goes"). Here a caught-up subscriber parks an [`Entry`] —
//! its socket, its cursor, which of the shared frames it takes — in its
//! topic's [`Group`], and its task sleeps. When the topic's head moves, the
//! group's deliverer (one task per shard: streams at one cursor share a
//! shard, held long polls are dealt to a shard per worker thread;
//! `--fanout-spread`) reads the new events once, makes each frame variant once (a
//! WebSocket's json or lean, deflated or not: the same bytes for every
//! subscriber of the variant, header included, since server frames are
//! unmasked; an SSE stream's json or lean event blocks, in one HTTP/1.1
//! chunk with its size line), and for
//! each entry in turn checks why it might end, writes the frames with one
//! non-blocking `send`, moves its cursor and counts the bytes, the
//! deliveries and their latency.
//!
//! **One writer at a time.** (A "session" below is a WebSocket's session
//! task or an SSE stream's task, which writes through its response writer,
//! `server/direct.rs`: that writer asks the stream for its next chunk
//! only once the socket took the last one whole, so the stream holds
//! nothing unsent when it parks.) An entry's socket is written either by
//! the fast path or by its session, never both: the entry's owner, under its
//! lock, says which. The deliverer writes only while the entry is `Fast`,
//! holding its lock; a session writes only after taking the entry back
//! (`Task`), which it does before anything else when it wakes — for its
//! peer, its keep-alive timer, an end condition — or when the deliverer
//! hands it back. The deliverer hands an entry back, and never touches it
//! again, when its `send` would block (with the unsent tail of a frame, if
//! any, which the session writes first), when it is behind or the batch
//! carries a gap or reset (the session tells those), or when the server
//! drains, its token expired or a demo fault was injected (the session ends
//! it as usual). Exactly once and in order follow: the cursor moves only
//! with a write, under the same lock, and whoever owns the entry reads on
//! from it.
//!
//! **Who takes the fast path**: single-topic WebSockets on cleartext
//! HTTP/1.1, once their opening is told (`--ws-fanout`), and single-topic
//! SSE streams that feedgate writes itself — on cleartext HTTP/1.1,
//! `server/direct.rs` — once theirs is
//! (`--sse-fanout`); and single-topic long polls that feedgate answers
//! itself, caught up after their opening read, with no `Origin` and no
//! `Connection: close` (`--longpoll-fanout`): the pass writes each one's
//! whole answer, head and body, made once per encoding and gzip, and then
//! leaves it — `Answered`, without waking its task, which wakes for the
//! client's next request. TLS needs its records made per connection and
//! HTTP/2 its stream frames: those subscribers keep their own task, as do
//! multiplexed ones and SSE streams hyper writes (its chunk encoder and
//! buffer sit between the stream and the socket).
//!
//! The socket is written through its raw descriptor, borrowed: the session
//! owns the socket and takes its entry back (so the deliverer can no
//! longer write) before it lets the socket go.

use std::collections::HashMap;
use std::io::Write;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::feed::End;
use super::sse::stream::sse_block;
use super::ws::deflate::Params;
use super::ws::frames;
use crate::app::App;
use crate::config::FanoutSpread;
use crate::http::chunk::chunk_of;
use crate::log::{Batch, Cursor, Event, Subscription, Topic};
use crate::metrics::{self, Link, LinkMetrics, Metrics, Transport};
use crate::transport::encoding::Encoding;

/// A socket's descriptor (Unix).
#[cfg(unix)]
pub(crate) type Fd = std::os::fd::RawFd;
#[cfg(not(unix))]
pub(crate) type Fd = i32;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which shared frames a subscriber takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// WebSocket frames: `encoding=lean` or not, permessage-deflate as
    /// agreed.
    Ws { lean: bool, deflate: Option<Params> },
    /// SSE event blocks in one HTTP/1.1 chunk: `encoding=lean` or not.
    Sse { lean: bool },
    /// A held long poll's whole answer, head and body: `encoding=lean` or
    /// not, gzipped (when that pays) or not.
    LongPoll { lean: bool, gzip: bool },
}

impl Variant {
    fn transport(self) -> Transport {
        match self {
            Variant::Ws { .. } => Transport::Ws,
            Variant::Sse { .. } => Transport::Sse,
            Variant::LongPoll { .. } => Transport::LongPoll,
        }
    }

    fn encoding(self) -> Encoding {
        match self {
            Variant::Ws { lean: true, .. }
            | Variant::Sse { lean: true }
            | Variant::LongPoll { lean: true, .. } => Encoding::Lean,
            _ => Encoding::Json,
        }
    }
}

/// Who writes an entry's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The fast path, while the entry sits in its group.
    Fast,
    /// The fast path gave it back: its session takes it from here.
    HandedBack,
    /// Its session.
    Task,
}

/// Why the fast path gave an entry back, as the session needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handback {
    /// The socket would not take the frames now.
    Blocked,
    /// The batch holds a gap or reset, or the entry is not where the group
    /// is: the session reads on from its own cursor.
    Behind,
    /// The feed ends (drain, token expiry, demo fault).
    Ended(End),
    /// The socket failed.
    Gone,
    /// A held long poll's answer went out whole: nothing is left to do
    /// but read the next request, which wakes the task by itself (it is
    /// not woken for this).
    Answered,
}

/// One subscriber's place on the fast path.
pub(crate) struct Entry {
    fd: Fd,
    variant: Variant,
    expires: Option<Instant>,
    state: Mutex<EntryState>,
    metrics: Arc<Metrics>,
}

struct EntryState {
    owner: Owner,
    cursor: Cursor,
    why: Option<Handback>,
    /// Which joining this is: a shard's list may still hold the entry from
    /// an earlier one (its session took it back and joined again, there or
    /// in another shard) — that place is stale, and skipped.
    ticket: u64,
    /// The tail of a frame the socket took only part of: written first.
    pending: Option<Bytes>,
    /// When the fast path last wrote to the socket (an SSE stream's
    /// heartbeat counts silence from it).
    written_at: Option<Instant>,
    waker: Option<Waker>,
}

/// What a session takes back with its entry.
pub(crate) struct Reclaimed {
    /// Where the subscriber is now.
    pub cursor: Cursor,
    /// Bytes to write before anything else.
    pub pending: Option<Bytes>,
    /// Why it was handed back (`None`: the session took it itself).
    pub why: Option<Handback>,
    /// When the fast path last wrote to the socket.
    pub written_at: Option<Instant>,
}

impl Reclaimed {
    /// Why the subscriber ends, when the fast path gave it back for that
    /// (its feed ended, or its socket failed).
    pub fn ended(&self) -> Option<End> {
        match self.why {
            Some(Handback::Ended(end)) => Some(end),
            Some(Handback::Gone) => Some(End::Gone),
            _ => None,
        }
    }
}

impl Entry {
    /// The entry of a session writing to `fd` in `variant`, whose token
    /// expires at `expires`; it starts owned by the session.
    pub fn new(
        fd: Fd,
        variant: Variant,
        expires: Option<Instant>,
        metrics: &Arc<Metrics>,
    ) -> Arc<Entry> {
        Arc::new(Entry {
            fd,
            variant,
            expires,
            metrics: metrics.clone(),
            state: Mutex::new(EntryState {
                owner: Owner::Task,
                cursor: Cursor::default(),
                why: None,
                ticket: 0,
                pending: None,
                written_at: None,
                waker: None,
            }),
        })
    }

    /// The fast path's series for this entry's transport.
    fn fanout_metrics(&self) -> &metrics::FanoutMetrics {
        match self.variant {
            Variant::Ws { .. } => &self.metrics.fanout,
            Variant::Sse { .. } => &self.metrics.sse_fanout,
            Variant::LongPoll { .. } => &self.metrics.longpoll_fanout,
        }
    }

    /// Takes the socket back for the session: from now only it writes.
    pub fn reclaim(&self) -> Reclaimed {
        let mut st = lock(&self.state);
        if st.owner == Owner::Fast {
            self.fanout_metrics().parked.dec();
        }
        st.owner = Owner::Task;
        st.waker = None;
        Reclaimed {
            cursor: st.cursor,
            pending: st.pending.take(),
            why: st.why.take(),
            written_at: st.written_at.take(),
        }
    }

    /// `Ready` once the fast path handed the entry back; otherwise `cx`'s
    /// waker is the one woken then.
    pub fn poll_handed_back(&self, cx: &Context<'_>) -> Poll<()> {
        let mut st = lock(&self.state);
        if st.owner != Owner::Fast {
            return Poll::Ready(());
        }
        if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            st.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Gives the entry back to its session for `why` (lock held, the
    /// entry the fast path's).
    fn hand_back(&self, st: &mut EntryState, why: Handback) {
        debug_assert_eq!(st.owner, Owner::Fast);
        let fanout = self.fanout_metrics();
        fanout.parked.dec();
        st.owner = Owner::HandedBack;
        st.why = Some(why);
        let counted = match why {
            Handback::Blocked => metrics::Handback::Blocked,
            Handback::Behind => metrics::Handback::Behind,
            Handback::Ended(_) => metrics::Handback::Ended,
            Handback::Gone => metrics::Handback::Gone,
            Handback::Answered => {
                self.metrics.longpoll_fanout_answers.inc();
                return;
            }
        };
        fanout.handed_back(counted);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }

    /// Whether the place holding `ticket` is the entry's current one on
    /// the fast path (lock held).
    fn holds(st: &EntryState, ticket: u64) -> bool {
        st.owner == Owner::Fast && st.ticket == ticket
    }

    /// Writes `frames` (the batch `from` → `to`) if the place holding
    /// `ticket` is still the entry's and nothing ends it, at `now`; whether
    /// it stays on the fast path, and the bytes the socket took.
    fn deliver(
        &self,
        ticket: u64,
        (from, to): (Cursor, Cursor),
        frames: &Bytes,
        ending: Option<End>,
        now: Instant,
    ) -> (bool, usize) {
        let mut st = lock(&self.state);
        if !Entry::holds(&st, ticket) {
            return (false, 0);
        }
        let expired = self.expires.is_some_and(|e| now >= e);
        if let Some(end) = ending.or(expired.then_some(End::Expired)) {
            self.hand_back(&mut st, Handback::Ended(end));
            return (false, 0);
        }
        if st.cursor != from || frames.is_empty() {
            self.hand_back(&mut st, Handback::Behind);
            return (false, 0);
        }
        match write_now(self.fd, frames) {
            Ok(n) if n == frames.len() => {
                st.cursor = to;
                st.written_at = Some(now);
                // A long poll is answered once: its entry leaves.
                if matches!(self.variant, Variant::LongPoll { .. }) {
                    self.hand_back(&mut st, Handback::Answered);
                    return (false, n);
                }
                (true, n)
            }
            Ok(n) => {
                // The rest goes first, from the session, which waits for
                // the socket to take it.
                st.cursor = to;
                st.written_at = Some(now);
                st.pending = Some(frames.slice(n..));
                self.hand_back(&mut st, Handback::Blocked);
                (false, n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.hand_back(&mut st, Handback::Blocked);
                (false, 0)
            }
            Err(_) => {
                self.hand_back(&mut st, Handback::Gone);
                (false, 0)
            }
        }
    }
}

/// One non-blocking `send` of `bytes` on the borrowed socket `fd`: how many
/// it took.
#[cfg(unix)]
fn write_now(fd: Fd, bytes: &[u8]) -> std::io::Result<usize> {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is the socket of a session that owns it and takes its
    // entry back — after which this is never called for it — before it
    // lets the socket go (`Entry`'s owner, under the lock held here). It
    // is borrowed: `ManuallyDrop` never closes it. tokio set it
    // non-blocking; std's `write` on a socket is `send` with
    // `MSG_NOSIGNAL`.
    let socket = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
    (&*socket).write(bytes)
}

#[cfg(not(unix))]
fn write_now(_: Fd, _: &[u8]) -> std::io::Result<usize> {
    Err(std::io::ErrorKind::WouldBlock.into())
}

/// How long a deliverer waits for news before it looks whether its
/// entries' sessions have all taken them back.
const SWEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The fast path of every topic: a group per topic in use.
pub(crate) struct Fanout {
    groups: Mutex<HashMap<Topic, Arc<Group>>>,
    shards: usize,
    /// Whose subscribers at one cursor are dealt to every shard.
    spread: FanoutSpread,
}

/// A topic's fast subscribers, in shards.
struct Group {
    topic: Topic,
    shards: Vec<Mutex<Shard>>,
}

#[derive(Default)]
struct Shard {
    /// Where every entry here is; `None` while no deliverer runs.
    cursor: Option<Cursor>,
    /// The entries, each with the ticket of its joining.
    entries: Vec<(Arc<Entry>, u64)>,
    /// A deliverer task runs (or is being started).
    running: bool,
    /// The next shard a joining entry goes to.
    turn: usize,
}

impl Fanout {
    /// A fast path with up to `shards` deliverers per topic (one per
    /// worker thread); subscribers at one cursor that `spread` names are
    /// dealt to every shard in turn, so each thread takes a share of every
    /// pass. The others share one deliverer, and another shard serves
    /// subscribers elsewhere in the log.
    pub fn new(shards: usize, spread: FanoutSpread) -> Fanout {
        Fanout {
            groups: Mutex::new(HashMap::new()),
            shards: shards.max(1),
            spread,
        }
    }

    fn group(&self, topic: &Topic) -> Arc<Group> {
        let mut groups = lock(&self.groups);
        groups
            .entry(topic.clone())
            .or_insert_with(|| {
                Arc::new(Group {
                    topic: topic.clone(),
                    shards: (0..self.shards).map(|_| Mutex::default()).collect(),
                })
            })
            .clone()
    }

    /// Puts `entry`, at `cursor` on `topic`, on the fast path; `false` when
    /// it cannot join now (every shard's deliverer is elsewhere in the
    /// log). The session then keeps serving it, and tries again after its
    /// next delivery.
    pub async fn join(&self, app: &App, topic: &Topic, entry: &Arc<Entry>, cursor: Cursor) -> bool {
        let group = self.group(topic);
        let n = group.shards.len();
        // Unless spread, a shard whose deliverer stands at this cursor
        // takes the entry: one deliverer per topic while its subscribers
        // share a cursor. (Spread, a stream's pass runs on both threads at
        // once; on two cores shared with the clients that cost 10 % more
        // CPU per delivery for about the same p99, while held long polls
        // spread kept their CPU and cut p99 to 0.6x: docs/benchmarks.md,
        // "One deliverer per cursor".) Topics spread their deliverers over
        // the threads.
        let spread = match self.spread {
            FanoutSpread::Off => false,
            FanoutSpread::Longpoll => matches!(entry.variant, Variant::LongPoll { .. }),
            FanoutSpread::All => true,
        };
        if !spread {
            for shard in &group.shards {
                let mut shard = lock(shard);
                if shard.cursor == Some(cursor) {
                    shard.place(entry, cursor);
                    return true;
                }
            }
        }
        // Otherwise the first shard in turn that is at the cursor or idle
        // takes it, an idle one starting a deliverer here: the topic's
        // first subscriber, subscribers elsewhere in the log, or (with
        // `spread`) the next share of a pass. A claimed shard stands at
        // the cursor at once, so subscribers joining meanwhile join it.
        let first = {
            let mut shard = lock(&group.shards[0]);
            shard.turn = shard.turn.wrapping_add(1);
            shard.turn % n
        };
        let mut claimed = None;
        for k in 0..n {
            let i = (first + k) % n;
            let mut shard = lock(&group.shards[i]);
            match shard.cursor {
                Some(c) if c == cursor => {
                    // Claimed by another joiner since the look above.
                    shard.place(entry, cursor);
                    return true;
                }
                None if !shard.running => {
                    shard.running = true;
                    shard.cursor = Some(cursor);
                    shard.place(entry, cursor);
                    claimed = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(i) = claimed else {
            return false;
        };
        let sub = match app.log().subscribe(topic).await {
            Ok(sub) => sub,
            Err(_) => {
                // No deliverer after all: this entry goes back to its
                // session untouched, and any that joined meanwhile are
                // handed back to theirs.
                let (ours, others) = group
                    .stop(i)
                    .into_iter()
                    .partition::<Vec<_>, _>(|(e, _)| Arc::ptr_eq(e, entry));
                for (e, _) in ours {
                    e.reclaim();
                }
                hand_back_all(others, Handback::Behind);
                return false;
            }
        };
        app.tracker()
            .spawn(deliver(app.clone(), group, i, sub, cursor));
        true
    }
}

impl Shard {
    /// Puts `entry` here, on the fast path at `cursor`.
    fn place(&mut self, entry: &Arc<Entry>, cursor: Cursor) {
        let ticket = enter(entry, cursor);
        self.entries.push((entry.clone(), ticket));
    }
}

impl Group {
    /// Ends shard `i`'s deliverer: the shard is idle again; the places it
    /// held.
    fn stop(&self, i: usize) -> Vec<(Arc<Entry>, u64)> {
        let mut shard = lock(&self.shards[i]);
        shard.cursor = None;
        shard.running = false;
        std::mem::take(&mut shard.entries)
    }
}

/// Gives each entry of `places` that still holds its place there back to
/// its session, for `why`.
fn hand_back_all(places: Vec<(Arc<Entry>, u64)>, why: Handback) {
    for (e, ticket) in places {
        let mut st = lock(&e.state);
        if Entry::holds(&st, ticket) {
            e.hand_back(&mut st, why);
        }
    }
}

/// Hands `entry` to the fast path at `cursor`: the ticket of its new
/// place.
fn enter(entry: &Entry, cursor: Cursor) -> u64 {
    let mut st = lock(&entry.state);
    if st.owner != Owner::Fast {
        entry.fanout_metrics().parked.inc();
    }
    st.owner = Owner::Fast;
    st.cursor = cursor;
    st.why = None;
    st.ticket = st.ticket.wrapping_add(1);
    st.ticket
}

/// The deliverer of one shard of `group`: one pass over its entries per
/// batch of new events, until it has none.
async fn deliver(app: App, group: Arc<Group>, i: usize, mut sub: Subscription, mut cursor: Cursor) {
    let mut stop = app.stop_watch();
    let link = Link::H1;
    let on = |t: Transport| app.metrics().transport(t).on(link);
    // Per transport, in `Transport::ALL` order (`t as usize`).
    let lms = Transport::ALL.map(on);
    loop {
        let ended = tokio::select! {
            biased;
            _ = stop.stopped() => Some(End::Shutdown),
            _ = sub.wait_beyond(&cursor) => None,
            _ = tokio::time::sleep(SWEEP) => {
                // A quiet topic: let go of the entries whose sessions took
                // them back, and end once none is left.
                let mut shard = lock(&group.shards[i]);
                shard.entries.retain(|(e, t)| Entry::holds(&lock(&e.state), *t));
                if shard.entries.is_empty() {
                    shard.cursor = None;
                    shard.running = false;
                    return;
                }
                continue;
            }
        };
        let batch = match ended {
            Some(_) => None,
            None => app
                .log()
                .read_subscribed(&sub, &group.topic, &cursor, app.config().max_batch)
                .await
                .ok(),
        };
        // Gaps, resets, a log that fails, a drain: every entry goes back to
        // its session, which says what has to be said; this deliverer ends.
        let usable = batch.filter(|b| {
            !b.events.is_empty()
                && b.gap.is_none()
                && b.reset.is_none()
                && cursor.epoch == Some(b.epoch)
        });
        let Some(batch) = usable else {
            let why = match ended {
                Some(end) => Handback::Ended(end),
                None => Handback::Behind,
            };
            hand_back_all(group.stop(i), why);
            return;
        };
        let from = cursor;
        cursor = batch.next_cursor();
        let entries = {
            let mut shard = lock(&group.shards[i]);
            shard.cursor = Some(cursor);
            std::mem::take(&mut shard.entries)
        };
        // Why each transport's entries end now, if they do: the drain, or
        // a demo fault injected on that transport.
        let ending = |t: Transport| {
            if app.stopping() {
                Some(End::Shutdown)
            } else if app
                .demo()
                .is_some_and(|d| d.fault(t) != crate::demo::Fault::Ok)
            {
                Some(End::Fault)
            } else {
                None
            }
        };
        let endings = Transport::ALL.map(ending);
        let mut made: Vec<(Variant, Bytes)> = Vec::with_capacity(2);
        let mut kept = Vec::with_capacity(entries.len());
        // Bytes written, per transport.
        let mut bytes = [0u64; Transport::ALL.len()];
        // Long polls answered in this pass: their clients come back, at
        // the new cursor, in a moment.
        let mut answered = false;
        // This pass's deliveries, folded into the shared metrics once at
        // its end.
        let mut tallies = lms.map(LinkMetrics::tally);
        // The batch's event JSON bytes: what each delivery of it carries.
        let payload = batch
            .events
            .iter()
            .map(|e| e.json.len() as u64)
            .sum::<u64>();
        let now = Instant::now();
        for (e, ticket) in entries {
            // Borrowed, not cloned: a clone per subscriber is two atomic
            // updates of the bytes' count.
            let k = match made.iter().position(|(v, _)| *v == e.variant) {
                Some(k) => k,
                None => {
                    made.push((e.variant, frames_of(&app, &batch, e.variant)));
                    made.len() - 1
                }
            };
            let frames = &made[k].1;
            let t = e.variant.transport() as usize;
            let (stays, wrote) = e.deliver(ticket, (from, cursor), frames, endings[t], now);
            bytes[t] = bytes[t].saturating_add(wrote as u64);
            if wrote > 0 {
                tallies[t].sent(payload, batch.events.iter().map(|e| e.time_us));
                if let Variant::LongPoll { .. } = e.variant {
                    // The request is answered (the rest, if any, is its
                    // task's to write): counted here, once.
                    app.metrics()
                        .request(Transport::LongPoll, metrics::Outcome::Events);
                    answered = true;
                }
            }
            if stays {
                kept.push((e, ticket));
            }
        }
        for (lm, n) in lms.iter().zip(bytes) {
            if n > 0 {
                lm.wire_out.inc_by(n);
            }
        }
        drop(tallies);
        let mut shard = lock(&group.shards[i]);
        // Entries that joined during the pass are already there, at the
        // new cursor.
        kept.append(&mut shard.entries);
        shard.entries = kept;
        // A shard whose long polls were all answered stays for their next
        // requests, until a pass or a sweep finds it empty.
        if shard.entries.is_empty() && !answered {
            shard.cursor = None;
            shard.running = false;
            return;
        }
    }
}

/// The frames of `batch`'s events in `variant`, one after the other: what
/// every subscriber of the variant is sent. WebSocket frames are header
/// and payload (server frames are unmasked); SSE blocks go in one chunk.
fn frames_of(app: &App, batch: &Batch, variant: Variant) -> Bytes {
    let encoding = variant.encoding();
    let forms = app.forms();
    match variant {
        Variant::Ws { deflate, .. } => {
            let frames: Vec<frames::EventFrame> = batch
                .events
                .iter()
                .map(|e: &Event| frames::event(e, encoding, None, deflate, forms))
                .collect();
            let mut buf = BytesMut::new();
            frames::put(&mut buf, &frames);
            buf.freeze()
        }
        Variant::Sse { .. } => {
            let blocks: Vec<Bytes> = batch
                .events
                .iter()
                .map(|e| sse_block(e, batch.epoch, encoding, forms))
                .collect();
            let parts: Vec<&[u8]> = blocks.iter().map(|b| &b[..]).collect();
            chunk_of(&parts)
        }
        // Empty when the answer cannot be made whole: every poll is then
        // handed back, and answers itself.
        Variant::LongPoll { gzip, .. } => {
            super::poll::held_answer(app, batch, encoding, gzip).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn app() -> (App, Arc<Metrics>) {
        let config = Config::default();
        let log = crate::log::Log::memory(config.retention, config.max_topics);
        let metrics = Arc::new(Metrics::new());
        let tracker = tokio_util::task::TaskTracker::new();
        let app = App::new(log, metrics.clone(), config, tracker).unwrap();
        (app, metrics)
    }

    fn at(after: u64) -> Cursor {
        Cursor {
            after: Some(after),
            epoch: None,
        }
    }

    /// Joins an entry of `variant` per cursor of `cursors` to `fanout`'s
    /// topic `topic`: whether each joined, and each shard's cursor and
    /// entry count, fewest entries first. A shard runs a deliverer exactly
    /// when it stands at a cursor.
    async fn join_all(
        fanout: &Fanout,
        topic: &str,
        variant: Variant,
        cursors: &[Cursor],
    ) -> (Vec<bool>, Vec<(Option<Cursor>, usize)>, Arc<Metrics>) {
        let (app, metrics) = app();
        let topic = Topic::new(topic).unwrap();
        let mut joined = Vec::new();
        for &cursor in cursors {
            // Never written: nothing is published.
            let entry = Entry::new(-1, variant, None, &metrics);
            joined.push(fanout.join(&app, &topic, &entry, cursor).await);
        }
        let mut shards: Vec<_> = fanout
            .group(&topic)
            .shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                assert_eq!(shard.running, shard.cursor.is_some(), "a claimed shard");
                (shard.cursor, shard.entries.len())
            })
            .collect();
        shards.sort_by_key(|(_, n)| *n);
        (joined, shards, metrics)
    }

    const SSE: Variant = Variant::Sse { lean: false };
    const LONG_POLL: Variant = Variant::LongPoll {
        lean: false,
        gzip: false,
    };

    /// Subscribers at one cursor share one deliverer; a subscriber
    /// elsewhere in the log starts its own in an idle shard; a third
    /// cursor finds none free and stays with its session. No shard is
    /// left claimed without a deliverer (one claimed and then abandoned
    /// for a later match once stayed "running" for good).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_deliverer_per_cursor() {
        let fanout = Fanout::new(2, FanoutSpread::Off);
        let cursors = [at(0), at(0), at(0), at(7), at(0), at(0), at(0), at(9)];
        let (joined, shards, metrics) = join_all(&fanout, "t", SSE, &cursors).await;
        let want = [true, true, true, true, true, true, true, false];
        assert_eq!(joined, want);
        assert_eq!(shards, [(Some(at(7)), 1), (Some(at(0)), 6)]);
        assert_eq!(metrics.sse_fanout.parked.get(), 7);
    }

    /// With `--fanout-spread all`, subscribers at one cursor are dealt to
    /// every shard in turn, each with its own deliverer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spread_deals_one_cursor_to_every_shard() {
        let fanout = Fanout::new(2, FanoutSpread::All);
        let (joined, shards, metrics) = join_all(&fanout, "t", SSE, &[at(0); 6]).await;
        assert_eq!(joined, [true; 6]);
        assert_eq!(shards, [(Some(at(0)), 3), (Some(at(0)), 3)]);
        assert_eq!(metrics.sse_fanout.parked.get(), 6);
    }

    /// By default held long polls are spread and streams share one
    /// deliverer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn by_default_long_polls_spread_and_streams_share() {
        let fanout = Fanout::new(2, FanoutSpread::default());
        let (_, streams, _) = join_all(&fanout, "streams", SSE, &[at(0); 4]).await;
        assert_eq!(streams, [(None, 0), (Some(at(0)), 4)]);
        let (_, polls, metrics) = join_all(&fanout, "polls", LONG_POLL, &[at(0); 4]).await;
        assert_eq!(polls, [(Some(at(0)), 2), (Some(at(0)), 2)]);
        assert_eq!(metrics.longpoll_fanout.parked.get(), 4);
    }
}
