// feedgate.js — a browser client for feedgate with the WebSocket API and
// transport fallback (WebSocket → SSE → long polling → short polling).
//
// ES module, no dependencies, no build step. See clients/js/README.md.
//
//   import { FeedgateSocket } from '/feedgate.js';
//   const s = new FeedgateSocket('https://gw.example', 'prices');
//   s.onmessage = (e) => console.log(e.seq, JSON.parse(e.data));
//
//   // Many topics over one connection (docs/protocol.md, "Multiplexed
//   // subscriptions (v1.1)"), changed at run time:
//   const m = new FeedgateSocket('https://gw.example', ['prices', 'news@0']);
//   m.onmessage = (e) => console.log(e.topic, e.seq);
//   m.subscribe('alerts');
//   m.unsubscribe('news');
//
// How it stays exactly-once: the server's log is the buffer. The socket
// keeps one cursor per topic (epoch + last delivered seq) for all
// transports; every connection it opens starts from those cursors, and an
// event is handed to the application only if its seq is its topic's next
// one. So a switch between transports (both may deliver for a moment)
// never repeats or skips an event; a gap or a reset is passed on only when
// the server signals it. Following other topics on WebSocket is a message
// on the open socket; on SSE and polls it is a new request from the
// cursors, so the topics that stay lose and repeat nothing either.
//
// A transport is trusted only once it has proved it delivers: the server
// always opens SSE and WebSocket streams with a `ready` signal, and answers
// polls with a body. No proof within `probeTimeout` (a WebSocket or SSE
// stream held by a buffering proxy, a refused upgrade, an error status) and
// the next transport is tried. SSE, the transport proxies buffer most, is
// also checked once against the server's probe (`/probe/sse`): messages
// sent 250 ms apart that arrive all together mean a buffering path, found
// in about a second rather than after the timeout.
//
// When it falls back or climbs back, the socket tells the server why
// (`POST /telemetry/switch`, a beacon: refused, stalled, buffered, cut after
// N s, closed with code C, climb), so that operators see which paths fail
// their clients. `diagnose()` runs the checks of `feedgate doctor` from the
// browser.

/** The transports, best first. */
export const TRANSPORTS = Object.freeze(['ws', 'sse', 'longpoll', 'poll']);

const DEFAULTS = Object.freeze({
  transports: TRANSPORTS,
  // How long a new connection has to prove it delivers (ms).
  probeTimeout: 4000,
  // How often to try climbing back to a better transport (ms; 0: never).
  probeInterval: 20000,
  // Short-poll interval (ms).
  pollInterval: 1000,
  // Long-poll hold asked of the server (seconds).
  longpollTimeout: 25,
  // Longest wait for an ordinary poll answer before the poll counts as
  // failed (ms).
  requestTimeout: 10000,
  // Reconnect backoff: first delay and cap (ms), doubled per failed round,
  // with full jitter (a random wait between 0 and the delay).
  reconnectDelay: 500,
  maxReconnectDelay: 15000,
  // After the server drains for a restart (WebSocket close 1012, an SSE
  // `restart` event, a long poll with Retry-After-Ms): wait the server's
  // delay, or without one a random delay in [0, restartSpread] (ms), so the
  // clients of a restarted server do not all come back at once.
  restartSpread: 5000,
  // Where to start: omitted = from now; 0 = the oldest retained event; N
  // or 'EPOCH:N' = after that cursor. With several topics, it applies to
  // each topic listed without `@CURSOR`; or `{topic: cursor, …}`.
  after: undefined,
  // Subscriber token (a JWT): `Authorization: Bearer` on polls, `?token=`
  // on SSE and WebSocket (browsers cannot set headers on those). A string,
  // or a function returning one or a promise of one, called for every new
  // connection, so that an expired token is replaced on reconnect.
  token: undefined,
  // Token for send() (the server's publish token); defaults to `token`.
  publishToken: undefined,
  // Remember the last transport that worked in sessionStorage, so a reload
  // does not repeat failed probes.
  remember: true,
  // Tell the server when it switches transports, and why (`POST
  // /telemetry/switch`, counted in feedgate_client_transport_switches_total):
  // one small report per switch, at most TELEMETRY_PER_MINUTE, best effort.
  telemetry: true,
  // Before trusting SSE (when a transport follows it in the list), check
  // once per socket that the path does not buffer it: a probe stream
  // (`/probe/sse`) whose messages the server sends 250 ms apart must not
  // arrive all together. Costs one request of about a second.
  bufferCheck: true,
  // 'json' (events are the v1 event object) or 'lean' (events are the
  // published data alone; `e.seq` and `e.topic` are still set, counted
  // from the server's `next`: docs/protocol.md, "Lean encoding").
  // permessage-deflate needs no option: browsers offer it on every
  // WebSocket and the server accepts it.
  encoding: 'json',
});

const STORAGE_PREFIX = 'feedgate.transport:';
// Statuses after which retrying cannot help: bad topic or cursor, auth.
const FATAL_STATUSES = new Set([400, 401, 403]);
// A connection up this long (ms) counts as stable when it drops.
const STABLE_MS = 10000;
// A WebSocket frame is a control message iff it starts with this.
const CONTROL_PREFIX = '{"type":';
// Reports of transport switches sent in any minute, at most.
const TELEMETRY_PER_MINUTE = 4;
// The buffer check: probe messages sent this far apart (ms) that arrive
// closer than BUNCHED_SHARE of it were held and released together (the
// rule `feedgate doctor` uses, src/doctor/verdict.rs).
const CHECK_COUNT = 3;
const CHECK_INTERVAL_MS = 250;
const BUNCHED_SHARE = 0.3;
// The epoch of a topic nobody has published to yet.
const NO_EPOCH = '0000000000000000';
// Topic names, as the server checks them (`,` and `@` are not in it, so a
// LIST needs no escaping).
const TOPIC_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
// `error` codes of a refused WebSocket subscribe that no retry can fix:
// the topic is dropped (with a `topicerror` event) and the rest go on.
const TOPIC_REFUSALS = new Set([
  'invalid_topic',
  'invalid_cursor',
  'too_many_topics',
  'forbidden',
  'unauthorized',
]);

/**
 * A feedgate subscription with the browser WebSocket API, to one topic or
 * to many over one connection.
 *
 * Events: `open` (once, when the first transport has proved it delivers),
 * `message` (one per event, exactly once and in order per topic), `close`,
 * `error` (only before a fatal close), and also `gap`, `reset` (per topic),
 * `transportchange` and `topicerror`. Each has an `on…` handler property,
 * as on WebSocket.
 *
 * While it switches or reconnects transports, `readyState` stays `OPEN`:
 * nothing is lost meanwhile, since it resumes from its cursors.
 */
