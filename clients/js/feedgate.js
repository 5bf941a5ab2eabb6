// feedgate.js — a browser client for feedgate with the WebSocket API and
// transport fallback (WebSocket → SSE → long polling → short polling).
//
// ES module, no dependencies, no build step. See clients/js/README.md.
//
//   import { FeedgateSocket } from '/feedgate.js';
//   const s = new FeedgateSocket('https://gw.example', 'prices');
//   s.onmessage = (e) => console.log(e.seq, JSON.parse(e.data));
//
// How it stays exactly-once: the server's log is the buffer. The socket
// keeps one cursor (epoch + last delivered seq) for all transports; every
// connection it opens starts from that cursor, and an event is handed to the
// application only if its seq is the next one. So a switch between
// transports (both may deliver for a moment) never repeats or skips an
// event; a gap or a reset is passed on only when the server signals it.
//
// A transport is trusted only once it has proved it delivers: the server
// always opens SSE and WebSocket streams with a `ready` signal, and answers
// polls with a body. No proof within `probeTimeout` (a WebSocket or SSE
// stream held by a buffering proxy, a refused upgrade, an error status) and
// the next transport is tried.

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
  // with jitter.
  reconnectDelay: 500,
  maxReconnectDelay: 15000,
  // Where to start: omitted = from now; 0 = the oldest retained event; N
  // or 'EPOCH:N' = after that cursor.
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
});

const STORAGE_PREFIX = 'feedgate.transport:';
// Statuses after which retrying cannot help: bad topic or cursor, auth.
const FATAL_STATUSES = new Set([400, 401, 403]);
// A connection up this long (ms) counts as stable when it drops.
const STABLE_MS = 10000;
// A WebSocket frame is a control message iff it starts with this.
const CONTROL_PREFIX = '{"type":';
// The epoch of a topic nobody has published to yet.
const NO_EPOCH = '0000000000000000';

/**
 * A feedgate subscription with the browser WebSocket API.
 *
 * Events: `open` (once, when the first transport has proved it delivers),
 * `message` (one per event, exactly once and in order), `close`, `error`
 * (only before a fatal close), and also `gap`, `reset`, `transportchange`.
 * Each has an `on…` handler property, as on WebSocket.
 *
 * While it switches or reconnects transports, `readyState` stays `OPEN`:
 * nothing is lost meanwhile, since it resumes from its cursor.
 */
