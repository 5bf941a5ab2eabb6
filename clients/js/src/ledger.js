// @ts-check
// The exactly-once bookkeeping: one position per topic, shared by every
// transport, and the rules by which an event, a gap or a reset moves it.
//
// The server's log is the buffer. Every connection starts from these
// positions, and an event is let through only if its seq is its topic's
// next one; so a switch between transports (both may deliver for a
// moment) never repeats or skips an event, and a gap or a reset moves a
// position only when the server signals it.

import { NO_EPOCH, cursorText, listText } from './cursor.js';

/** @typedef {import('./cursor.js').Position} Position */

/**
 * What to do with an event (`take`): `deliver` it (the position moved),
 * drop a `duplicate` (delivered already: a switch's overlap), drop it as
 * `unfollowed` (not followed, or not placed yet: never a guess), or drop
 * the connection after a `jump` (not contiguous and no gap signalled).
 * @typedef {'deliver' | 'duplicate' | 'unfollowed' | 'jump'} Take
 */

export class Ledger {
  /** topic → position, in the order topics were added (the LIST's order). */
  #pos = /** @type {Map<string, Position>} */ (new Map());

  /** How many topics are followed. */
  get size() {
    return this.#pos.size;
  }

  /** The topics followed, in order. */
  topics() {
    return [...this.#pos.keys()];
  }

  /** @param {string} topic */
  has(topic) {
    return this.#pos.has(topic);
  }

  /**
   * Where a topic stands (a copy), or undefined when not followed.
   * @param {string} topic
   * @returns {Position | undefined}
   */
  get(topic) {
    const c = this.#pos.get(topic);
    return c && { ...c };
  }

  /** Every topic and its position, in order. */
  entries() {
    return this.#pos.entries();
  }

  /**
   * Follows `topic` from `at`; false when it is followed already.
   * @param {string} topic
   * @param {Position} at
   */
  follow(topic, at) {
    if (this.#pos.has(topic)) return false;
    this.#pos.set(topic, { ...at });
    return true;
  }

  /**
   * Stops following `topic` and forgets its position; false when it was
   * not followed.
   * @param {string} topic
   */
  forget(topic) {
    return this.#pos.delete(topic);
  }

  /**
   * A topic's cursor (`EPOCH:SEQ`), or null when it has none yet.
   * @param {string} topic
   */
  cursorOf(topic) {
    const c = this.#pos.get(topic);
    return c && c.seq !== null ? cursorText(c) : null;
  }

  /** The LIST that resumes every topic (`a@EPOCH:SEQ,b,…`). */
  list() {
    return listText(this.#pos);
  }

  /**
   * The server placed a subscription (`ready`, `subscribed`, a poll
   * answer): at `epoch`, before the event after `next`. A fresh
   * subscription learns its position; with an epoch of our own a mismatch
   * comes as an explicit reset instead. A topic nobody had published to
   * has no epoch yet: its first publish brings one, announced by a new
   * `ready` / `subscribed` (docs/protocol.md).
   * @param {string} topic
   * @param {string} epoch
   * @param {number} next
   */
  place(topic, epoch, next) {
    const c = this.#pos.get(topic);
    if (c && (c.epoch === null || c.epoch === NO_EPOCH)) this.#pos.set(topic, { epoch, seq: c.seq ?? next });
  }

  /**
   * The server no longer has the events before `resumeSeq`. Several
   * connections may report the same gap: it is counted once, from what was
   * delivered. Returns how many events were missed, or null when the gap
   * is no news (or the topic not followed).
   * @param {string} topic
   * @param {number} missedByConn what the connection's server said
   * @param {number} resumeSeq
   */
  skip(topic, missedByConn, resumeSeq) {
    const c = this.#pos.get(topic);
    if (!c) return null;
    const last = c.seq;
    if (last !== null && resumeSeq - 1 <= last) return null;
    this.#pos.set(topic, { ...c, seq: resumeSeq - 1 });
    return last === null ? missedByConn : resumeSeq - 1 - last;
  }

  /**
   * The topic's log restarted (another epoch, or a cursor past its head):
   * after 0 in the new epoch. What follows is everything retained, and a
   * reconnect before it arrives asks for exactly that. False when the
   * topic is not followed.
   * @param {string} topic
   * @param {string} epoch
   */
  restart(topic, epoch) {
    if (!this.#pos.has(topic)) return false;
    this.#pos.set(topic, { epoch, seq: 0 });
    return true;
  }

  /**
   * One event of `topic` with `seq` arrived: whether it is the next one.
   * After 0 (or a reset) the server starts at the oldest event it still
   * has, whatever its seq; after N it continues at N + 1 or says why not.
   * @param {string} topic
   * @param {number} seq
   * @returns {Take}
   */
  take(topic, seq) {
    const c = this.#pos.get(topic);
    if (!c || c.seq === null) return 'unfollowed';
    const last = c.seq;
    if (seq <= last) return 'duplicate';
    if (last !== 0 && seq !== last + 1) return 'jump';
    this.#pos.set(topic, { epoch: c.epoch, seq });
    return 'deliver';
  }
}