export class FeedgateSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  /**
   * @param {string} url   the server's base URL (`https://gw.example`,
   *                       or relative to the page, e.g. `/`)
   * @param {string|string[]} topics one topic (`/topics/{topic}/…`, the v1
   *                       endpoints), or an array of topics followed over
   *                       one connection (`/ws?topics=…`, `/sse?topics=…`,
   *                       …), each `TOPIC` or `TOPIC@CURSOR`
   * @param {object} [options] see DEFAULTS above and the README
   */
  constructor(url, topics, options = {}) {
    super();
    const base = new URL(url, globalThis.location?.href);
    if (!/^https?:$/.test(base.protocol)) {
      throw new SyntaxError(`FeedgateSocket: url must be http(s), got ${base.protocol}`);
    }
    this.url = base.href.replace(/\/+$/, '');
    this.readyState = FeedgateSocket.CONNECTING;
    this.protocol = '';
    this.extensions = '';
    this.bufferedAmount = 0;
    this.binaryType = 'blob';
    this.transport = null;

    const o = { ...DEFAULTS, ...options };
    o.transports = (o.transports || TRANSPORTS).filter((t) => TRANSPORTS.includes(t));
    if (o.transports.length === 0) throw new SyntaxError('FeedgateSocket: no known transport');
    this._o = o;
    // Where each topic stands: topic → {epoch, seq}; seq null until the
    // server has placed a "from now" subscription. Insertion order is the
    // order of the LIST sent to the server.
    this._pos = new Map();
    if (Array.isArray(topics)) {
      // Multiplexed from the start, even with one topic.
      this._multi = true;
      this.topic = null;
      for (const item of topics) {
        const [topic, at] = splitItem(item);
        if (this._pos.has(topic)) throw new SyntaxError(`FeedgateSocket: topic ${topic} is listed twice`);
        this._pos.set(topic, parseCursor(at !== undefined ? at : startOf(o.after, topic)));
      }
    } else {
      // One topic on the v1 endpoints, exactly as before multiplexing.
      this._multi = false;
      this.topic = String(topics);
      this._pos.set(this.topic, parseCursor(o.after));
    }
    this._storageKey = `${STORAGE_PREFIX}${this.url}`;
    this._conns = new Set(); // every connection not yet closed
    this._active = null; // the connection that proved itself and delivers
    this._probe = null; // a connection being tried (fallback or climb)
    this._round = 0; // failed rounds in a row, for the backoff
    this._retryAfter = 0; // ms, the longest Retry-After since the last wait
    this._timers = new Set();
    this._probeTimer = null;
    // What failed since the last transport proved: {t, why, reason, code,
    // after_s}; the cause of the next switch is among them.
    this._failures = [];
    this._reported = []; // when the reports of the last minute were sent
    this._sseChecked = false; // the buffer check passed once: not again
    this._retargeting = false; // a topic change is queued for the connections
    this._origin = base.origin;

    for (const type of ['open', 'message', 'close', 'error', 'gap', 'reset', 'transportchange', 'topicerror']) {
      this[`on${type}`] = null;
      // Registered first, so handler properties run before other listeners.
      this.addEventListener(type, (e) => this[`on${type}`]?.call(this, e));
    }
    // Like WebSocket, nothing fires before the constructor's caller could
    // attach handlers.
    this._later(() => this._connectFrom(this._startIndex(), 'connect'), 0);
  }

  get CONNECTING() { return 0; }
  get OPEN() { return 1; }
  get CLOSING() { return 2; }
  get CLOSED() { return 3; }

  /** The topics followed, in the order they were added. */
  get topics() {
    return [...this._pos.keys()];
  }

  /**
   * Where it stands. One topic: the cursor of the last delivered event,
   * `EPOCH:SEQ`, or null. Several: the LIST it would reconnect with
   * (`a@EPOCH:SEQ,b,…`).
   */
  get cursor() {
    return this._multi ? this._list() : this.cursorOf(this.topic);
  }

  /** The seq of the last delivered event (one topic; null with several). */
  get lastSeq() {
    return this._multi ? null : this._pos.get(this.topic)?.seq ?? null;
  }

  /** A topic's cursor (`EPOCH:SEQ`), or null when it has none yet. */
  cursorOf(topic) {
    const c = this._pos.get(topic);
    return c && c.seq !== null ? cursorText(c) : null;
  }

  /**
   * Follows one more topic, over the same connection: from `cursor`
   * (`0`, `N` or `EPOCH:N`; omitted: from now). On WebSocket it is a
   * `subscribe` message; on SSE and polls a new request with the new LIST,
   * from every topic's cursor. A socket made for one topic becomes a
   * multiplexed one. Returns false when the topic is followed already.
   */
  subscribe(topic, cursor) {
    topic = String(topic);
    if (!TOPIC_RE.test(topic)) throw new SyntaxError(`FeedgateSocket: bad topic name ${topic}`);
    const at = parseCursor(cursor);
    if (this.readyState >= FeedgateSocket.CLOSING) {
      throw new DOMException('FeedgateSocket is closed', 'InvalidStateError');
    }
    if (this._pos.has(topic)) return false;
    this._pos.set(topic, at);
    this._goMulti();
    this._retarget();
    return true;
  }

  /**
   * Stops following a topic: none of its events is delivered after this
   * call. Its cursor is forgotten (subscribing again starts where that
   * subscribe says). Returns false when it was not followed.
   */
  unsubscribe(topic) {
    topic = String(topic);
    if (this.readyState >= FeedgateSocket.CLOSING || !this._pos.delete(topic)) return false;
    this._goMulti();
    this._retarget();
    return true;
  }

  /**
   * Publishes one JSON value (`POST /topics/{topic}/events`) to `topic`,
   * by default the socket's one topic (a socket following several must
   * name it). A string is sent as is (it must be JSON, as `JSON.stringify`
   * makes it); anything else is JSON-encoded. Returns a promise of
   * `{topic, seq, epoch}`, rejected on failure; not awaiting it is fine.
   */
  send(data, topic = this.topic) {
    const fail = (e) => {
      const p = Promise.reject(e);
      p.catch(() => {});
      return p;
    };
    if (this.readyState >= FeedgateSocket.CLOSING) {
      return fail(new DOMException('FeedgateSocket is closed', 'InvalidStateError'));
    }
    if (topic === null || topic === undefined) {
      return fail(new TypeError('FeedgateSocket: send(data, topic) needs a topic when following several'));
    }
    const body = typeof data === 'string' ? data : JSON.stringify(data);
    const p = Promise.resolve()
      .then(() => this._token(this._o.publishToken ?? this._o.token))
      .then((token) =>
        fetch(`${this.url}/topics/${encodeURIComponent(topic)}/events`, {
          method: 'POST',
          headers: { ...authHeaders(token), 'content-type': 'application/json' },
          body,
        }),
      )
      .then(async (res) => {
        const text = await res.text();
        if (!res.ok) throw new Error(`publish failed: ${res.status} ${text}`);
        return JSON.parse(text);
      });
    // A caller that ignores the result (as with WebSocket.send) does not
    // get an unhandled rejection.
    p.catch(() => {});
    return p;
  }

  /** Closes the subscription. `close` fires (asynchronously) once. */
  close(code = 1000, reason = '') {
    if (this.readyState >= FeedgateSocket.CLOSING) return;
    this._shutdown(code, reason, true);
  }

  // ---- following other topics ----

  /** From now on, the multiplexed endpoints (a one-topic socket that
   *  subscribes to another topic). */
  _goMulti() {
    if (this._multi) return;
    this._multi = true;
    this.topic = null;
  }

  /**
   * Tells every open connection that the topics changed, once per turn of
   * the event loop, so that several subscribe() calls in a row cost one
   * new request on SSE and polls.
   */
  _retarget() {
    if (this._retargeting) return;
    this._retargeting = true;
    queueMicrotask(() => {
      this._retargeting = false;
      if (this.readyState >= FeedgateSocket.CLOSING) return;
      for (const c of this._conns) c.retarget();
    });
  }

  // ---- connecting, falling back, climbing back ----

  _startIndex() {
    if (!this._o.remember) return 0;
    try {
      const t = globalThis.sessionStorage?.getItem(this._storageKey);
      const i = this._o.transports.indexOf(t);
      return i < 0 ? 0 : i;
    } catch {
      return 0; // storage disabled
    }
  }

  _remember(name) {
    if (!this._o.remember) return;
    try {
      globalThis.sessionStorage?.setItem(this._storageKey, name);
    } catch {
      // storage disabled or full: only the optimisation is lost
    }
  }

  /**
   * Tries transports from index `i` down the list until one proves itself;
   * `why` ('connect' or 'fallback') goes with the transportchange event.
   */
  _connectFrom(i, why) {
    if (this.readyState >= FeedgateSocket.CLOSING) return;
    const list = this._o.transports;
    if (i >= list.length) {
      // Every transport failed: wait, then start over from the best.
      this._round += 1;
      this._later(() => this._connectFrom(0, why), this._backoff(this._round));
      return;
    }
    this._open(list[i], {
      onProved: (conn) => this._activate(conn, why),
      onFailed: () => this._connectFrom(i + 1, why),
    });
  }

  /** Every `probeInterval`, tries the transports better than the current one. */
  _scheduleClimb() {
    clearTimeout(this._probeTimer);
    this._probeTimer = null;
    this._failures = []; // failed climbs are not news
    const at = this._o.transports.indexOf(this.transport);
    if (at <= 0 || !(this._o.probeInterval > 0)) return;
    this._probeTimer = setTimeout(() => this._climb(0, at), this._o.probeInterval);
  }

  _climb(i, at) {
    if (this.readyState >= FeedgateSocket.CLOSING || !this._active) return;
    if (this._probe || i >= at) {
      this._scheduleClimb();
      return;
    }
    this._open(this._o.transports[i], {
      onProved: (conn) => this._activate(conn, 'upgrade'),
      onFailed: () => this._climb(i + 1, at),
    });
  }

  /** Opens one connection from the current cursors and watches its proof. */
  _open(name, { onProved, onFailed }) {
    const Conn = CONNECTIONS[name];
    const conn = new Conn(this, name);
    this._probe = conn;
    this._conns.add(conn);
    let settled = false;
    let timer;
    conn.onProved = () => {
      conn.proved = true;
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (this._probe === conn) this._probe = null;
      onProved(conn);
    };
    conn.onLost = (why, status, retryAfter, restart) => {
      clearTimeout(timer);
      // The server asked for a pause (503 while draining, 429): the next
      // round of attempts waits at least that long.
      if (retryAfter > 0) this._retryAfter = Math.max(this._retryAfter, retryAfter * 1000);
      this._conns.delete(conn);
      if (this.readyState >= FeedgateSocket.CLOSING) return;
      if (FATAL_STATUSES.has(status)) {
        this._fatal(4000 + status, why);
        return;
      }
      if (!settled) {
        settled = true;
        if (this._probe === conn) this._probe = null;
        this._failed(conn, why);
        onFailed(why);
      } else if (this._active === conn) {
        this._lost(conn, why, restart);
      }
    };
    // The token first (it may be fetched), then the proof's clock starts.
    const begin = (token) => {
      if (conn.closed) return;
      conn.token = token;
      timer = setTimeout(() => conn.as('stalled').fail(`no answer within ${this._o.probeTimeout} ms`), this._o.probeTimeout);
      conn.begin();
    };
    let token;
    try {
      token = this._token();
    } catch (e) {
      token = Promise.reject(e);
    }
    if (typeof token?.then === 'function') {
      const limit = this._o.requestTimeout;
      timer = setTimeout(() => conn.fail(`no token within ${limit} ms`), limit);
      token.then(
        (t) => {
          clearTimeout(timer);
          begin(t);
        },
        (e) => conn.fail(`no token: ${e?.message ?? e}`),
      );
    } else {
      begin(token);
    }
  }

  _activate(conn, why) {
    conn.since = performance.now();
    this._retryAfter = 0;
    const previous = this._active;
    this._active = conn;
    if (previous && previous !== conn) {
      previous.close();
      this._conns.delete(previous);
    }
    const from = this.transport;
    this.transport = conn.name;
    this._remember(conn.name);
    if (this.readyState === FeedgateSocket.CONNECTING) {
      this.readyState = FeedgateSocket.OPEN;
      this.dispatchEvent(new Event('open'));
    }
    const failures = this._failures;
    this._failures = [];
    const cause = switchCause(from, conn.name, why, failures);
    if (from !== conn.name) {
      const e = new Event('transportchange');
      e.transport = conn.name;
      e.previous = from;
      e.reason = why; // 'connect', 'fallback' or 'upgrade'
      // [[transport, why, reason], …] tried and failed first
      e.failures = failures.map((f) => [f.t, f.why, f.reason]);
      e.cause = cause; // what is reported to the server, or null
      this.dispatchEvent(e);
    }
    this._report(cause);
    this._scheduleClimb();
  }

  /** Records a failed or lost connection, with the reason it observed. */
  _failed(conn, why) {
    const f = { t: conn.name, why, reason: conn.reason ?? 'error' };
    if (conn.code !== undefined) f.code = conn.code;
    if (conn.since !== undefined) f.after_s = Math.round((performance.now() - conn.since) / 100) / 10;
    this._failures.push(f);
  }

  /**
   * Tells the server about a switch (`POST /telemetry/switch`): best
   * effort, never an error of its own, at most TELEMETRY_PER_MINUTE a
   * minute. A beacon (text/plain: no CORS preflight) goes out on a
   * keep-alive connection to the server when one is idle.
   */
  _report(cause) {
    if (!cause || !this._o.telemetry) return;
    const now = performance.now();
    this._reported = this._reported.filter((t) => now - t < 60000);
    if (this._reported.length >= TELEMETRY_PER_MINUTE) return;
    this._reported.push(now);
    const url = `${this.url}/telemetry/switch`;
    const body = JSON.stringify(cause);
    try {
      if (globalThis.navigator?.sendBeacon?.(url, body)) return;
    } catch {
      // no beacons here (a worker, an old browser): fetch below
    }
    fetch(url, { method: 'POST', body, keepalive: true, mode: 'no-cors', credentials: 'omit' }).catch(() => {});
  }

  /**
   * The active connection dropped: reconnect, on the same transport first.
   * `restart` is set when the server drained for a restart: the server's
   * delay (ms), or null for a random one in [0, restartSpread].
   */
  _lost(conn, why, restart) {
    this._active = null;
    this._failed(conn, why);
    // A connection that proves itself and then drops at once, again and
    // again, must back off too: only a long-lived one starts over.
    if (performance.now() - conn.since > STABLE_MS) this._round = 0;
    clearTimeout(this._probeTimer);
    if (this._probe) {
      this._probe.close();
      this._conns.delete(this._probe);
      this._probe = null;
    }
    const i = Math.max(0, this._o.transports.indexOf(conn.name));
    if (restart !== undefined) {
      // Not a failure: the server asked us to come back later. A refused
      // reconnect after it backs off from the first round.
      this._round = 0;
      const wait = restart ?? Math.random() * this._o.restartSpread;
      this._later(() => this._connectFrom(i, 'fallback'), wait);
      return;
    }
    this._round += 1;
    this._later(() => this._connectFrom(i, 'fallback'), this._backoff(this._round));
  }

  _fatal(code, reason) {
    this.dispatchEvent(new Event('error'));
    this._shutdown(code, reason, false);
  }

  _shutdown(code, reason, wasClean) {
    this.readyState = FeedgateSocket.CLOSING;
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    clearTimeout(this._probeTimer);
    for (const c of this._conns) c.close();
    this._conns.clear();
    this._active = this._probe = null;
    queueMicrotask(() => {
      this.readyState = FeedgateSocket.CLOSED;
      const e = new Event('close');
      e.code = code;
      e.reason = reason;
      e.wasClean = wasClean;
      this.dispatchEvent(e);
    });
  }

  /**
   * Doubling delay with "full jitter" (a random wait between 0 and d, so
   * that many clients failing together spread out), and at least what a
   * Retry-After asked for since the last wait.
   */
  _backoff(round) {
    const { reconnectDelay: min, maxReconnectDelay: max } = this._o;
    const d = Math.min(max, min * 2 ** Math.max(0, round - 1));
    const wait = Math.max(Math.random() * d, Math.min(this._retryAfter, max));
    this._retryAfter = 0;
    return wait;
  }

  _later(fn, ms) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      fn();
    }, ms);
    this._timers.add(t);
  }

  /** SSE is to be checked for buffering: not yet passed, and a transport
   *  to fall back to after it (a buffering stream beats none). */
  _wantsBufferCheck() {
    const list = this._o.transports;
    return this._o.bufferCheck && !this._sseChecked && list.indexOf('sse') < list.length - 1;
  }

  // ---- what connections report; the one place events are let through ----

  _live(conn) {
    return this.readyState < FeedgateSocket.CLOSING && (conn === this._active || conn === this._probe);
  }

  /**
   * `ready` / `subscribed` (streams) or a poll answer's position for
   * `topic`: where the server put us. Proves the connection.
   */
  _onReady(conn, topic, epoch, next) {
    if (!this._live(conn)) return;
    conn.heard();
    const c = this._pos.get(topic);
    if (c && (c.epoch === null || c.epoch === NO_EPOCH)) {
      // A fresh subscription learns its position; with an epoch of our own
      // a mismatch comes as an explicit reset instead. A topic nobody had
      // published to has no epoch yet: its first publish brings one,
      // announced by a new `ready` / `subscribed` (docs/protocol.md).
      this._pos.set(topic, { epoch, seq: c.seq ?? next });
    }
    conn.prove();
  }

  /** A connection that follows no topic (all unsubscribed) is as good as proved. */
  _onIdle(conn) {
    if (!this._live(conn)) return;
    conn.heard();
    conn.prove();
  }

  _onGap(conn, topic, missedByConn, resumeSeq) {
    const c = this._pos.get(topic);
    if (!this._live(conn) || !c) return;
    const last = c.seq;
    // Several connections may report the same gap; count it once, from
    // what this socket delivered.
    if (last !== null && resumeSeq - 1 <= last) return;
    const missed = last === null ? missedByConn : resumeSeq - 1 - last;
    this._pos.set(topic, { ...c, seq: resumeSeq - 1 });
    const e = new Event('gap');
    e.topic = topic;
    e.missed = missed;
    e.resumeSeq = resumeSeq;
    this.dispatchEvent(e);
  }

  _onReset(conn, topic, reason, epoch) {
    if (!this._live(conn) || !this._pos.has(topic)) return;
    // Everything retained follows on this connection; other connections
    // still stand on the old cursor and must not deliver.
    for (const c of this._conns) {
      if (c !== conn) {
        c.close();
        this._conns.delete(c);
      }
    }
    if (this._probe !== conn) {
      // A climb that was under way is cut short; try again later.
      this._probe = null;
      this._scheduleClimb();
    }
    // After 0 in the new epoch: what follows is everything retained, and a
    // reconnect before it arrives asks for exactly that.
    this._pos.set(topic, { epoch, seq: 0 });
    const e = new Event('reset');
    e.topic = topic;
    e.reason = reason;
    e.epoch = epoch;
    this.dispatchEvent(e);
  }

  /** The server refused to follow `topic` (WebSocket `error`): drop it. */
  _onTopicError(conn, topic, code, message) {
    if (!this._live(conn) || !this._pos.delete(topic)) return;
    this._retarget();
    const e = new Event('topicerror');
    e.topic = topic;
    e.code = code;
    e.message = message;
    this.dispatchEvent(e);
  }

  /** One event, as raw JSON text plus its parsed form. */
  _onEvent(conn, text, event) {
    if (!this._live(conn)) return;
    const topic = event.topic ?? conn.topic;
    const c = this._pos.get(topic);
    // Not followed (any more), or not placed yet: never a guess.
    if (!c || c.seq === null) return;
    const seq = event.seq;
    const last = c.seq;
    if (seq <= last) return; // already delivered (switch overlap)
    // After 0 (or a reset) the server starts at the oldest event it still
    // has, whatever its seq; after N it continues at N + 1 or says why not.
    if (last !== 0 && seq !== last + 1) {
      // Not contiguous and no gap signalled: never skip silently. Drop this
      // connection; the next one resumes from the cursor.
      conn.as('error').fail(`out-of-order event ${topic} ${seq} after ${last}`);
      return;
    }
    const now = { epoch: c.epoch, seq };
    this._pos.set(topic, now);
    this._round = 0; // delivering: the backoff starts over
    const e = new MessageEvent('message', { data: text, lastEventId: cursorText(now), origin: this._origin });
    Object.defineProperties(e, { topic: { value: topic }, seq: { value: seq }, event: { value: event } });
    this.dispatchEvent(e);
  }

  // ---- URLs ----

  /** The LIST of every topic's cursor: `a@EPOCH:SEQ,b@SEQ,c`. */
  _list() {
    const items = [];
    for (const [topic, c] of this._pos) items.push(c.seq === null ? topic : `${topic}@${cursorText(c)}`);
    return items.join(',');
  }

  /** A one-topic endpoint: `/topics/{topic}/{action}?after=…&epoch=…`. */
  _topicUrl(topic, action, params) {
    const u = new URL(`${this.url}/topics/${encodeURIComponent(topic)}/${action}`);
    const c = this._pos.get(topic) ?? { epoch: null, seq: null };
    if (c.seq !== null) u.searchParams.set('after', String(c.seq));
    if (c.epoch) u.searchParams.set('epoch', c.epoch);
    for (const [k, v] of Object.entries(params || {})) u.searchParams.set(k, v);
    return u.href;
  }

  /**
   * A multiplexed endpoint: `/{action}?topics=LIST`. The LIST goes in as
   * is (its characters need no escaping), so it reads as the docs write it.
   */
  _listUrl(action, list, params) {
    const u = new URL(`${this.url}/${action}`);
    for (const [k, v] of Object.entries(params || {})) u.searchParams.set(k, v);
    const q = u.search.slice(1);
    u.search = list ? `topics=${list}${q ? `&${q}` : ''}` : q;
    return u.href;
  }

  /** The URL a connection opens now, on whichever endpoints apply. */
  _url(action, conn, params = {}) {
    const p = { ...params };
    if (conn.token && (action === 'ws' || action === 'sse')) p.token = conn.token;
    if (this._o.encoding === 'lean') p.encoding = 'lean';
    return conn.multi ? this._listUrl(action, this._list(), p) : this._topicUrl(conn.topic, action, p);
  }

  _token(t = this._o.token) {
    return typeof t === 'function' ? t() : t;
  }
}

