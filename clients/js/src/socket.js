// @ts-check
// FeedgateSocket: the browser's WebSocket API over whichever transport
// works — WebSocket, then SSE, then long polling, then short polling —
// handing the application every event exactly once, in order per topic.
//
// It keeps the positions (ledger.js), opens connections (conn/) from
// them, and lets an event through only from the connection in use or the
// one being tried. A transport is trusted only once it has proved it
// delivers: the server opens SSE and WebSocket streams with a `ready`
// signal, and answers polls with a body. No proof within `probeTimeout`
// (a stream held by a buffering proxy, a refused upgrade, an error
// status) and the next transport is tried; every `probeInterval` it tries
// to climb back. Following other topics on WebSocket is a message on the
// open socket; on SSE and polls a new request from the cursors.

import { backoff, restartDelay } from './backoff.js';
import { Connection } from './conn/connection.js';
import { PollConn } from './conn/poll.js';
import { SseConn } from './conn/sse.js';
import { WsConn } from './conn/ws.js';
import { checkTopic, cursorText, parseCursor, splitItem, startOf } from './cursor.js';
import { authHeaders } from './endpoints.js';
import {
  FeedgateCloseEvent,
  FeedgateMessageEvent,
  GapEvent,
  ResetEvent,
  TopicErrorEvent,
  TransportChangeEvent,
} from './events.js';
import { Ledger } from './ledger.js';
import { recall, remember } from './memory.js';
import { settings } from './options.js';
import { Reporter, switchCause } from './telemetry.js';

/** @typedef {import('./options.js').FeedgateOptions} FeedgateOptions */
/** @typedef {import('./options.js').Settings} Settings */
/** @typedef {import('./options.js').Transport} Transport */
/** @typedef {import('./options.js').TokenSource} TokenSource */
/** @typedef {import('./events.js').FeedgateEvent} FeedgateEvent */
/** @typedef {import('./events.js').FeedgateSocketEventMap} FeedgateSocketEventMap */
/** @typedef {import('./telemetry.js').Failure} Failure */
/** @typedef {import('./conn/connection.js').Host} Host */

/**
 * What `send()` resolves to: where the server appended the event.
 * @typedef {{ topic: string, seq: number, epoch: string }} Published
 */

/** Statuses after which retrying cannot help: bad topic or cursor, auth. */
const FATAL_STATUSES = new Set([400, 401, 403]);
/** A connection up this long (ms) counts as stable when it drops. */
const STABLE_MS = 10000;
/** The connection of each transport. */
const CONNECTIONS = { ws: WsConn, sse: SseConn, longpoll: PollConn, poll: PollConn };
const EVENT_TYPES = /** @type {const} */ (['open', 'message', 'close', 'error', 'gap', 'reset', 'transportchange', 'topicerror']);

/**
 * @template E
 * @typedef {((this: FeedgateSocket, ev: E) => any) | null} Handler
 */

/**
 * A feedgate subscription with the browser WebSocket API, to one topic or
 * to many over one connection.
 *
 * Events: `open` (once, when the first transport has proved it delivers),
 * `message` (one per event, exactly once and in order per topic), `close`,
 * `error` (only before a fatal close), and `gap`, `reset` (per topic),
 * `transportchange` and `topicerror`. Each has an `on…` handler property,
 * as on WebSocket. While it switches or reconnects transports,
 * `readyState` stays `OPEN`: nothing is lost meanwhile, since it resumes
 * from its cursors.
 */
export class FeedgateSocket extends EventTarget {
  static CONNECTING = /** @type {const} */ (0);
  static OPEN = /** @type {const} */ (1);
  static CLOSING = /** @type {const} */ (2);
  static CLOSED = /** @type {const} */ (3);

  /** @type {Handler<Event>} */ onopen = null;
  /** @type {Handler<FeedgateMessageEvent>} */ onmessage = null;
  /** @type {Handler<FeedgateCloseEvent>} */ onclose = null;
  /** @type {Handler<Event>} */ onerror = null;
  /** @type {Handler<GapEvent>} */ ongap = null;
  /** @type {Handler<ResetEvent>} */ onreset = null;
  /** @type {Handler<TransportChangeEvent>} */ ontransportchange = null;
  /** @type {Handler<TopicErrorEvent>} */ ontopicerror = null;

