// @ts-check
// Cursors and topic LISTs in their wire forms (docs/protocol.md): `N` or
// `EPOCH:N` after `after=`, `TOPIC@CURSOR` items in `topics=LIST`.

/**
 * Where a topic stands: the epoch of its log and the seq of the last event
 * delivered. `seq` is null until the server has placed a "from now"
 * subscription; `epoch` is null until a server has named one.
 * @typedef {{ epoch: string | null, seq: number | null }} Position
 */

/** The epoch of a topic nobody has published to yet. */
export const NO_EPOCH = '0000000000000000';

/** Topic names as the server checks them (`,` and `@` are not in it, so a
 *  LIST needs no escaping). */
export const TOPIC_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * `N`, `EPOCH:N`, a number, or nothing (from now) → a position.
 * @param {unknown} after
 * @returns {Position}
 * @throws {SyntaxError} on anything else
 */
export function parseCursor(after) {
  if (after === undefined || after === null) return { epoch: null, seq: null };
  const m = /^(?:([0-9a-f]{16}):)?(\d+)$/.exec(String(after));
  if (!m) throw new SyntaxError(`FeedgateSocket: bad cursor ${after}`);
  return { epoch: m[1] || null, seq: Number(m[2]) };
}

/**
 * A placed position → `EPOCH:SEQ` (or `SEQ` without an epoch).
 * @param {Position} c
 */
export function cursorText(c) {
  return c.epoch ? `${c.epoch}:${c.seq}` : String(c.seq);
}

/**
 * Checks a topic name.
 * @param {unknown} name
 * @returns {string}
 * @throws {SyntaxError} when the server would refuse it
 */
export function checkTopic(name) {
  const topic = String(name);
  if (!TOPIC_RE.test(topic)) throw new SyntaxError(`FeedgateSocket: bad topic name ${topic}`);
  return topic;
}

/**
 * A LIST item `TOPIC` or `TOPIC@CURSOR` → [topic, cursor or undefined].
 * @param {unknown} item
 * @returns {[string, string | undefined]}
 */
export function splitItem(item) {
  const text = String(item);
  const at = text.indexOf('@');
  const topic = checkTopic(at < 0 ? text : text.slice(0, at));
  return [topic, at < 0 ? undefined : text.slice(at + 1)];
}

/**
 * The `after` option for one topic: one cursor for all, or `{topic: cursor}`.
 * @param {unknown} after
 * @param {string} topic
 */
export function startOf(after, topic) {
  if (after !== null && typeof after === 'object') return /** @type {Record<string, unknown>} */ (after)[topic];
  return after;
}

/**
 * The LIST that resumes every topic: `a@EPOCH:SEQ,b@SEQ,c` (a topic not
 * placed yet goes without `@`: from now).
 * @param {Iterable<[string, Position]>} positions
 */
export function listText(positions) {
  const items = [];
  for (const [topic, c] of positions) items.push(c.seq === null ? topic : `${topic}@${cursorText(c)}`);
  return items.join(',');
}