function authHeaders(token) {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** `N`, `EPOCH:N`, a number or undefined → `{epoch, seq}`. */
function parseCursor(after) {
  if (after === undefined || after === null) return { epoch: null, seq: null };
  const m = /^(?:([0-9a-f]{16}):)?(\d+)$/.exec(String(after));
  if (!m) throw new SyntaxError(`FeedgateSocket: bad cursor ${after}`);
  return { epoch: m[1] || null, seq: Number(m[2]) };
}

/** `{epoch, seq}` → `EPOCH:SEQ` (or `SEQ` without an epoch). */
function cursorText(c) {
  return c.epoch ? `${c.epoch}:${c.seq}` : String(c.seq);
}

/** A LIST item `TOPIC` or `TOPIC@CURSOR` → [topic, cursor or undefined]. */
function splitItem(item) {
  const text = String(item);
  const at = text.indexOf('@');
  const topic = at < 0 ? text : text.slice(0, at);
  if (!TOPIC_RE.test(topic)) throw new SyntaxError(`FeedgateSocket: bad topic name ${topic}`);
  return [topic, at < 0 ? undefined : text.slice(at + 1)];
}

/** The `after` option for one topic: one cursor for all, or `{topic: cursor}`. */
function startOf(after, topic) {
  if (after !== null && typeof after === 'object') return after[topic];
  return after;
}

// ---- one class per transport: open from the cursors, report, close ----
//
// A connection reports to its socket (`_onReady`, `_onEvent`, `_onGap`,
// `_onReset`, `_onTopicError`, `_onIdle`) and ends exactly once, through
// `onLost(why, status)`, whether it failed or was closed; `close()` ends it
// quietly. `retarget()` follows the socket's topics after they changed.
// Before it fails, `as(reason, code)` names what it observed, in the words
// of `POST /telemetry/switch`: refused, stalled, buffered, cut, closed,
// timeout or error (and restart, which is not reported).

class Conn {
  constructor(socket, name) {
    this.s = socket;
    this.name = name;
    this.closed = false;
    this.started = false;
    this.proved = false;
    this.onProved = () => {};
    this.onLost = () => {};
  }

  /** Names the reason of the failure that follows (and a close code or
   *  status); the first one named stands. */
  as(reason, code) {
    if (this.reason === undefined) {
      this.reason = reason;
      if (code !== undefined) this.code = code;
    }
    return this;
  }

  /** The server placed us (`ready`, a poll answer): the proof, unless a
   *  check is still under way (SSE). */
  prove() {
    this.onProved();
  }

  /** Starts on the socket's endpoints and cursors as they are now. */
  begin() {
    this.started = true;
    this.multi = this.s._multi;
    this.topic = this.s.topic; // the one topic, when not multiplexed
    this.lean = this.s._o.encoding === 'lean';
    // Lean events carry no seq: per topic, the seq of the last one here,
    // from each `ready` / `subscribed` / `gap` / `reset` (they say `next`).
    this.leanSeq = new Map();
    this.start();
  }

  /** A lean control message for `topic` said where events resume. */
  leanAt(topic, next) {
    if (this.lean && typeof next === 'number') this.leanSeq.set(topic, next);
  }

  /** The next lean event of `topic` on this connection: its seq. */
  leanNext(topic) {
    const seq = (this.leanSeq.get(topic) ?? 0) + 1;
    this.leanSeq.set(topic, seq);
    return seq;
  }

  /** The socket's topics changed. */
  retarget() {
    if (!this.started || this.closed) return;
    if (this.multi !== this.s._multi) this.restart();
    else if (this.multi) this.update();
  }

  /**
   * Opens anew from the socket's cursors (a new LIST on SSE, a one-topic
   * WebSocket that becomes multiplexed). A connection that had proved
   * itself must do so again within `probeTimeout`.
   */
  restart() {
    this.teardown();
    this.multi = this.s._multi;
    this.topic = this.s.topic;
    if (this.proved) {
      clearTimeout(this.reproof);
      const limit = this.s._o.probeTimeout;
      this.reproof = setTimeout(() => this.as('stalled').fail(`no answer within ${limit} ms after a topic change`), limit);
    }
    this.start();
  }

  /** The server answered: a pending re-proof is done. */
  heard() {
    clearTimeout(this.reproof);
  }

  /**
   * Ends the connection and reports it lost (at most once). `restart`: the
   * server drained for a restart (its delay in ms, or null).
   */
  fail(why, status, retryAfter, restart) {
    if (this.closed) return;
    this.as('error');
    this.teardown();
    this.closed = true;
    clearTimeout(this.reproof);
    this.onLost(why, status, retryAfter, restart);
  }

  /** Ends the connection without reporting. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reproof);
    this.teardown();
  }
}

class WsConn extends Conn {
  start() {
    const u = new URL(this.s._url('ws', this));
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    // A multiplexed socket's view of each topic on the server:
    // 'pending' (subscribe sent, or in the URL: until its `subscribed`),
    // 'live' (its events count), 'leaving' (unsubscribe sent: until
    // `unsubscribed`, after which no event of it follows). Only live
    // topics' events and signals reach the socket, so an event still in
    // flight from an old subscription never passes for a new one.
    this.subs = new Map();
    if (this.multi) for (const t of this.s._pos.keys()) this.subs.set(t, 'pending');
    this.opened = false;
    const ws = (this.ws = new WebSocket(u.href));
    ws.onopen = () => {
      this.opened = true;
      if (!this.multi) return;
      if (this.subs.size === 0) this.s._onIdle(this);
      this.update();
    };
    ws.onmessage = (m) => {
      if (this.closed || typeof m.data !== 'string') return;
      if (this.lean && !m.data.startsWith('#')) {
        this.leanEvent(m.data);
        return;
      }
      // A lean control message is the v1 one after a `#`.
      const text = this.lean ? m.data.slice(1) : m.data;
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        this.as('error').fail('unparsable frame');
        return;
      }
      if (this.lean) this.leanAt(this.multi ? msg.topic : this.topic, msg.next);
      if (this.multi) this.many(text, msg);
      else this.one(text, msg);
    };
    // The browser hides why a WebSocket failed; error is followed by close.
    // 1012 (service restart): the server drains; come back after a random
    // delay. Closed before it opened: the upgrade was refused; 1006 (no
    // close frame) after: the path dropped it; any other code: closed.
    ws.onclose = (e) => {
      if (e.code === 1012) this.as('restart', e.code);
      else if (!this.opened) this.as('refused', e.code);
      else this.as(e.code === 1006 ? 'cut' : 'closed', e.code);
      this.fail(`websocket closed (${e.code}${e.reason ? ` ${e.reason}` : ''})`, undefined, undefined, e.code === 1012 ? null : undefined);
    };
  }

  /** A lean event frame: the data, after `TOPIC ` when multiplexed. */
  leanEvent(text) {
    let topic = this.topic;
    let data = text;
    if (this.multi) {
      const sp = text.indexOf(' ');
      topic = text.slice(0, sp);
      data = text.slice(sp + 1);
      if (this.subs.get(topic) !== 'live') return;
    }
    this.s._onEvent(this, data, { topic, seq: this.leanNext(topic) });
  }

  /** `/topics/{topic}/ws`: events and `ready`/`gap`/`reset`. */
  one(text, msg) {
    const s = this.s;
    const t = this.topic;
    if (!text.startsWith(CONTROL_PREFIX)) s._onEvent(this, text, msg);
    else if (msg.type === 'ready') s._onReady(this, t, msg.epoch, msg.next);
    else if (msg.type === 'gap') s._onGap(this, t, msg.missed, msg.resume_seq);
    else if (msg.type === 'reset') s._onReset(this, t, msg.reason, msg.epoch);
  }

  /** `/ws?topics=LIST`: the same, naming their topic, plus the answers to
   *  subscribe and unsubscribe. */
  many(text, msg) {
    const s = this.s;
    const t = msg.topic;
    const state = this.subs.get(t);
    // An event has no `type` (its fields are topic, seq, time, data). Not
    // the text's prefix: the server writes `error` frames with their keys
    // sorted, `{"code":…,"type":"error"}`.
    if (msg.type === undefined) {
      if (state === 'live') s._onEvent(this, text, msg);
    } else if (msg.type === 'subscribed') {
      if (state === 'pending') this.subs.set(t, 'live');
      if (state === 'pending' || state === 'live') s._onReady(this, t, msg.epoch, msg.next);
    } else if (msg.type === 'gap') {
      if (state === 'live') s._onGap(this, t, msg.missed, msg.resume_seq);
    } else if (msg.type === 'reset') {
      if (state === 'live') s._onReset(this, t, msg.reason, msg.epoch);
    } else if (msg.type === 'unsubscribed') {
      if (state === 'leaving') {
        this.subs.delete(t);
        this.update(); // subscribed again meanwhile?
      }
    } else if (msg.type === 'error' && t !== undefined) {
      if (state === 'pending') {
        this.subs.delete(t);
        if (TOPIC_REFUSALS.has(msg.code)) s._onTopicError(this, t, msg.code, msg.message);
        // The log is down, or some other passing trouble: start over.
        else this.as('error').fail(`subscribe ${t} refused: ${msg.code}`);
      } else if (state === 'leaving' && msg.code === 'not_subscribed') {
        this.subs.delete(t);
        this.update();
      }
    }
  }

  /** Sends the subscribe and unsubscribe messages that make the server
   *  follow what the socket follows. */
  update() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return; // again on open
    for (const [t, c] of this.s._pos) {
      if (this.subs.has(t)) continue;
      const msg = { type: 'subscribe', topic: t };
      if (c.seq !== null) msg.after = cursorText(c);
      ws.send(JSON.stringify(msg));
      this.subs.set(t, 'pending');
    }
    for (const [t, state] of this.subs) {
      if (state !== 'leaving' && !this.s._pos.has(t)) {
        ws.send(JSON.stringify({ type: 'unsubscribe', topic: t }));
        this.subs.set(t, 'leaving');
      }
    }
  }

  teardown() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onmessage = ws.onclose = ws.onopen = null;
    // A socket still connecting cannot be closed without a console error
    // in Chromium; close it as soon as it opens instead.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
    else ws.close(1000);
  }
}

