//! WebSocket: hyper's upgrade, then tokio-tungstenite on the same counting
//! socket, so frame headers, masks, pings and close frames are all metered
//! as `ws`.
//!
//! The server sends one text frame per event (the event JSON, as every
//! transport delivers it) and control messages `{"type":"ready"|"gap"|
//! "reset",…}`. It pings on an interval and closes peers that stop
//! answering; fails the connection as RFC 6455 requires (1002 protocol
//! errors, 1007 invalid UTF-8, 1009 over-size messages); and closes 1012
//! (service restart) when the server drains, which tells clients to come
//! back — with jitter, so that they do not all come back at once.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::Request;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::deflate::{self, Params};
use super::handshake::{
    CLOSE_GRACE, Socket, agree, close, close_for, extension, opening, restarting, server_socket,
    switch_protocols,
};
use super::{control, frames};
use crate::admit::Access;
use crate::app::App;
use crate::error::ApiError;
use crate::log::Topic;
use crate::metrics::{Limit, Transport};
use crate::params::Query;
use crate::server::Conn;
use crate::sync::wake_gate::{Gate, Gates};
use crate::transport::encoding::{self, Encoding};
use crate::transport::fanout::{Entry, Fd, Variant};
use crate::transport::feed::{Delivery, End, Feed};
use crate::transport::signal::{GapFields, OpeningFields, ResetFields, Signal};
use crate::transport::{Reply, Wanted, start_of};

/// `GET /topics/{topic}/ws` and `GET /ws?topics=LIST`: validates the
/// handshake, answers `101`, and runs the session on the upgraded socket
/// in a task tracked for drain.
pub(crate) async fn subscribe(
    app: &App,
    wanted: Wanted,
    query: &Query,
    req: &mut Request<Incoming>,
    conn: &Conn,
    access: Access,
) -> Result<Reply, ApiError> {
    let opening = opening(req)?;
    let encoding = Encoding::of(query)?;
    let deflate = extension(app, req.headers());
    let (topics, token) = match wanted {
        Wanted::One(topic) => (vec![(topic, query.cursor()?)], None),
        Wanted::Many(list) => {
            let topics = list.into_iter().map(|(t, c)| (t, c.unwrap_or_default()));
            // `Some` marks a multiplexed session, token or not.
            (topics.collect(), Some(access.token))
        }
    };
    let feed = Feed::open(app, Transport::Ws, conn.link, topics, &access.grant).await?;
    let on_upgrade = hyper::upgrade::on(req);
    let session = Session {
        feed,
        settings: Settings::of(app.config()),
        // A multiplexed socket names its topic in every frame: not the
        // fast path's shared ones.
        direct: conn
            .direct
            .filter(|_| token.is_none() && app.fanout().is_some()),
        multi: token,
        encoding,
        deflate: deflate.as_ref().map(|d| d.0),
    };
    let mut reply = switch_protocols(app, on_upgrade, conn, opening, |upgraded| {
        session.run(upgraded)
    });
    agree(&mut reply, deflate);
    Ok(reply)
}

/// The settings a session reads while it runs (a whole `Config` clone
/// would sit in every idle session's state).
#[derive(Clone, Copy)]
struct Settings {
    max_message: usize,
    ping_interval: Duration,
    pong_timeout: Duration,
}

impl Settings {
    fn of(c: &crate::config::Config) -> Self {
        Settings {
            max_message: c.ws_max_message,
            ping_interval: c.ws_ping_interval,
            pong_timeout: c.ws_pong_timeout,
        }
    }
}

/// One subscriber's WebSocket: a feed encoded as text frames, plus the
/// keep-alive and whatever the peer sends.
struct Session {
    feed: Feed,
    settings: Settings,
    /// The socket's descriptor, when the fast path may write to it
    /// (cleartext HTTP/1.1, one topic, `--ws-fanout`).
    direct: Option<Fd>,
    /// A multiplexed session (`/ws?topics=`), with the subscriber's token
    /// for the topics it subscribes to later; `None` for `/topics/{t}/ws`.
    multi: Option<Option<String>>,
    encoding: Encoding,
    /// permessage-deflate, when the handshake agreed to it.
    deflate: Option<Params>,
}

/// Why a session stops, as the close frame to send (`None`: nobody to
/// tell).
type Stop = Option<CloseFrame>;

/// What woke a session.
enum Woke {
    /// The peer sent something (or went away: `None`).
    Peer(Option<Result<Message, WsError>>),
    /// The keep-alive timer fired.
    Timer,
    /// The feed has a delivery, or ended.
    Feed(Result<Delivery, End>),
    /// The fast path gave the socket back with nothing to tell: the
    /// session reads on from where it left off.
    Resumed,
}

