// @ts-check
// WebSocket: `/topics/{t}/ws` for one topic, `/ws?topics=LIST` for
// several, topics added and dropped with messages on the open socket.

import { cursorText } from '../cursor.js';
import { wsUrl } from '../endpoints.js';
import { CONTROL_MARK, splitTopic } from '../lean.js';
import { Connection } from './connection.js';

/** A v1 frame is a control message iff it starts with this. */
const CONTROL_PREFIX = '{"type":';

/** `error` codes of a refused subscribe that no retry can fix: the topic
 *  is dropped (with a `topicerror` event) and the rest go on. */
const TOPIC_REFUSALS = new Set(['invalid_topic', 'invalid_cursor', 'too_many_topics', 'forbidden', 'unauthorized']);

/**
 * A control message, as the server sends it.
 * @typedef {object} Control
 * @property {string} [type]
 * @property {string} [topic]
 * @property {string} [epoch]
 * @property {number} [next]
 * @property {number} [missed]
 * @property {number} [resume_seq]
 * @property {string} [reason]
 * @property {string} [code]
 * @property {string} [message]
 * @property {number} [seq] an event's
 */

export class WsConn extends Connection {
  /** @type {WebSocket | null} */
  #ws = null;
  #opened = false;
  /**
   * A multiplexed socket's view of each topic on the server: 'pending'
   * (subscribe sent, or in the URL: until its `subscribed`), 'live' (its
   * events count), 'leaving' (unsubscribe sent: until `unsubscribed`,
   * after which no event of it follows). Only live topics' events and
   * signals reach the socket, so an event still in flight from an old
   * subscription never passes for a new one.
   * @type {Map<string, 'pending' | 'live' | 'leaving'>}
   */
  #subs = new Map();

  start() {
    this.#subs = new Map();
    if (this.multi) for (const t of this.host.ledger.topics()) this.#subs.set(t, 'pending');
    this.#opened = false;
    const ws = (this.#ws = new WebSocket(wsUrl(this.url('ws'))));
    ws.onopen = () => {
      this.#opened = true;
      if (!this.multi) return;
      if (this.#subs.size === 0) this.host.idle(this);
      this.update();
    };
    ws.onmessage = (m) => {
      if (this.closed || typeof m.data !== 'string') return;
      if (this.lean && !m.data.startsWith(CONTROL_MARK)) {
        this.#leanEvent(m.data);
        return;
      }
      const text = this.lean ? m.data.slice(1) : m.data;
      /** @type {Control} */
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        this.as('error').fail('unparsable frame');
        return;
      }
      if (this.lean) this.leanSeqs.at(/** @type {string} */ (this.multi ? msg.topic : this.topic), msg.next);
      if (this.multi) this.#many(text, msg);
      else this.#one(text, msg);
    };
    // The browser hides why a WebSocket failed; error is followed by close.
    // 1012 (service restart): the server drains; come back after a random
    // delay. Closed before it opened: the upgrade was refused; 1006 (no
    // close frame) after: the path dropped it; any other code: closed.
    ws.onclose = (e) => {
      if (e.code === 1012) this.as('restart', e.code);
      else if (!this.#opened) this.as('refused', e.code);
      else this.as(e.code === 1006 ? 'cut' : 'closed', e.code);
      this.fail(`websocket closed (${e.code}${e.reason ? ` ${e.reason}` : ''})`, undefined, undefined, e.code === 1012 ? null : undefined);
    };
  }

  /**
   * A lean event frame: the data, after `TOPIC ` when multiplexed.
   * @param {string} text
   */
  #leanEvent(text) {
    let topic = /** @type {string} */ (this.topic);
    let data = text;
    if (this.multi) {
      const split = splitTopic(text);
      if (!split) {
        this.as('error').fail('unparsable frame');
        return;
      }
      [topic, data] = split;
      if (this.#subs.get(topic) !== 'live') return;
    }
    this.host.event(this, data, { topic, seq: this.leanSeqs.next(topic) });
  }

  /**
   * `/topics/{topic}/ws`: events and `ready`/`gap`/`reset`.
   * @param {string} text
   * @param {Control} msg
   */
  #one(text, msg) {
    const h = this.host;
    const t = /** @type {string} */ (this.topic);
    const m = /** @type {Required<Control>} */ (msg);
    if (!text.startsWith(CONTROL_PREFIX)) h.event(this, text, m);
    else if (m.type === 'ready') h.ready(this, t, m.epoch, m.next);
    else if (m.type === 'gap') h.gap(this, t, m.missed, m.resume_seq);
    else if (m.type === 'reset') h.reset(this, t, m.reason, m.epoch);
  }

  /**
   * `/ws?topics=LIST`: the same, naming their topic, plus the answers to
   * subscribe and unsubscribe.
   * @param {string} text
   * @param {Control} msg
   */
  #many(text, msg) {
    const h = this.host;
    const m = /** @type {Required<Control>} */ (msg);
    const t = m.topic;
    const state = this.#subs.get(t);
    // An event has no `type` (its fields are topic, seq, time, data). Not
    // the text's prefix: the server writes `error` frames with their keys
    // sorted, `{"code":…,"type":"error"}`.
    if (msg.type === undefined) {
      if (state === 'live') h.event(this, text, m);
    } else if (m.type === 'subscribed') {
      if (state === 'pending') this.#subs.set(t, 'live');
      if (state === 'pending' || state === 'live') h.ready(this, t, m.epoch, m.next);
    } else if (m.type === 'gap') {
      if (state === 'live') h.gap(this, t, m.missed, m.resume_seq);
    } else if (m.type === 'reset') {
      if (state === 'live') h.reset(this, t, m.reason, m.epoch);
    } else if (m.type === 'unsubscribed') {
      if (state === 'leaving') {
        this.#subs.delete(t);
        this.update(); // subscribed again meanwhile?
      }
    } else if (m.type === 'error' && t !== undefined) {
      if (state === 'pending') {
        this.#subs.delete(t);
        if (TOPIC_REFUSALS.has(m.code)) h.topicError(this, t, m.code, m.message);
        // The log is down, or some other passing trouble: start over.
        else this.as('error').fail(`subscribe ${t} refused: ${m.code}`);
      } else if (state === 'leaving' && m.code === 'not_subscribed') {
        this.#subs.delete(t);
        this.update();
      }
    }
  }

  /** Sends the subscribe and unsubscribe messages that make the server
   *  follow what the socket follows. */
  update() {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return; // again on open
    const ledger = this.host.ledger;
    for (const [t, c] of ledger.entries()) {
      if (this.#subs.has(t)) continue;
      /** @type {{type: string, topic: string, after?: string}} */
      const msg = { type: 'subscribe', topic: t };
      if (c.seq !== null) msg.after = cursorText(c);
      ws.send(JSON.stringify(msg));
      this.#subs.set(t, 'pending');
    }
    for (const [t, state] of this.#subs) {
      if (state !== 'leaving' && !ledger.has(t)) {
        ws.send(JSON.stringify({ type: 'unsubscribe', topic: t }));
        this.#subs.set(t, 'leaving');
      }
    }
  }

  teardown() {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    ws.onmessage = ws.onclose = ws.onopen = null;
    // A socket still connecting cannot be closed without a console error
    // in Chromium; close it as soon as it opens instead.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
    else ws.close(1000);
  }
}