class SseConn extends Conn {
  start() {
    const s = this.s;
    if (this.multi && s._pos.size === 0) {
      // `topics=` must name one: nothing to open until a subscribe.
      s._onIdle(this);
      return;
    }
    if (this.check === undefined && s._wantsBufferCheck()) this.checkBuffering();
    const es = (this.es = new EventSource(s._url('sse', this)));
    let opened = false;
    es.onopen = () => (opened = true);
    const json = (e, f) => {
      // A stream replaced by a topic change may still have queued events.
      if (this.closed || this.es !== es) return;
      try {
        f(JSON.parse(e.data));
      } catch {
        this.as('error').fail('unparsable event');
      }
    };
    // One topic: `ready`; several: `subscribed`, and signals name their topic.
    const topic = (m) => (this.multi ? m.topic : this.topic);
    const ready = this.multi ? 'subscribed' : 'ready';
    const at = (m) => this.leanAt(topic(m), m.next);
    es.addEventListener(ready, (e) => json(e, (m) => (at(m), s._onReady(this, topic(m), m.epoch, m.next))));
    es.addEventListener('gap', (e) => json(e, (m) => (at(m), s._onGap(this, topic(m), m.missed, m.resume_seq))));
    es.addEventListener('reset', (e) => json(e, (m) => (at(m), s._onReset(this, topic(m), m.reason, m.epoch))));
    es.addEventListener('message', (e) => {
      if (this.closed || this.es !== es) return;
      if (!this.lean) return json(e, (m) => s._onEvent(this, e.data, m));
      // Lean: `id:SEQ` and the data; multiplexed, `TOPIC data`.
      if (!this.multi) return s._onEvent(this, e.data, { topic: this.topic, seq: Number(e.lastEventId) });
      const sp = e.data.indexOf(' ');
      const t = e.data.slice(0, sp);
      s._onEvent(this, e.data.slice(sp + 1), { topic: t, seq: this.leanNext(t) });
    });
    // The server drains: the stream ends next, and it says when to return.
    let restart;
    es.addEventListener('restart', (e) => json(e, (m) => (restart = Number(m.retry) || 0)));
    // EventSource would reconnect by itself; the socket decides instead
    // (possibly on another transport), from its own cursors.
    // An error before the response opened: an error status or no
    // connection (the browser hides which); after: the stream was cut.
    es.onerror = () => {
      if (this.es !== es) return;
      if (restart !== undefined) this.as('restart').fail('server restarting', undefined, undefined, restart);
      else if (!opened) this.as('refused').fail('event stream refused');
      else this.as('cut').fail('event stream failed or ended');
    };
  }