impl Session {
    async fn run(mut self, upgraded: Upgraded) {
        let max = self.settings.max_message;
        let mut ws = server_socket(upgraded, self.deflate, max).await;
        let mut alive = Keepalive::new(self.settings);
        // The feed wakes the session once per event; the peer and the
        // keep-alive timer rarely have news then: each is polled only when
        // its own waker fired (see wake_gate.rs).
        let mut gates = Gates::default();
        let (peer, timer) = (gates.gate(), gates.gate());
        // Declared after `ws`, so dropped before it: the fast path gives
        // the socket back before the socket can close.
        let mut parked = Parked(None);
        // Whether to try the fast path before waiting: after the session
        // delivered, or heard from its peer or timer while parked — never
        // right after the fast path gave it back for a gap or a socket
        // that would block.
        let mut try_fast = false;
        let stop = loop {
            let parked_now =
                std::mem::take(&mut try_fast) && Box::pin(self.join(&mut ws, &mut parked)).await;
            let woke = if let (true, Some(entry)) = (parked_now, &parked.0) {
                let wait = wait_parked(
                    entry,
                    &mut self.feed,
                    &mut ws,
                    &mut alive,
                    &mut gates,
                    [&peer, &timer],
                );
                let (woke, pending) = wait.await;
                // The tail of a frame the fast path could not finish goes
                // before anything else, a close frame included.
                match self.write_pending(&mut ws, pending).await {
                    Ok(()) => woke,
                    Err(end) => Woke::Feed(Err(end)),
                }
            } else {
                let mut next = pin!(self.feed.next());
                poll_fn(|cx| {
                    if let Some(woke) =
                        peer_or_timer(cx, &mut gates, [&peer, &timer], &mut ws, &mut alive)
                    {
                        return Poll::Ready(woke);
                    }
                    next.as_mut().poll(cx).map(Woke::Feed)
                })
                .await
            };
            try_fast = matches!(woke, Woke::Feed(Ok(_)) | Woke::Peer(_) | Woke::Timer);
            let step = match woke {
                Woke::Peer(msg) => {
                    // A stream may hold more without waking anyone; the
                    // timer was reset.
                    peer.arm();
                    timer.arm();
                    alive.heard();
                    self.answer(&mut ws, msg).await
                }
                Woke::Timer => {
                    timer.arm();
                    match alive.expired() {
                        true => {
                            self.feed.limit_hit(Limit::PongTimeout);
                            Err(Some(policy("no pong within the deadline")))
                        }
                        false => self
                            .feed
                            .write(ws.send(Message::Ping(Bytes::new())))
                            .await
                            .map_err(stop_for),
                    }
                }
                Woke::Feed(Ok(d)) => self.send(&mut ws, &d).await.map_err(stop_for),
                Woke::Feed(Err(end)) => Err(stop_for(end)),
                Woke::Resumed => Ok(()),
            };
            if let Err(stop) = step {
                break stop;
            }
        };
        close(&mut ws, stop).await;
    }

    /// Parks the session on the fast path if it may take it now: its
    /// socket can be written directly, it follows one topic whose opening
    /// it told, and a deliverer stands at its cursor (or none runs yet).
    ///
    /// tungstenite must hold nothing unsent when the fast path takes the
    /// socket (a pong it queued on reading a ping, say): it would write it
    /// on its next read, between the fast path's frames. So the session
    /// joins only once a flush goes through at once.
    async fn join(&self, ws: &mut Socket, parked: &mut Parked) -> bool {
        let app = self.feed.app();
        let (Some(fd), Some(fanout)) = (self.direct, app.fanout()) else {
            return false;
        };
        if !self.feed.fast_eligible() {
            return false;
        }
        let Some((topic, cursor)) = self.feed.single() else {
            return false;
        };
        let flushed =
            poll_fn(|cx| Poll::Ready(matches!(ws.poll_flush_unpin(cx), Poll::Ready(Ok(()))))).await;
        if !flushed {
            return false;
        }
        let entry = parked.0.get_or_insert_with(|| {
            let variant = Variant::Ws {
                lean: self.encoding == Encoding::Lean,
                deflate: self.deflate,
            };
            Entry::new(fd, variant, self.feed.expires(), app.metrics())
        });
        fanout.join(app, topic, entry, cursor).await
    }

    /// Writes what the fast path left unsent, if anything, within the
    /// write timeout.
    async fn write_pending(&self, ws: &mut Socket, pending: Option<Bytes>) -> Result<(), End> {
        let Some(rest) = pending else {
            return Ok(());
        };
        let write = async {
            let io = ws.get_mut();
            io.write_all(&rest).await?;
            io.flush().await
        };
        self.feed.write(write).await
    }

