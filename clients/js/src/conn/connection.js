// @ts-check
// What every transport connection shares: opening from the socket's
// cursors, proving itself, naming why it failed, ending exactly once.
//
// A connection reports to its socket through a Host (`ready`, `event`,
// `gap`, `reset`, `topicError`, `idle`) and ends exactly once, through
// `onLost(why, status)`, whether it failed or was closed; `close()` ends
// it quietly. `retarget()` follows the socket's topics after they changed.
// Before it fails, `as(reason, code)` names what it observed, in the words
// of `POST /telemetry/switch`: refused, stalled, buffered, cut, closed,
// timeout or error (and restart, which is not reported).

import { listUrl, topicUrl } from '../endpoints.js';
import { LeanSeqs } from '../lean.js';

/** @typedef {import('../options.js').Settings} Settings */
/** @typedef {import('../options.js').Transport} Transport */
/** @typedef {import('../ledger.js').Ledger} Ledger */
/** @typedef {import('../events.js').FeedgateEvent} FeedgateEvent */

/**
 * What a connection may see of its socket, and tell it. Only the socket
 * moves the ledger; a connection reads it to build its requests.
 * @typedef {object} Host
 * @property {Settings} options
 * @property {string} url the server's base URL
 * @property {Ledger} ledger
 * @property {() => boolean} multi on the multiplexed endpoints
 * @property {() => string | null} topic the one topic, when not multiplexed
 * @property {() => string | null | undefined | Promise<string | null | undefined>} token
 * @property {() => boolean} wantsBufferCheck
 * @property {() => void} bufferChecked SSE passed the buffer check
 * @property {(conn: Connection, topic: string, epoch: string, next: number) => void} ready
 *   the server placed `topic` (the proof)
 * @property {(conn: Connection) => void} idle following no topic: as good as proved
 * @property {(conn: Connection, topic: string, missed: number, resumeSeq: number) => void} gap
 * @property {(conn: Connection, topic: string, reason: string, epoch: string) => void} reset
 * @property {(conn: Connection, topic: string, code: string, message: string) => void} topicError
 * @property {(conn: Connection, text: string, event: FeedgateEvent) => void} event
 */

/**
 * @callback Lost
 * @param {string} why what happened, in words
 * @param {number} [status] the HTTP status of a refused poll
 * @param {number} [retryAfter] seconds the server asked to wait
 * @param {number | null} [restart] the server drained for a restart: its
 *   delay (ms), or null for a random one
 * @returns {void}
 */

export class Connection {
  /** Ends a pending re-proof after a topic change. */
  #reproof = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);

  /**
   * @param {Host} host
   * @param {Transport} name
   */
  constructor(host, name) {
    this.host = host;
    this.name = name;
    this.closed = false;
    this.started = false;
    this.proved = false;
    /** When it proved itself and took over (performance.now()). @type {number | undefined} */
    this.since = undefined;
    /** Why it failed, in telemetry's words. @type {string | undefined} */
    this.reason = undefined;
    /** A close code or status that goes with `reason`. @type {number | undefined} */
    this.code = undefined;
    /** The subscriber token it opens with. @type {string | null | undefined} */
    this.token = undefined;
    this.multi = false;
    /** The one topic, when not multiplexed. @type {string | null} */
    this.topic = null;
    this.lean = false;
    this.leanSeqs = new LeanSeqs();
    this.onProved = () => {};
    /** @type {Lost} */
    this.onLost = () => {};
  }

  /**
   * Names the reason of the failure that follows (and a close code or
   * status); the first one named stands.
   * @param {string} reason
   * @param {number} [code]
   */
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
    this.#follow();
    this.lean = this.host.options.encoding === 'lean';
    // Lean events carry no seq: per topic, the seq of the last one here,
    // from each `ready` / `subscribed` / `gap` / `reset` (they say `next`).
    this.leanSeqs = new LeanSeqs();
    this.start();
  }

  /** Takes the socket's endpoints: one topic or the multiplexed ones. */
  #follow() {
    this.multi = this.host.multi();
    this.topic = this.host.topic();
  }

  /** The socket's topics changed. */
  retarget() {
    if (!this.started || this.closed) return;
    if (this.multi !== this.host.multi()) this.restart();
    else if (this.multi) this.update();
  }

  /**
   * Opens anew from the socket's cursors (a new LIST on SSE, a one-topic
   * connection that becomes multiplexed). A connection that had proved
   * itself must do so again within `probeTimeout`.
   */
  restart() {
    this.teardown();
    this.#follow();
    if (this.proved) {
      clearTimeout(this.#reproof);
      const limit = this.host.options.probeTimeout;
      this.#reproof = setTimeout(() => this.as('stalled').fail(`no answer within ${limit} ms after a topic change`), limit);
    }
    this.start();
  }

  /** The server answered: a pending re-proof is done. */
  heard() {
    clearTimeout(this.#reproof);
  }

  /**
   * Ends the connection and reports it lost (at most once).
   * @type {Lost}
   */
  fail(why, status, retryAfter, restart) {
    if (this.closed) return;
    this.as('error');
    this.teardown();
    this.closed = true;
    clearTimeout(this.#reproof);
    this.onLost(why, status, retryAfter, restart);
  }

  /** Ends the connection without reporting. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#reproof);
    this.teardown();
  }

  /**
   * The URL to open now, from the socket's cursors.
   * @param {Transport} action
   * @param {Record<string, string>} [params]
   */
  url(action, params = {}) {
    const p = { ...params };
    if (this.token && (action === 'ws' || action === 'sse')) p.token = this.token;
    if (this.lean) p.encoding = 'lean';
    const { url, ledger } = this.host;
    if (this.multi) return listUrl(url, action, ledger.list(), p);
    const topic = /** @type {string} */ (this.topic);
    return topicUrl(url, topic, action, ledger.get(topic) ?? { epoch: null, seq: null }, p);
  }

  /** Opens the transport (each kind its own). */
  start() {}

  /** The topics changed while multiplexed: follow them. */
  update() {
    this.restart();
  }

  /** Closes what `start` opened, quietly. */
  teardown() {}
}