  /** @type {0 | 1 | 2 | 3} */
  readyState = FeedgateSocket.CONNECTING;
  /** As on WebSocket: always empty. */
  protocol = '';
  /** As on WebSocket: always empty. */
  extensions = '';
  /** As on WebSocket: always 0 (send() does not queue). */
  bufferedAmount = 0;
  /** As on WebSocket; events are text. */
  binaryType = 'blob';
  /** The transport in use, or null before the first proved itself.
   *  @type {Transport | null} */
  transport = null;
  /** The one topic (v1 endpoints), or null when following several.
   *  @type {string | null} */
  topic = null;
  /** The server's base URL, without a trailing `/`. */
  url;

  /** @type {Settings} */
  #o;
  #ledger = new Ledger();
  /** On the multiplexed endpoints (`?topics=LIST`). */
  #multi = false;
  #origin;
  /** Every connection not yet closed. @type {Set<Connection>} */
  #conns = new Set();
  /** The connection that proved itself and delivers. @type {Connection | null} */
  #active = null;
  /** A connection being tried (fallback or climb). @type {Connection | null} */
  #probe = null;
  /** Failed rounds in a row, for the backoff. */
  #round = 0;
  /** ms, the longest Retry-After since the last wait. */
  #retryAfter = 0;
  /** @type {Set<ReturnType<typeof setTimeout>>} */
  #timers = new Set();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #climbTimer = undefined;
  /** What failed since the last transport proved; the cause of the next
   *  switch is among them. @type {Failure[]} */
  #failures = [];
  #reporter;
  /** The SSE buffer check passed once: not again. */
  #sseChecked = false;
  /** A topic change is queued for the connections. */
  #retargeting = false;
  /** @type {Host} */
  #host;

