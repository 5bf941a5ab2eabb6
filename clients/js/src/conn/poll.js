// @ts-check
// Short and long polling: a loop of fetches, each from the socket's
// cursors (`/topics/{t}/poll`, `/longpoll?topics=LIST`, …).

import { authHeaders } from '../endpoints.js';
import { leanBatch } from '../lean.js';
import { Connection } from './connection.js';
import { eventTexts, placedAt } from './poll-body.js';

/** @typedef {import('../events.js').FeedgateEvent} FeedgateEvent */

/**
 * A topic's part of a poll answer.
 * @typedef {object} Place
 * @property {string} epoch
 * @property {number} next
 * @property {{ missed: number, resume_seq: number }} [gap]
 * @property {{ reason: string, epoch: string }} [reset]
 * @property {unknown[]} [events] lean, multiplexed: the topic's events
 */

/** A refused or failed request, with what the socket needs to know. */
class PollError extends Error {
  /** @type {number | undefined} */
  status = undefined;
  /** Seconds of Retry-After. */
  retryAfter = 0;
  timedOut = false;
}

export class PollConn extends Connection {
  #first = true;
  /** A topic change aborted the request in flight. */
  #retargeted = false;
  /** A new token was asked for after a 401/403. */
  #renewed = false;
  /** A long poll the server answered because it drains: its delay (ms).
   *  @type {number | undefined} */
  #drainDelay = undefined;
  /** @type {AbortController | undefined} */
  #abort = undefined;
  /** @type {(() => void) | undefined} */
  #wake = undefined;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer = undefined;

  start() {
    this.#first = true;
    this.#loop();
  }