  /** Proved only once the buffer check (if any) has passed too. */
  prove() {
    this.ready = true;
    if (this.check !== 'running') this.onProved();
  }

  /**
   * The buffer check: a probe stream of CHECK_COUNT messages sent
   * CHECK_INTERVAL_MS apart after a hello. When every one arrived with
   * the one before it (a proxy held them and let go at the end of the
   * probe's response), the path buffers SSE: fail as `buffered` rather
   * than wait for probeTimeout. A probe that cannot run (an older server,
   * the probe rate limit) proves nothing either way.
   */
  checkBuffering() {
    this.check = 'running';
    const s = this.s;
    const params = { count: CHECK_COUNT, interval_ms: CHECK_INTERVAL_MS };
    probeStream('sse', s.url, params, Math.max(0, s._o.probeTimeout - 200)).then((run) => {
      this.check = 'done';
      if (this.closed) return;
      const series = run.hello ? [run.hello, ...run.events] : [];
      if (series.length === CHECK_COUNT + 1 && bunched(series) === CHECK_COUNT) {
        const spread = Math.round(series.at(-1).at - series[0].at);
        this.as('buffered').fail(`buffered: ${CHECK_COUNT + 1} probe messages sent ${CHECK_INTERVAL_MS} ms apart arrived within ${spread} ms`);
        return;
      }
      if (run.end) s._sseChecked = true;
      if (this.ready) this.onProved();
    });
  }