export class FeedgateSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  /**
   * @param {string} url   the server's base URL (`https://gw.example`,
   *                       or relative to the page, e.g. `/`)
   * @param {string} topic the topic to subscribe to
   * @param {object} [options] see DEFAULTS above and the README
   */
  constructor(url, topic, options = {}) {
    super();
    const base = new URL(url, globalThis.location?.href);
    if (!/^https?:$/.test(base.protocol)) {
      throw new SyntaxError(`FeedgateSocket: url must be http(s), got ${base.protocol}`);
    }
    this.url = base.href.replace(/\/+$/, '');
    this.topic = String(topic);
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
    this._storageKey = `${STORAGE_PREFIX}${this.url}`;
    this._cursor = parseCursor(o.after);
    this._conns = new Set(); // every connection not yet closed
    this._active = null; // the connection that proved itself and delivers
    this._probe = null; // a connection being tried (fallback or climb)
    this._round = 0; // failed rounds in a row, for the backoff
    this._retryAfter = 0; // ms, the longest Retry-After since the last wait
    this._timers = new Set();
    this._probeTimer = null;
    this._failures = []; // [transport, why] since the last transport proved
    this._origin = base.origin;

    for (const type of ['open', 'message', 'close', 'error', 'gap', 'reset', 'transportchange']) {
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

  /** The cursor of the last delivered event, `EPOCH:SEQ`, or null. */
  get cursor() {
    const c = this._cursor;
    if (c.seq === null) return null;
    return c.epoch ? `${c.epoch}:${c.seq}` : String(c.seq);
  }

  /** The seq of the last delivered event, or null. */
  get lastSeq() {
    return this._cursor.seq;
  }

  /**
   * Publishes one JSON value to the topic (`POST /topics/{topic}/events`).
   * A string is sent as is (it must be JSON, as `JSON.stringify` makes it);
   * anything else is JSON-encoded. Returns a promise of `{topic, seq,
   * epoch}`, rejected on failure; not awaiting it is fine.
   */
  send(data) {
    if (this.readyState >= FeedgateSocket.CLOSING) {
      const p = Promise.reject(new DOMException('FeedgateSocket is closed', 'InvalidStateError'));
      p.catch(() => {});
      return p;
    }
    const body = typeof data === 'string' ? data : JSON.stringify(data);
    const p = Promise.resolve()
      .then(() => this._token(this._o.publishToken ?? this._o.token))
      .then((token) =>
        fetch(this._httpUrl('events'), {
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

  /** Opens one connection from the current cursor and watches its proof. */
  _open(name, { onProved, onFailed }) {
    const Conn = CONNECTIONS[name];
    const conn = new Conn(this, name);
    this._probe = conn;
    this._conns.add(conn);
    let settled = false;
    let timer;
    conn.onProved = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (this._probe === conn) this._probe = null;
      onProved(conn);
    };
    conn.onLost = (why, status, retryAfter) => {
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
        this._failures.push([conn.name, why]);
        onFailed(why);
      } else if (this._active === conn) {
        this._lost(conn, why);
      }
    };
    // The token first (it may be fetched), then the proof's clock starts.
    const begin = (token) => {
      if (conn.closed) return;
      conn.token = token;
      timer = setTimeout(() => conn.fail(`no answer within ${this._o.probeTimeout} ms`), this._o.probeTimeout);
      conn.start(this._cursor);
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
    if (from !== conn.name) {
      const e = new Event('transportchange');
      e.transport = conn.name;
      e.previous = from;
      e.reason = why; // 'connect', 'fallback' or 'upgrade'
      e.failures = failures; // [[transport, why], …] tried and failed first
      this.dispatchEvent(e);
    }
    this._scheduleClimb();
  }

  /** The active connection dropped: reconnect, on the same transport first. */
  _lost(conn, why) {
    this._active = null;
    this._failures.push([conn.name, why]);
    // A connection that proves itself and then drops at once, again and
    // again, must back off too: only a long-lived one starts over.
    if (performance.now() - conn.since > STABLE_MS) this._round = 0;
    clearTimeout(this._probeTimer);
    if (this._probe) {
      this._probe.close();
      this._conns.delete(this._probe);
      this._probe = null;
    }
    this._round += 1;
    const i = Math.max(0, this._o.transports.indexOf(conn.name));
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
   * Doubling delay with "equal jitter" (between d/2 and d), and at least
   * what a Retry-After asked for since the last wait.
   */
  _backoff(round) {
    const { reconnectDelay: min, maxReconnectDelay: max } = this._o;
    const d = Math.min(max, min * 2 ** Math.max(0, round - 1));
    const wait = Math.max(d / 2 + (Math.random() * d) / 2, Math.min(this._retryAfter, max));
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

  // ---- what connections report; the one place events are let through ----

  _live(conn) {
    return this.readyState < FeedgateSocket.CLOSING && (conn === this._active || conn === this._probe);
  }

  /** `ready` (streams) or a first poll answer: where the server put us. */
  _onReady(conn, epoch, next) {
    if (!this._live(conn)) return;
    if (this._cursor.epoch === null || this._cursor.epoch === NO_EPOCH) {
      // A fresh subscription learns its position; with an epoch of our own
      // a mismatch comes as an explicit reset instead. A topic nobody had
      // published to has no epoch yet: its first publish brings one,
      // announced by a new `ready` (docs/protocol.md).
      this._cursor = { epoch, seq: this._cursor.seq ?? next };
    }
    conn.onProved();
  }

  _onGap(conn, missedByConn, resumeSeq) {
    if (!this._live(conn)) return;
    const last = this._cursor.seq;
    // Several connections may report the same gap; count it once, from
    // what this socket delivered.
    if (last !== null && resumeSeq - 1 <= last) return;
    const missed = last === null ? missedByConn : resumeSeq - 1 - last;
    this._cursor = { ...this._cursor, seq: resumeSeq - 1 };
    const e = new Event('gap');
    e.missed = missed;
    e.resumeSeq = resumeSeq;
    this.dispatchEvent(e);
  }

  _onReset(conn, reason, epoch) {
    if (!this._live(conn)) return;
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
    this._cursor = { epoch, seq: null };
    const e = new Event('reset');
    e.reason = reason;
    e.epoch = epoch;
    this.dispatchEvent(e);
  }

  /** One event, as raw JSON text plus its parsed form. */
  _onEvent(conn, text, event) {
    if (!this._live(conn)) return;
    const seq = event.seq;
    const last = this._cursor.seq;
    if (last !== null && seq <= last) return; // already delivered (switch overlap)
    // After 0 (or a reset) the server starts at the oldest event it still
    // has, whatever its seq; after N it continues at N + 1 or says why not.
    if (last !== null && last !== 0 && seq !== last + 1) {
      // Not contiguous and no gap signalled: never skip silently. Drop this
      // connection; the next one resumes from the cursor.
      conn.fail(`out-of-order event ${seq} after ${last}`);
      return;
    }
    this._cursor = { ...this._cursor, seq };
    this._round = 0; // delivering: the backoff starts over
    const cursor = this._cursor.epoch ? `${this._cursor.epoch}:${seq}` : String(seq);
    const e = new MessageEvent('message', { data: text, lastEventId: cursor, origin: this._origin });
    Object.defineProperties(e, { seq: { value: seq }, event: { value: event } });
    this.dispatchEvent(e);
  }

  // ---- URLs ----

  _httpUrl(action, params) {
    const u = new URL(`${this.url}/topics/${encodeURIComponent(this.topic)}/${action}`);
    for (const [k, v] of Object.entries(params || {})) u.searchParams.set(k, v);
    return u.href;
  }

  _cursorParams(cursor) {
    const p = {};
    if (cursor.seq !== null) p.after = String(cursor.seq);
    if (cursor.epoch) p.epoch = cursor.epoch;
    return p;
  }

  _token(t = this._o.token) {
    return typeof t === 'function' ? t() : t;
  }

  _streamUrl(action, cursor, token) {
    const p = this._cursorParams(cursor);
    if (token) p.token = token;
    return this._httpUrl(action, p);
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

// ---- one class per transport: open from a cursor, report, close ----
//
// A connection reports to its socket (`_onReady`, `_onEvent`, `_onGap`,
// `_onReset`) and ends exactly once, through `onLost(why, status)`, whether
// it failed or was closed; `close()` ends it quietly.

class Conn {
  constructor(socket, name) {
    this.s = socket;
    this.name = name;
    this.closed = false;
    this.onProved = () => {};
    this.onLost = () => {};
  }

  /** Ends the connection and reports it lost (at most once). */
  fail(why, status, retryAfter) {
    if (this.closed) return;
    this.teardown();
    this.closed = true;
    this.onLost(why, status, retryAfter);
  }

  /** Ends the connection without reporting. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.teardown();
  }
}

class WsConn extends Conn {
  start(cursor) {
    const u = new URL(this.s._streamUrl('ws', cursor, this.token));
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = (this.ws = new WebSocket(u.href));
    ws.onmessage = (m) => {
      if (this.closed || typeof m.data !== 'string') return;
      const text = m.data;
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        this.fail('unparsable frame');
        return;
      }
      if (!text.startsWith(CONTROL_PREFIX)) this.s._onEvent(this, text, msg);
      else if (msg.type === 'ready') this.s._onReady(this, msg.epoch, msg.next);
      else if (msg.type === 'gap') this.s._onGap(this, msg.missed, msg.resume_seq);
      else if (msg.type === 'reset') this.s._onReset(this, msg.reason, msg.epoch);
    };
    // The browser hides why a WebSocket failed; error is followed by close.
    ws.onclose = (e) => this.fail(`websocket closed (${e.code}${e.reason ? ` ${e.reason}` : ''})`);
  }

  teardown() {
    const ws = this.ws;
    if (!ws) return;
    ws.onmessage = ws.onclose = null;
    // A socket still connecting cannot be closed without a console error
    // in Chromium; close it as soon as it opens instead.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
    else ws.close(1000);
  }
}

class SseConn extends Conn {
  start(cursor) {
    const es = (this.es = new EventSource(this.s._streamUrl('sse', cursor, this.token)));
    const json = (e, f) => {
      if (this.closed) return;
      try {
        f(JSON.parse(e.data));
      } catch {
        this.fail('unparsable event');
      }
    };
    es.addEventListener('ready', (e) => json(e, (m) => this.s._onReady(this, m.epoch, m.next)));
    es.addEventListener('gap', (e) => json(e, (m) => this.s._onGap(this, m.missed, m.resume_seq)));
    es.addEventListener('reset', (e) => json(e, (m) => this.s._onReset(this, m.reason, m.epoch)));
    es.addEventListener('message', (e) => json(e, (m) => this.s._onEvent(this, e.data, m)));
    // EventSource would reconnect by itself; the socket decides instead
    // (possibly on another transport), from its own cursor.
    es.onerror = () => this.fail('event stream failed or ended');
  }

  teardown() {
    this.es?.close();
  }
}

/** Short and long polling: a loop of fetches. */
class PollConn extends Conn {
  start(cursor) {
    this.cursor = cursor;
    this.first = true;
    this.loop();
  }

  async loop() {
    while (!this.closed) {
      const long = this.name === 'longpoll';
      const o = this.s._o;
      const params = this.s._cursorParams(this.cursor);
      // The first long poll answers at once, so that it proves the
      // transport within probeTimeout.
      if (long) params.timeout = this.first ? '0' : String(o.longpollTimeout);
      const limit = this.first ? o.probeTimeout : long ? o.longpollTimeout * 1000 + o.requestTimeout : o.requestTimeout;
      let body;
      try {
        body = await this.fetch(this.s._httpUrl(this.name, params), limit);
      } catch (e) {
        // A token that expired while polling: ask the provider once for a
        // new one before giving up (a stream gets one per reconnect).
        if ((e.status === 401 || e.status === 403) && !this.renewed && typeof o.token === 'function') {
          this.renewed = true;
          try {
            this.token = await this.s._token();
            continue;
          } catch {
            // fall through: the refusal stands
          }
        }
        this.fail(e.message, e.status, e.retryAfter);
        return;
      }
      if (this.closed) return;
      this.renewed = false;
      this.first = false;
      this.take(body);
      if (this.closed) return;
      if (!long) await this.sleep(o.pollInterval);
    }
  }

  async fetch(url, limit) {
    this.abort = new AbortController();
    const timer = setTimeout(() => this.abort.abort(), limit);
    try {
      const res = await fetch(url, { headers: authHeaders(this.token), signal: this.abort.signal });
      const text = await res.text();
      if (!res.ok) {
        const err = new Error(`${this.name} answered ${res.status}`);
        err.status = res.status;
        err.retryAfter = Number(res.headers.get('retry-after')) || 0;
        throw err;
      }
      return text;
    } catch (e) {
      if (e.name === 'AbortError') throw new Error(`${this.name} got no answer within ${limit} ms`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Hands a poll answer to the socket: signals first, then events. */
  take(text) {
    const body = JSON.parse(text);
    this.s._onReady(this, body.epoch, body.next);
    if (body.reset) this.s._onReset(this, body.reset.reason, body.reset.epoch);
    if (body.gap) this.s._onGap(this, body.gap.missed, body.gap.resume_seq);
    const raw = eventTexts(text, body.events.length);
    body.events.forEach((ev, i) => {
      if (!this.closed) this.s._onEvent(this, raw ? raw[i] : JSON.stringify(ev), ev);
    });
    this.cursor = { epoch: body.epoch, seq: body.next };
  }

  sleep(ms) {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
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