  /**
   * @param {string} url the server's base URL (`https://gw.example`, or
   *   relative to the page, e.g. `/`)
   * @param {string | readonly string[]} topics one topic
   *   (`/topics/{topic}/…`, the v1 endpoints), or an array of topics
   *   followed over one connection (`/ws?topics=…`, …), each `TOPIC` or
   *   `TOPIC@CURSOR`
   * @param {FeedgateOptions} [options]
   * @throws {SyntaxError} on a URL that is not http(s), a bad topic or
   *   cursor, a topic listed twice, no known transport
   */
  constructor(url, topics, options = {}) {
    super();
    const base = new URL(url, globalThis.location?.href);
    if (!/^https?:$/.test(base.protocol)) {
      throw new SyntaxError(`FeedgateSocket: url must be http(s), got ${base.protocol}`);
    }
    this.url = base.href.replace(/\/+$/, '');
    this.#origin = base.origin;
    const o = (this.#o = settings(options));
    if (Array.isArray(topics)) {
      // Multiplexed from the start, even with one topic.
      this.#multi = true;
      for (const item of topics) {
        const [topic, at] = splitItem(item);
        if (!this.#ledger.follow(topic, parseCursor(at !== undefined ? at : startOf(o.after, topic)))) {
          throw new SyntaxError(`FeedgateSocket: topic ${topic} is listed twice`);
        }
      }
    } else {
      // One topic on the v1 endpoints, exactly as before multiplexing.
      this.topic = String(topics);
      this.#ledger.follow(this.topic, parseCursor(o.after));
    }
    this.#reporter = new Reporter(this.url);
    this.#host = {
      options: o,
      url: this.url,
      ledger: this.#ledger,
      multi: () => this.#multi,
      topic: () => this.topic,
      token: () => this.#token(o.token),
      wantsBufferCheck: () => this.#wantsBufferCheck(),
      bufferChecked: () => (this.#sseChecked = true),
      ready: (c, t, epoch, next) => this.#onReady(c, t, epoch, next),
      idle: (c) => this.#onIdle(c),
      gap: (c, t, missed, resumeSeq) => this.#onGap(c, t, missed, resumeSeq),
      reset: (c, t, reason, epoch) => this.#onReset(c, t, reason, epoch),
      topicError: (c, t, code, message) => this.#onTopicError(c, t, code, message),
      event: (c, text, event) => this.#onEvent(c, text, event),
    };
    for (const type of EVENT_TYPES) {
      // Registered first, so handler properties run before other listeners.
      super.addEventListener(type, (e) => /** @type {Handler<Event>} */ (this[`on${type}`])?.call(this, e));
    }
    // Like WebSocket, nothing fires before the constructor's caller could
    // attach handlers.
    this.#later(() => this.#connectFrom(o.remember ? recall(this.url, o.transports) : 0, 'connect'), 0);
  }

  get CONNECTING() {
    return FeedgateSocket.CONNECTING;
  }
  get OPEN() {
    return FeedgateSocket.OPEN;
  }
  get CLOSING() {
    return FeedgateSocket.CLOSING;
  }
  get CLOSED() {
    return FeedgateSocket.CLOSED;
  }

  /** The topics followed, in the order they were added. */
  get topics() {
    return this.#ledger.topics();
  }

  /**
   * Where it stands. One topic: the cursor of the last delivered event,
   * `EPOCH:SEQ`, or null. Several: the LIST it would reconnect with
   * (`a@EPOCH:SEQ,b,…`).
   * @returns {string | null}
   */
  get cursor() {
    return this.#multi ? this.#ledger.list() : this.cursorOf(/** @type {string} */ (this.topic));
  }

  /** The seq of the last delivered event (one topic; null with several). */
  get lastSeq() {
    return this.#multi ? null : this.#ledger.get(/** @type {string} */ (this.topic))?.seq ?? null;
  }

  /**
   * A topic's cursor (`EPOCH:SEQ`), or null when it has none yet.
   * @param {string} topic
   */
  cursorOf(topic) {
    return this.#ledger.cursorOf(topic);
  }

  /**
   * Follows one more topic, over the same connection: from `cursor`
   * (`0`, `N` or `EPOCH:N`; omitted: from now). On WebSocket it is a
   * `subscribe` message; on SSE and polls a new request with the new LIST,
   * from every topic's cursor. A socket made for one topic becomes a
   * multiplexed one. Returns false when the topic is followed already.
   * @param {string} topic
   * @param {import('./options.js').CursorInput} [cursor]
   * @throws {SyntaxError} on a bad topic or cursor
   * @throws {DOMException} `InvalidStateError` once closed
   */
  subscribe(topic, cursor) {
    topic = checkTopic(topic);
    const at = parseCursor(cursor);
    if (this.readyState >= FeedgateSocket.CLOSING) {
      throw new DOMException('FeedgateSocket is closed', 'InvalidStateError');
    }
    if (!this.#ledger.follow(topic, at)) return false;
    this.#goMulti();
    this.#retarget();
    return true;
  }

  /**
   * Stops following a topic: none of its events is delivered after this
   * call. Its cursor is forgotten (subscribing again starts where that
   * subscribe says). Returns false when it was not followed.
   * @param {string} topic
   */
  unsubscribe(topic) {
    if (this.readyState >= FeedgateSocket.CLOSING || !this.#ledger.forget(String(topic))) return false;
    this.#goMulti();
    this.#retarget();
    return true;
  }

  /**
   * Publishes one JSON value (`POST /topics/{topic}/events`) to `topic`,
   * by default the socket's one topic (a socket following several must
   * name it). A string is sent as is (it must be JSON, as `JSON.stringify`
   * makes it); anything else is JSON-encoded. Rejected on failure; not
   * awaiting it is fine (no unhandled rejection).
   * @param {unknown} data
   * @param {string | null} [topic]
   * @returns {Promise<Published>}
   */
  send(data, topic = this.topic) {
    /** @param {Error} e */
    const fail = (e) => quiet(Promise.reject(e));
    if (this.readyState >= FeedgateSocket.CLOSING) {
      return fail(new DOMException('FeedgateSocket is closed', 'InvalidStateError'));
    }
    if (topic === null || topic === undefined) {
      return fail(new TypeError('FeedgateSocket: send(data, topic) needs a topic when following several'));
    }
    const body = typeof data === 'string' ? data : JSON.stringify(data);
    const o = this.#o;
    return quiet(
      Promise.resolve()
        .then(() => this.#token(o.publishToken ?? o.token))
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
        }),
    );
  }

  /**
   * Closes the subscription. `close` fires (asynchronously) once.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    if (this.readyState >= FeedgateSocket.CLOSING) return;
    this.#shutdown(code, reason, true);
  }

  /**
   * @template {keyof FeedgateSocketEventMap} K
   * @overload
   * @param {K} type
   * @param {(this: FeedgateSocket, ev: FeedgateSocketEventMap[K]) => any} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @overload
   * @param {string} type
   * @param {EventListenerOrEventListenerObject | null} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @param {string} type
   * @param {any} listener
   * @param {boolean | AddEventListenerOptions} [options]
   */
  addEventListener(type, listener, options) {
    super.addEventListener(type, listener, options);
  }

  /**
   * @template {keyof FeedgateSocketEventMap} K
   * @overload
   * @param {K} type
   * @param {(this: FeedgateSocket, ev: FeedgateSocketEventMap[K]) => any} listener
   * @param {boolean | EventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @overload
   * @param {string} type
   * @param {EventListenerOrEventListenerObject | null} listener
   * @param {boolean | EventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @param {string} type
   * @param {any} listener
   * @param {boolean | EventListenerOptions} [options]
   */
  removeEventListener(type, listener, options) {
    super.removeEventListener(type, listener, options);
  }

  // ---- following other topics ----

  /** From now on, the multiplexed endpoints (a one-topic socket that
   *  subscribes to another topic). */
  #goMulti() {
    if (this.#multi) return;
    this.#multi = true;
    this.topic = null;
  }

  /**
   * Tells every open connection that the topics changed, once per turn of
   * the event loop, so that several subscribe() calls in a row cost one
   * new request on SSE and polls.
   */
  #retarget() {
    if (this.#retargeting) return;
    this.#retargeting = true;
    queueMicrotask(() => {
      this.#retargeting = false;
      if (this.readyState >= FeedgateSocket.CLOSING) return;
      for (const c of this.#conns) c.retarget();
    });
  }

  // ---- connecting, falling back, climbing back ----

  /**
   * Tries transports from index `i` down the list until one proves itself.
   * @param {number} i
   * @param {'connect' | 'fallback'} why goes with the transportchange event
   */
  #connectFrom(i, why) {
    if (this.readyState >= FeedgateSocket.CLOSING) return;
    const list = this.#o.transports;
    if (i >= list.length) {
      // Every transport failed: wait, then start over from the best.
      this.#round += 1;
      this.#later(() => this.#connectFrom(0, why), this.#backoff());
      return;
    }
    this.#open(list[i], (conn) => this.#activate(conn, why), () => this.#connectFrom(i + 1, why));
  }

  /** Every `probeInterval`, tries the transports better than the current one. */
  #scheduleClimb() {
    clearTimeout(this.#climbTimer);
    this.#climbTimer = undefined;
    this.#failures = []; // failed climbs are not news
    const at = this.#o.transports.indexOf(/** @type {Transport} */ (this.transport));
    if (at <= 0 || !(this.#o.probeInterval > 0)) return;
    this.#climbTimer = setTimeout(() => this.#climb(0, at), this.#o.probeInterval);
  }

  /**
   * @param {number} i the transport to try
   * @param {number} at the one in use
   */
  #climb(i, at) {
    if (this.readyState >= FeedgateSocket.CLOSING || !this.#active) return;
    if (this.#probe || i >= at) {
      this.#scheduleClimb();
      return;
    }
    this.#open(this.#o.transports[i], (conn) => this.#activate(conn, 'upgrade'), () => this.#climb(i + 1, at));
  }

  /**
   * Opens one connection from the current cursors and watches its proof.
   * @param {Transport} name
   * @param {(conn: Connection) => void} onProved
   * @param {() => void} onFailed
   */
  #open(name, onProved, onFailed) {
    const conn = new CONNECTIONS[name](this.#host, name);
    this.#probe = conn;
    this.#conns.add(conn);
    let settled = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    conn.onProved = () => {
      conn.proved = true;
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (this.#probe === conn) this.#probe = null;
      onProved(conn);
    };
    conn.onLost = (why, status, retryAfter, restart) => {
      clearTimeout(timer);
      // The server asked for a pause (503 while draining, 429): the next
      // round of attempts waits at least that long.
      if (retryAfter && retryAfter > 0) this.#retryAfter = Math.max(this.#retryAfter, retryAfter * 1000);
      this.#conns.delete(conn);
      if (this.readyState >= FeedgateSocket.CLOSING) return;
      if (status !== undefined && FATAL_STATUSES.has(status)) {
        this.#fatal(4000 + status, why);
        return;
      }
      if (!settled) {
        settled = true;
        if (this.#probe === conn) this.#probe = null;
        this.#failed(conn, why);
        onFailed();
      } else if (this.#active === conn) {
        this.#lost(conn, why, restart);
      }
    };
    // The token first (it may be fetched), then the proof's clock starts.
    /** @param {string | null | undefined} token */
    const begin = (token) => {
      if (conn.closed) return;
      conn.token = token;
      const limit = this.#o.probeTimeout;
      timer = setTimeout(() => conn.as('stalled').fail(`no answer within ${limit} ms`), limit);
      conn.begin();
    };
    let token;
    try {
      token = this.#token(this.#o.token);
    } catch (e) {
      token = Promise.reject(e);
    }
    if (typeof (/** @type {any} */ (token)?.then) === 'function') {
      const limit = this.#o.requestTimeout;
      timer = setTimeout(() => conn.fail(`no token within ${limit} ms`), limit);
      /** @type {Promise<string | null | undefined>} */ (token).then(
        (t) => {
          clearTimeout(timer);
          begin(t);
        },
        (e) => conn.fail(`no token: ${e?.message ?? e}`),
      );
    } else {
      begin(/** @type {string | null | undefined} */ (token));
    }
  }

  /**
   * A connection proved itself: it takes over.
   * @param {Connection} conn
   * @param {'connect' | 'fallback' | 'upgrade'} why
   */
  #activate(conn, why) {
    conn.since = performance.now();
    this.#retryAfter = 0;
    const previous = this.#active;
    this.#active = conn;
    if (previous && previous !== conn) {
      previous.close();
      this.#conns.delete(previous);
    }
    const from = this.transport;
    this.transport = conn.name;
    if (this.#o.remember) remember(this.url, conn.name);
    if (this.readyState === FeedgateSocket.CONNECTING) {
      this.readyState = FeedgateSocket.OPEN;
      this.dispatchEvent(new Event('open'));
    }
    const failures = this.#failures;
    this.#failures = [];
    const cause = switchCause(from, conn.name, why, failures);
    if (from !== conn.name) {
      const tried = failures.map((f) => /** @type {[Transport, string, string]} */ ([f.t, f.why, f.reason]));
      this.dispatchEvent(new TransportChangeEvent(conn.name, from, why, tried, cause));
    }
    if (this.#o.telemetry) this.#reporter.report(cause);
    this.#scheduleClimb();
  }

  /**
   * Records a failed or lost connection, with the reason it observed.
   * @param {Connection} conn
   * @param {string} why
   */
  #failed(conn, why) {
    /** @type {Failure} */
    const f = { t: conn.name, why, reason: conn.reason ?? 'error' };
    if (conn.code !== undefined) f.code = conn.code;
    if (conn.since !== undefined) f.after_s = Math.round((performance.now() - conn.since) / 100) / 10;
    this.#failures.push(f);
  }

  /**
   * The active connection dropped: reconnect, on the same transport first.
   * @param {Connection} conn
   * @param {string} why
   * @param {number | null | undefined} restart set when the server drained
   *   for a restart: its delay (ms), or null for a random one
   */
  #lost(conn, why, restart) {
    this.#active = null;
    this.#failed(conn, why);
    // A connection that proves itself and then drops at once, again and
    // again, must back off too: only a long-lived one starts over.
    if (performance.now() - /** @type {number} */ (conn.since) > STABLE_MS) this.#round = 0;
    clearTimeout(this.#climbTimer);
    if (this.#probe) {
      this.#probe.close();
      this.#conns.delete(this.#probe);
      this.#probe = null;
    }
    const i = Math.max(0, this.#o.transports.indexOf(conn.name));
    if (restart !== undefined) {
      // Not a failure: the server asked us to come back later. A refused
      // reconnect after it backs off from the first round.
      this.#round = 0;
      this.#later(() => this.#connectFrom(i, 'fallback'), restartDelay(restart, this.#o.restartSpread));
      return;
    }
    this.#round += 1;
    this.#later(() => this.#connectFrom(i, 'fallback'), this.#backoff());
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  #fatal(code, reason) {
    this.dispatchEvent(new Event('error'));
    this.#shutdown(code, reason, false);
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @param {boolean} wasClean
   */
  #shutdown(code, reason, wasClean) {
    this.readyState = FeedgateSocket.CLOSING;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    clearTimeout(this.#climbTimer);
    for (const c of this.#conns) c.close();
    this.#conns.clear();
    this.#active = this.#probe = null;
    queueMicrotask(() => {
      this.readyState = FeedgateSocket.CLOSED;
      this.dispatchEvent(new FeedgateCloseEvent(code, reason, wasClean));
    });
  }

  /** The wait before the next round, and the Retry-After it honoured is spent. */
  #backoff() {
    const o = this.#o;
    const wait = backoff(this.#round, o.reconnectDelay, o.maxReconnectDelay, this.#retryAfter);
    this.#retryAfter = 0;
    return wait;
  }

  /**
   * @param {() => void} fn
   * @param {number} ms
   */
  #later(fn, ms) {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  /** SSE is to be checked for buffering: not yet passed, and a transport
   *  to fall back to after it (a buffering stream beats none). */
  #wantsBufferCheck() {
    const list = this.#o.transports;
    return this.#o.bufferCheck && !this.#sseChecked && list.indexOf('sse') < list.length - 1;
  }

  /** @param {TokenSource} t */
  #token(t) {
    return typeof t === 'function' ? t() : t;
  }

  // ---- what connections report; the one place events are let through ----

  /** @param {Connection} conn */
  #live(conn) {
    return this.readyState < FeedgateSocket.CLOSING && (conn === this.#active || conn === this.#probe);
  }

  /**
   * `ready` / `subscribed` (streams) or a poll answer's position for
   * `topic`: where the server put us. Proves the connection.
   * @param {Connection} conn
   * @param {string} topic
   * @param {string} epoch
   * @param {number} next
   */
  #onReady(conn, topic, epoch, next) {
    if (!this.#live(conn)) return;
    conn.heard();
    this.#ledger.place(topic, epoch, next);
    conn.prove();
  }

  /** A connection that follows no topic (all unsubscribed) is as good as
   *  proved. @param {Connection} conn */
  #onIdle(conn) {
    if (!this.#live(conn)) return;
    conn.heard();
    conn.prove();
  }

  /**
   * @param {Connection} conn
   * @param {string} topic
   * @param {number} missedByConn
   * @param {number} resumeSeq
   */
  #onGap(conn, topic, missedByConn, resumeSeq) {
    if (!this.#live(conn)) return;
    const missed = this.#ledger.skip(topic, missedByConn, resumeSeq);
    if (missed !== null) this.dispatchEvent(new GapEvent(topic, missed, resumeSeq));
  }

  /**
   * @param {Connection} conn
   * @param {string} topic
   * @param {string} reason
   * @param {string} epoch
   */
  #onReset(conn, topic, reason, epoch) {
    if (!this.#live(conn) || !this.#ledger.has(topic)) return;
    // Everything retained follows on this connection; other connections
    // still stand on the old cursor and must not deliver.
    for (const c of this.#conns) {
      if (c !== conn) {
        c.close();
        this.#conns.delete(c);
      }
    }
    if (this.#probe !== conn) {
      // A climb that was under way is cut short; try again later.
      this.#probe = null;
      this.#scheduleClimb();
    }
    this.#ledger.restart(topic, epoch);
    this.dispatchEvent(new ResetEvent(topic, reason, epoch));
  }

  /**
   * The server refused to follow `topic` (WebSocket `error`): drop it.
   * @param {Connection} conn
   * @param {string} topic
   * @param {string} code
   * @param {string} message
   */
  #onTopicError(conn, topic, code, message) {
    if (!this.#live(conn) || !this.#ledger.forget(topic)) return;
    this.#retarget();
    this.dispatchEvent(new TopicErrorEvent(topic, code, message));
  }

  /**
   * One event, as raw JSON text plus its parsed form.
   * @param {Connection} conn
   * @param {string} text
   * @param {FeedgateEvent} event
   */
  #onEvent(conn, text, event) {
    if (!this.#live(conn)) return;
    const topic = /** @type {string} */ (event.topic ?? conn.topic);
    const seq = event.seq;
    const take = this.#ledger.take(topic, seq);
    if (take === 'jump') {
      // Not contiguous and no gap signalled: never skip silently. Drop
      // this connection; the next one resumes from the cursor.
      conn.as('error').fail(`out-of-order event ${topic} ${seq} after ${this.#ledger.get(topic)?.seq}`);
      return;
    }
    if (take !== 'deliver') return;
    this.#round = 0; // delivering: the backoff starts over
    const lastEventId = cursorText(/** @type {import('./cursor.js').Position} */ (this.#ledger.get(topic)));
    this.dispatchEvent(new FeedgateMessageEvent({ data: text, topic, seq, event, lastEventId, origin: this.#origin }));
  }
}

/**
 * A promise whose rejection, unhandled by the caller (as with
 * WebSocket.send, whose result nobody awaits), is not reported.
 * @template T
 * @param {Promise<T>} p
 */
function quiet(p) {
  p.catch(() => {});
  return p;
}