  /** A new LIST: a new stream from every topic's cursor. */
  update() {
    this.restart();
  }

  teardown() {
    this.es?.close();
    this.es = null;
  }
}

/** Short and long polling: a loop of fetches, each from the socket's cursors. */
class PollConn extends Conn {
  start() {
    this.first = true;
    this.loop();
  }

  async loop() {
    const s = this.s;
    while (!this.closed) {
      const long = this.name === 'longpoll';
      const o = s._o;
      if (this.multi && s._pos.size === 0) {
        // Nothing to ask about until a subscribe.
        s._onIdle(this);
        await this.sleep(Infinity);
        continue;
      }
      const params = {};
      // The first long poll answers at once, so that it proves the
      // transport within probeTimeout.
      if (long) params.timeout = this.first ? '0' : String(o.longpollTimeout);
      const limit = this.first ? o.probeTimeout : long ? o.longpollTimeout * 1000 + o.requestTimeout : o.requestTimeout;
      // Built now, from the socket's cursors: after a topic change (which
      // aborts the request in flight) the next one carries the new LIST.
      const url = s._url(this.name, this, params);
      // The answer is read as the request was made, whatever changed since.
      const { multi, topic } = this;
      this.retargeted = false;
      const asked = performance.now();
      let body;
      try {
        body = await this.fetch(url, limit);
      } catch (e) {
        if (this.retargeted && !this.closed) continue;
        // A token that expired while polling: ask the provider once for a
        // new one before giving up (a stream gets one per reconnect).
        if ((e.status === 401 || e.status === 403) && !this.renewed && typeof o.token === 'function') {
          this.renewed = true;
          try {
            this.token = await s._token();
            continue;
          } catch {
            // fall through: the refusal stands
          }
        }
        // A long poll held a while and then failed: the path cut the hold
        // (a proxy timeout shorter than it answers 504, or closes).
        const held = long && !this.first && performance.now() - asked > 1000;
        if (e.timedOut) this.as(this.first ? 'stalled' : 'timeout');
        else this.as(held ? 'cut' : 'refused', e.status);
        this.fail(e.message, e.status, e.retryAfter);
        return;
      }
      if (this.closed) return;
      this.renewed = false;
      this.first = false;
      if (multi) this.takeMany(body);
      else this.take(body, topic);
      if (this.closed) return;
      // A long poll the server answered because it drains.
      if (this.drainDelay !== undefined) {
        this.as('restart').fail('server restarting', undefined, undefined, this.drainDelay);
        return;
      }
      if (!long) await this.sleep(o.pollInterval);
    }
  }