  async #loop() {
    const h = this.host;
    const o = h.options;
    const long = this.name === 'longpoll';
    while (!this.closed) {
      if (this.multi && h.ledger.size === 0) {
        // Nothing to ask about until a subscribe.
        h.idle(this);
        await this.#sleep(Infinity);
        continue;
      }
      /** @type {Record<string, string>} */
      const params = {};
      // The first long poll answers at once, so that it proves the
      // transport within probeTimeout.
      if (long) params.timeout = this.#first ? '0' : String(o.longpollTimeout);
      const limit = this.#first ? o.probeTimeout : long ? o.longpollTimeout * 1000 + o.requestTimeout : o.requestTimeout;
      // Built now, from the socket's cursors: after a topic change (which
      // aborts the request in flight) the next one carries the new LIST.
      const url = this.url(this.name, params);
      // The answer is read as the request was made, whatever changed since.
      const { multi, topic } = this;
      this.#retargeted = false;
      const asked = performance.now();
      let body;
      try {
        body = await this.#fetch(url, limit);
      } catch (err) {
        const e = /** @type {PollError} */ (err);
        if (this.#retargeted && !this.closed) continue;
        // A token that expired while polling: ask the provider once for a
        // new one before giving up (a stream gets one per reconnect).
        if ((e.status === 401 || e.status === 403) && !this.#renewed && typeof o.token === 'function') {
          this.#renewed = true;
          try {
            this.token = await h.token();
            continue;
          } catch {
            // fall through: the refusal stands
          }
        }
        // A long poll held a while and then failed: the path cut the hold
        // (a proxy timeout shorter than it answers 504, or closes).
        const held = long && !this.#first && performance.now() - asked > 1000;
        if (e.timedOut) this.as(this.#first ? 'stalled' : 'timeout');
        else this.as(held ? 'cut' : 'refused', e.status);
        this.fail(e.message, e.status, e.retryAfter);
        return;
      }
      if (this.closed) return;
      this.#renewed = false;
      this.#first = false;
      try {
        if (multi) this.#takeMany(body);
        else this.#take(body, /** @type {string} */ (topic));
      } catch {
        this.as('error').fail('unparsable answer');
        return;
      }
      if (this.closed) return;
      if (this.#drainDelay !== undefined) {
        this.as('restart').fail('server restarting', undefined, undefined, this.#drainDelay);
        return;
      }
      if (!long) await this.#sleep(o.pollInterval);
    }
  }

  /**
   * @param {string} url
   * @param {number} limit ms
   */
  async #fetch(url, limit) {
    const abort = (this.#abort = new AbortController());
    const timer = setTimeout(() => abort.abort(), limit);
    try {
      const res = await fetch(url, { headers: authHeaders(this.token), signal: abort.signal });
      const text = await res.text();
      const hint = res.headers.get('retry-after-ms');
      this.#drainDelay = res.ok && hint !== null ? Number(hint) || 0 : undefined;
      if (!res.ok) {
        const err = new PollError(`${this.name} answered ${res.status}`);
        err.status = res.status;
        err.retryAfter = Number(res.headers.get('retry-after')) || 0;
        throw err;
      }
      return text;
    } catch (e) {
      if (/** @type {Error} */ (e).name === 'AbortError') {
        const err = new PollError(`${this.name} got no answer within ${limit} ms`);
        err.timedOut = true;
        throw err;
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * `{epoch, events, next}`: signals first, then events.
   * @param {string} text
   * @param {string} t
   */
  #take(text, t) {
    const body = JSON.parse(text);
    if (this.lean) return this.#takeLean(t, body, body.events);
    this.#place(t, body, placedAt(body.events, body.next));
    this.#events(text, body.events);
  }

  /**
   * `{events, topics: {T: {epoch, next, gap?, reset?}}, next}`: every
   * topic's position and signals, then the events.
   * @param {string} text
   */
  #takeMany(text) {
    const body = JSON.parse(text);
    /** @type {[string, Place][]} */
    const topics = Object.entries(body.topics);
    if (this.lean) {
      for (const [t, p] of topics) this.#takeLean(t, p, p.events ?? []);
      return;
    }
    for (const [t, p] of topics) {
      /** @type {FeedgateEvent[]} */
      const mine = body.events.filter((/** @type {FeedgateEvent} */ e) => e.topic === t);
      this.#place(t, p, placedAt(mine, p.next));
    }
    this.#events(text, body.events);
  }

  /**
   * One topic's lean answer: the events are data whose seqs end at `next`.
   * @param {string} t
   * @param {Place} p
   * @param {unknown[]} events
   */
  #takeLean(t, p, events) {
    this.#place(t, p, p.next - events.length);
    for (const { text, seq } of leanBatch(p.next, events)) {
      if (!this.closed) this.host.event(this, text, { topic: t, seq });
    }
  }

  /**
   * A topic's position, then its reset and gap.
   * @param {string} t
   * @param {Place} p
   * @param {number} placed where a reader without a position stands
   */
  #place(t, p, placed) {
    const h = this.host;
    h.ready(this, t, p.epoch, placed);
    if (p.reset) h.reset(this, t, p.reset.reason, p.reset.epoch);
    if (p.gap) h.gap(this, t, p.gap.missed, p.gap.resume_seq);
  }

  /**
   * @param {string} text the body
   * @param {FeedgateEvent[]} events parsed
   */
  #events(text, events) {
    const raw = eventTexts(text, events.length);
    events.forEach((ev, i) => {
      if (!this.closed) this.host.event(this, raw ? raw[i] : JSON.stringify(ev), ev);
    });
  }

  /** Another endpoint (one topic → several): the loop's next request. */
  restart() {
    this.multi = this.host.multi();
    this.topic = this.host.topic();
    this.update();
  }

  /** The topics changed: ask again now, with the new LIST. */
  update() {
    this.#retargeted = true;
    this.#abort?.abort();
    this.#wake?.();
  }

  /** @param {number} ms */
  #sleep(ms) {
    return new Promise((resolve) => {
      this.#wake = () => resolve(undefined);
      if (ms !== Infinity) this.#timer = setTimeout(resolve, ms);
    });
  }

  teardown() {
    this.#abort?.abort();
    clearTimeout(this.#timer);
    this.#wake?.();
  }
}