    /// Handles what the peer sent; `Err` ends the session.
    async fn answer(
        &mut self,
        ws: &mut Socket,
        msg: Option<Result<Message, WsError>>,
    ) -> Result<(), Stop> {
        match msg {
            None => Err(None),
            Some(Err(e)) => Err(close_for(&e)),
            Some(Ok(Message::Close(_))) => {
                // tungstenite queued the close reply; send it.
                let _ = tokio::time::timeout(CLOSE_GRACE, ws.flush()).await;
                Err(None)
            }
            Some(Ok(Message::Text(text))) if self.multi.is_some() => {
                let token = self.multi.as_ref().and_then(Option::as_deref);
                let app = self.feed.app().clone();
                match control::handle(&app, token, &mut self.feed, &text).await {
                    control::Answer::Nothing => Ok(()),
                    control::Answer::Reply(reply) => self.reply(ws, reply).await,
                    // Boxed: rare, and its log read would otherwise set
                    // the size of every idle session's state.
                    control::Answer::Unsubscribe(topic) => {
                        Box::pin(self.unsubscribe(ws, topic)).await
                    }
                }
            }
            Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                let reply = r#"{"type":"error","code":"unsupported","message":"this socket only delivers events; publish with POST /topics/{topic}/events, or follow topics=LIST on /ws to subscribe by message"}"#;
                self.reply(ws, reply.to_owned()).await
            }
            // tungstenite queued the pong: a peer that pings but does not
            // read is a stalled writer like any other.
            Some(Ok(Message::Ping(_))) => self.feed.write(ws.flush()).await.map_err(stop_for),
            Some(Ok(_)) => Ok(()),
        }
    }

    /// Stops following `topic` and says so — after its `subscribed`, if
    /// the feed had not delivered that yet.
    async fn unsubscribe(&mut self, ws: &mut Socket, topic: Topic) -> Result<(), Stop> {
        match self.feed.opening_of(&topic).await {
            Ok(Some(d)) => self.send(ws, &d).await.map_err(stop_for)?,
            Ok(None) => {}
            Err(e) => self.reply(ws, control::unavailable(&topic, &e)).await?,
        }
        self.feed.remove(&topic);
        self.reply(ws, control::unsubscribed(&topic)).await
    }

    /// Sends one control message.
    async fn reply(&self, ws: &mut Socket, text: String) -> Result<(), Stop> {
        let text = encoding::control(self.encoding, text);
        let send = ws.send(deflate::message(self.deflate, true, text.into()));
        self.feed.write(send).await.map_err(stop_for)
    }

    /// Writes a delivery (with the opening `ready` message the first time;
    /// `subscribed` per topic on a multiplexed socket) and accounts for it.
    async fn send(&self, ws: &mut Socket, d: &Delivery) -> Result<(), End> {
        let batch = &d.batch;
        let start = start_of(batch);
        // A multiplexed socket names the topic in every control message.
        let named = self.multi.is_some().then(|| self.feed.position(d.index).0);
        let ready = if named.is_some() {
            "subscribed"
        } else {
            "ready"
        };
        let lean_next = encoding::lean_next(self.encoding, start);
        let mut control = Vec::with_capacity(3);
        if d.opening {
            let opening = OpeningFields::new(batch.epoch);
            let json = Signal::new(Some(ready), named, opening)
                .next(Some(start))
                .json();
            control.push(encoding::control(self.encoding, json));
        }
        if let Some(reason) = batch.reset {
            let fields = ResetFields::new(reason, batch.epoch);
            let json = Signal::new(Some("reset"), named, fields)
                .next(lean_next)
                .json();
            control.push(encoding::control(self.encoding, json));
        }
        if let Some(gap) = &batch.gap {
            let json = Signal::new(Some("gap"), named, GapFields::from(gap))
                .next(lean_next)
                .json();
            control.push(encoding::control(self.encoding, json));
        }
        if !control.is_empty() {
            let write = async {
                for text in control {
                    ws.feed(deflate::message(self.deflate, true, text.into()))
                        .await?;
                }
                ws.flush().await
            };
            self.feed.write(write).await?;
        }
        // tungstenite holds nothing unsent here (every write through it is
        // flushed before the session goes on), so event frames go straight
        // to the socket behind what it wrote.
        let forms = self.feed.app().forms();
        let frame = |e| frames::event(e, self.encoding, named, self.deflate, forms);
        let (one, many);
        let frames: &[_] = match &batch.events[..] {
            [] => &[],
            [e] => {
                one = [frame(e)];
                &one
            }
            events => {
                many = events.iter().map(frame).collect::<Vec<_>>();
                &many
            }
        };
        if !frames.is_empty() {
            self.feed.write(frames::write(ws.get_mut(), frames)).await?;
        }
        self.feed.delivered(batch);
        Ok(())
    }
}