  async fetch(url, limit) {
    const abort = (this.abort = new AbortController());
    const timer = setTimeout(() => abort.abort(), limit);
    try {
      const res = await fetch(url, { headers: authHeaders(this.token), signal: abort.signal });
      const text = await res.text();
      const hint = res.headers.get('retry-after-ms');
      // Not `this.restart`: that is the method that switches endpoints.
      this.drainDelay = res.ok && hint !== null ? Number(hint) || 0 : undefined;
      if (!res.ok) {
        const err = new Error(`${this.name} answered ${res.status}`);
        err.status = res.status;
        err.retryAfter = Number(res.headers.get('retry-after')) || 0;
        throw err;
      }
      return text;
    } catch (e) {
      if (e.name === 'AbortError') {
        const err = new Error(`${this.name} got no answer within ${limit} ms`);
        err.timedOut = true;
        throw err;
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** `{epoch, events, next}`: signals first, then events. */
  take(text, t) {
    const s = this.s;
    const body = JSON.parse(text);
    if (this.lean) return this.takeLean(t, body, body.events);
    s._onReady(this, t, body.epoch, placedAt(body.events, body.next));
    if (body.reset) s._onReset(this, t, body.reset.reason, body.reset.epoch);
    if (body.gap) s._onGap(this, t, body.gap.missed, body.gap.resume_seq);
    this.events(text, body.events);
  }

  /** One topic's lean answer (`p`: its position): the events are data
   *  whose seqs end at `next`. */
  takeLean(t, p, events) {
    const s = this.s;
    const first = p.next - events.length + 1;
    s._onReady(this, t, p.epoch, first - 1);
    if (p.reset) s._onReset(this, t, p.reset.reason, p.reset.epoch);
    if (p.gap) s._onGap(this, t, p.gap.missed, p.gap.resume_seq);
    events.forEach((data, i) => {
      if (!this.closed) s._onEvent(this, JSON.stringify(data), { topic: t, seq: first + i });
    });
  }

  /** `{events, topics: {T: {epoch, next, gap?, reset?}}, next}`: every
   *  topic's position and signals, then the events. */
  takeMany(text) {
    const s = this.s;
    const body = JSON.parse(text);
    if (this.lean) {
      for (const [t, p] of Object.entries(body.topics)) this.takeLean(t, p, p.events);
      return;
    }
    for (const [t, p] of Object.entries(body.topics)) {
      const mine = body.events.filter((e) => e.topic === t);
      s._onReady(this, t, p.epoch, placedAt(mine, p.next));
      if (p.reset) s._onReset(this, t, p.reset.reason, p.reset.epoch);
      if (p.gap) s._onGap(this, t, p.gap.missed, p.gap.resume_seq);
    }
    this.events(text, body.events);
  }

  events(text, events) {
    const raw = eventTexts(text, events.length);
    events.forEach((ev, i) => {
      if (!this.closed) this.s._onEvent(this, raw ? raw[i] : JSON.stringify(ev), ev);
    });
  }

  /** Another endpoint (one topic → several): the loop's next request. */
  restart() {
    this.multi = this.s._multi;
    this.topic = this.s.topic;
    this.update();
  }

  /** The topics changed: ask again now, with the new LIST. */
  update() {
    this.retargeted = true;
    this.abort?.abort();
    this.wake?.();
  }

  sleep(ms) {
    return new Promise((resolve) => {
      this.wake = resolve;
      if (ms !== Infinity) this.timer = setTimeout(resolve, ms);
    });
  }

  teardown() {
    this.abort?.abort();
    clearTimeout(this.timer);
    this.wake?.();
  }
}

const CONNECTIONS = { ws: WsConn, sse: SseConn, longpoll: PollConn, poll: PollConn };

/**
 * What to tell the server about a connection that just proved itself
 * (`POST /telemetry/switch`), or null. `from` is the transport in use
 * before (null at the start), `why` the transportchange reason, `failures`
 * what failed since the last proof. A switch carries the last failure of
 * the transport it left; a reconnect on the same transport is reported
 * only when the path ended the connection (`cut`, `closed`), since that
 * is what an operator can fix; a server restart is never a path problem.
 */
function switchCause(from, to, why, failures) {
  if (why === 'upgrade') return from && from !== to ? { from, to, reason: 'climb' } : null;
  if (failures.length === 0) return null;
  const left = from ?? failures[0].t;
  const mine = failures.filter((f) => f.t === left);
  const f = left === to ? mine[0] : mine.at(-1) ?? failures[0];
  if (!f || f.reason === 'restart') return null;
  if (left === to && f.reason !== 'cut' && f.reason !== 'closed') return null;
  const cause = { from: left, to, reason: f.reason };
  if (f.code !== undefined) cause.code = f.code;
  if (f.after_s !== undefined) cause.after_s = f.after_s;
  return cause;
}

/** Pairs of consecutive arrivals (`{at, sent_us}`) that came much closer
 *  together than the server sent them. */
function bunched(series) {
  let n = 0;
  for (let i = 1; i < series.length; i += 1) {
    const sent = (series[i].sent_us - series[i - 1].sent_us) / 1000;
    if (sent > 0 && series[i].at - series[i - 1].at < BUNCHED_SHARE * sent) n += 1;
  }
  return n;
}

/**
 * Runs one stream probe (`/probe/sse` or `/probe/ws`, docs/protocol.md)
 * for at most `budget` ms. Resolves (never rejects) to what arrived and
 * when (`performance.now()`): `{transport, started, opened, hello, events,
 * end, ended, endedAt, code}`, each arrival `{at, sent_us, msg}`.
 */
function probeStream(transport, base, params, budget) {
  return new Promise((resolve) => {
    const u = new URL(`${base}/probe/${transport}`);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, String(v));
    const run = { transport, started: performance.now(), opened: false, hello: null, events: [], end: null };
    let src = null;
    let timer;
    const finish = (how) => {
      if (run.ended) return;
      run.ended = how;
      run.endedAt = performance.now();
      clearTimeout(timer);
      if (src instanceof EventSource) src.close();
      else if (src?.readyState === WebSocket.CONNECTING) src.onopen = () => src.close(1000);
      else src?.close(1000);
      resolve(run);
    };
    const take = (text) => {
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        return;
      }
      const a = { at: performance.now(), sent_us: msg.sent_us, msg };
      if (msg.type === 'hello') run.hello = a;
      else if (msg.type === 'probe') run.events.push(a);
      else if (msg.type === 'end') {
        run.end = a;
        finish('end');
      }
    };
    timer = setTimeout(() => finish('deadline'), budget);
    try {
      if (transport === 'ws') {
        u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
        const ws = (src = new WebSocket(u.href));
        ws.onopen = () => (run.opened = true);
        ws.onmessage = (m) => typeof m.data === 'string' && take(m.data);
        ws.onclose = (e) => {
          run.code = e.code;
          finish(`close ${e.code}`);
        };
      } else {
        const es = (src = new EventSource(u.href));
        es.onopen = () => (run.opened = true);
        for (const type of ['hello', 'probe', 'end']) es.addEventListener(type, (e) => take(e.data));
        // EventSource would reconnect by itself: one try only.
        es.onerror = () => finish(run.opened ? 'error' : 'refused');
      }
    } catch (e) {
      finish(`error: ${e.message}`);
    }
  });
}

/** A fetch with a time limit: `{ms, status, text}` or `{ms, error}`. */
async function timedFetch(url, limit = 10000) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), limit);
  const t0 = performance.now();
  try {
    const res = await fetch(url, { cache: 'no-store', signal: abort.signal });
    const text = await res.text();
    const out = { ms: performance.now() - t0, status: res.status, text, t0 };
    if (!res.ok) out.error = `answered ${res.status}`;
    return out;
  } catch (e) {
    return { ms: performance.now() - t0, error: e.name === 'AbortError' ? `no answer within ${limit} ms` : e.message, t0 };
  } finally {
    clearTimeout(timer);
  }
}

const round1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);

/**
 * Diagnoses the path from this browser to a feedgate server, as `feedgate
 * doctor` does from a terminal and with the same verdicts (`ok`,
 * `blocked`, `buffered`, `cut`, `slow`; docs/operations.md), against the
 * server's `/probe/…`. Takes `idle` (or `hold`) seconds plus a few.
 * Resolves to `{url, transports: [{transport, verdict, detail, facts}],
 * recommended: [transports that work, best first], notes: […]}`.
 *
 * @param {string} url the server's base URL, as for FeedgateSocket
 * @param {object} [options] `count` (5) messages `intervalMs` (250) apart
 *   on each stream, then `idle` (10) s of silence; long polls held `hold`
 *   (10) s
 */