/// A session's place on the fast path, taken back when it is dropped.
struct Parked(Option<Arc<Entry>>);

impl Drop for Parked {
    fn drop(&mut self) {
        if let Some(entry) = &self.0 {
            entry.reclaim();
        }
    }
}

/// Registers `cx` with the session's wake gates, then: the peer's next
/// message, or the keep-alive timer, if either fired (each polled only when
/// its own waker fired: see wake_gate.rs).
fn peer_or_timer(
    cx: &Context<'_>,
    gates: &mut Gates,
    [peer, timer]: [&Gate; 2],
    ws: &mut Socket,
    alive: &mut Keepalive,
) -> Option<Woke> {
    gates.register(cx);
    if let Poll::Ready(msg) = peer.poll(|cx| ws.poll_next_unpin(cx)) {
        return Some(Woke::Peer(msg));
    }
    if let Poll::Ready(()) = timer.poll(|cx| alive.timer.as_mut().poll(cx)) {
        return Some(Woke::Timer);
    }
    None
}

/// Waits, parked on the fast path, for the peer, the keep-alive timer, the
/// feed's end or the fast path giving the socket back; then takes the
/// socket back and moves the feed to where the fast path left it. Returns
/// what woke it and the bytes the fast path could not write, which go
/// first. (Kept small: it is boxed for as long as the socket is parked.)
async fn wait_parked(
    entry: &Entry,
    feed: &mut Feed,
    ws: &mut Socket,
    alive: &mut Keepalive,
    gates: &mut Gates,
    [peer, timer]: [&Gate; 2],
) -> (Woke, Option<Bytes>) {
    let woke = {
        let mut ended = pin!(feed.ended());
        poll_fn(|cx| {
            if let Some(woke) = peer_or_timer(cx, gates, [peer, timer], ws, alive) {
                return Poll::Ready(woke);
            }
            if let Poll::Ready(end) = ended.as_mut().poll(cx) {
                return Poll::Ready(Woke::Feed(Err(end)));
            }
            entry.poll_handed_back(cx).map(|()| Woke::Resumed)
        })
        .await
    };
    let back = entry.reclaim();
    feed.advance_to(back.cursor);
    let woke = back.ended().map_or(woke, |end| Woke::Feed(Err(end)));
    (woke, back.pending)
}

/// The keep-alive timer: after `ping_interval` of silence send a ping; if
/// nothing arrives within `pong_timeout` after it, the peer is dead.
struct Keepalive {
    timer: Pin<Box<Sleep>>,
    awaiting_pong: bool,
    settings: Settings,
}

impl Keepalive {
    fn new(settings: Settings) -> Self {
        Keepalive {
            timer: Box::pin(tokio::time::sleep(settings.ping_interval)),
            awaiting_pong: false,
            settings,
        }
    }

    /// The peer sent something: it is alive.
    fn heard(&mut self) {
        self.awaiting_pong = false;
        let at = Instant::now() + self.settings.ping_interval;
        self.timer.as_mut().reset(at);
    }

    /// The timer fired: `true` if a ping went unanswered; otherwise a ping
    /// is due now and the pong deadline starts.
    fn expired(&mut self) -> bool {
        if self.awaiting_pong {
            return true;
        }
        self.awaiting_pong = true;
        let at = Instant::now() + self.settings.pong_timeout;
        self.timer.as_mut().reset(at);
        false
    }
}

/// The close for why a feed ended; counts the limits it names.
fn stop_for(end: End) -> Stop {
    match end {
        End::Shutdown => Some(restarting()),
        End::Expired => Some(policy("token expired")),
        End::Fault => Some(CloseFrame {
            code: CloseCode::Again,
            reason: "demo fault injected".into(),
        }),
        // Queued behind what is pending: a peer that is merely slow will
        // still see why, and the close grace period bounds the attempt.
        End::WriteStalled => Some(policy("write timeout: the client is not reading")),
        End::Gone => None,
    }
}

/// A 1008 (policy violation) close.
fn policy(reason: &'static str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::Policy,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod size_tests {
    fn size_of_return<A, B, F: std::future::Future>(_: fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle WebSocket holds one of these futures; keep it small (it
    /// was 2.5 KiB while it cloned the whole `Config` and inlined the Redis
    /// backend's read future). The task that holds it is allocated in
    /// jemalloc's 1792-byte class: at 1712 bytes the future pushed it into
    /// the 2048 class, and an idle WebSocket cost 4.05 KiB instead of 3.58.
    #[test]
    fn the_session_future_stays_small() {
        let size = size_of_return(super::Session::run);
        assert!(size <= 1664, "Session::run future is {size} bytes");
    }
}