export async function diagnose(url, options = {}) {
  const o = { count: 5, intervalMs: 250, idle: 10, hold: 10, ...options };
  const base = new URL(url, globalThis.location?.href).href.replace(/\/+$/, '');
  // The poll probe first: the round trip and the clocks, as the doctor.
  const pollUrl = `${base}/probe/poll?pad=2048&nonce=${Math.random().toString(36).slice(2)}`;
  const poll = await timedFetch(pollUrl);
  let hello = null;
  try {
    hello = poll.error ? null : JSON.parse(poll.text);
  } catch {
    poll.error = 'not a probe answer (is this feedgate?)';
  }
  const clock = hello
    ? {
        // server clock minus ours (ms), known within half the round trip
        offset: hello.sent_us / 1000 - (performance.timeOrigin + poll.t0 + poll.ms / 2),
        uncertainty: poll.ms / 2,
      }
    : null;
  const timing = performance.getEntriesByName?.(pollUrl)?.at(-1);
  const params = { count: o.count, interval_ms: o.intervalMs, idle: o.idle };
  const budget = o.count * o.intervalMs + o.idle * 1000 + 10000;
  const [ws, sse, longpoll] = await Promise.all([
    probeStream('ws', base, params, budget),
    probeStream('sse', base, params, budget),
    (async () => {
      const quick = await timedFetch(`${base}/probe/longpoll?hold=0`);
      if (quick.error) return { quick };
      return { quick, held: await timedFetch(`${base}/probe/longpoll?hold=${o.hold}`, (o.hold + 15) * 1000) };
    })(),
  ]);
  const transports = [
    judgeStream(ws, clock, o),
    judgeStream(sse, clock, o),
    judgeLongPoll(longpoll, o.hold),
    judgePoll(poll, timing),
  ];
  const pick = (v) => transports.filter((r) => r.verdict === v).map((r) => r.transport);
  const recommended = pick('ok').length ? pick('ok') : pick('slow');
  const notes = [];
  if (hello) {
    notes.push(
      `HTTP: this browser spoke ${timing?.nextHopProtocol || '?'}; feedgate was spoken to in ${hello.http}` +
        (hello.proxy_headers.length ? `, through a proxy (${hello.proxy_headers.join(', ')})` : ' (no proxy headers seen)'),
    );
    if (hello.http === 'HTTP/1.0') notes.push('the proxy speaks HTTP/1.0 to feedgate: `proxy_http_version 1.1;`');
  }
  return { url: base, transports, recommended, notes };
}

/** The doctor's stream rules (src/doctor/verdict.rs), on a browser run. */
function judgeStream(run, clock, o) {
  const t = run.transport;
  const toUnix = (at) => performance.timeOrigin + at;
  let offset = 0;
  let unc = Infinity;
  if (clock) [offset, unc] = [clock.offset, clock.uncertainty / 1000];
  else if (run.hello) [offset, unc] = [run.hello.sent_us / 1000 - toUnix(run.hello.at), 0];
  const delays = run.events.map((a) => (toUnix(a.at) + offset - a.sent_us / 1000) / 1000);
  const maxDelay = delays.length ? Math.max(...delays) : NaN;
  const pairs = Math.max(0, run.events.length - 1);
  const b = bunched(run.events);
  const last = run.end ?? run.events.at(-1) ?? run.hello;
  const silence = (run.endedAt - (last ? last.at : run.started)) / 1000;
  const keep = run.hello?.msg[t === 'ws' ? 'ws_ping_s' : 'sse_heartbeat_s'];
  const late = maxDelay > 0.5 + unc;
  const r = {
    transport: t,
    verdict: 'ok',
    detail: '',
    facts: {
      events_received: run.events.length,
      max_delay_ms: round1(maxDelay * 1000),
      bunched_pairs: b,
      pairs,
      ended: run.ended,
      silence_before_end_s: round1(silence),
      keepalive_s: keep ?? null,
    },
  };
  if (!run.hello && run.events.length === 0) {
    r.verdict = 'blocked';
    r.detail = run.opened
      ? `opened but nothing arrived (${run.ended})`
      : t === 'ws'
        ? `upgrade refused (close ${run.code ?? '?'})`
        : 'refused (an error status, or no connection)';
  } else if ((late && pairs > 0 && b * 2 >= pairs) || (late && run.events.length < 2)) {
    r.verdict = 'buffered';
    r.detail = `events held back: up to ${maxDelay.toFixed(1)} s late, ${b} of ${pairs} arrived together`;
  } else if (maxDelay > 1 + unc) {
    r.verdict = 'slow';
    r.detail = `events arrive, up to ${maxDelay.toFixed(1)} s late (not bunched)`;
  } else if (!run.end && run.events.length < o.count) {
    r.verdict = 'cut';
    r.detail = `closed while delivering (${run.events.length} of ${o.count} events; ${run.ended})`;
  } else if (!run.end && run.ended !== 'deadline' && silence <= (keep ?? Infinity) + 1) {
    r.verdict = 'cut';
    r.detail = `idle stream cut after ${silence.toFixed(1)} s of silence (${run.ended}); feedgate's ${t === 'ws' ? 'ping' : 'heartbeat'} every ${keep ?? '?'} s would come too late`;
  } else {
    r.detail = `${run.events.length} events prompt (max delay ${Math.max(0, Math.round(maxDelay * 1000))} ms); ${
      run.end ? `no idle cut within ${o.idle} s` : `idle connections cut after ${silence.toFixed(0)} s, after feedgate's keep-alive`
    }`;
  }
  return r;
}

function judgeLongPoll({ quick, held }, hold) {
  const r = { transport: 'longpoll', verdict: 'ok', detail: '', facts: { rtt_ms: round1(quick.ms), hold_s: hold } };
  if (quick.error) {
    r.verdict = 'blocked';
    r.detail = `refused: ${quick.error}`;
    return r;
  }
  const after = held.ms / 1000;
  r.facts.answered_after_s = round1(after);
  if (held.error || after + 0.5 < hold) {
    r.verdict = 'cut';
    r.detail = `a ${hold} s hold was cut after ${after.toFixed(1)} s (${held.error ?? 'answered early'})`;
  } else if (quick.ms > 1000) {
    r.verdict = 'slow';
    r.detail = `held ${hold} s, but a round trip takes ${Math.round(quick.ms)} ms`;
  } else {
    r.detail = `held ${hold} s and answered; round trip ${Math.round(quick.ms)} ms`;
  }
  return r;
}

function judgePoll(poll, timing) {
  const r = { transport: 'poll', verdict: 'ok', detail: '', facts: { rtt_ms: round1(poll.ms), status: poll.status ?? null } };
  if (poll.error) {
    r.verdict = 'blocked';
    r.detail = `refused: ${poll.error}`;
    return r;
  }
  if (poll.ms > 1000) r.verdict = 'slow';
  r.detail = `answered in ${Math.round(poll.ms)} ms`;
  // Resource timing sees the body as it came over the wire (same origin,
  // or Timing-Allow-Origin): fewer bytes than decoded is compression.
  if (timing && timing.encodedBodySize > 0 && timing.encodedBodySize < timing.decodedBodySize) {
    r.detail += `; compressed on the path (${timing.encodedBodySize} bytes for ${timing.decodedBodySize})`;
    r.facts.compressed = true;
  }
  return r;
}

/**
 * Where a poll answer places a reader that had no position yet ("from
 * now"): before its first event when it holds any (an event may be
 * published between the server placing the reader and reading), else at
 * `next`.
 */
function placedAt(events, next) {
  return events.length > 0 ? events[0].seq - 1 : next;
}

/**
 * The events of a poll body as the server wrote them, so that `data` is the
 * same text on every transport (re-serialising would reformat numbers such
 * as 99.90). Returns null when the body is not as expected.
 */
function eventTexts(body, count) {
  const start = body.indexOf('"events":[');
  if (start < 0) return null;
  const out = [];
  let i = start + '"events":['.length;
  while (out.length < count) {
    if (body[i] === ',') i += 1;
    if (body[i] !== '{') return null;
    const from = i;
    let depth = 0;
    let inString = false;
    for (; i < body.length; i += 1) {
      const c = body[i];
      if (inString) {
        if (c === '\\') i += 1;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth += 1;
      else if ((c === '}' || c === ']') && --depth === 0) break;
    }
    if (i >= body.length) return null;
    i += 1;
    out.push(body.slice(from, i));
  }
  return out;
}
