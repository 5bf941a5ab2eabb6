// @ts-check
// The lean encoding (`encoding=lean`, docs/protocol.md): events that are
// the published data alone. Their seqs are counted here from the `next`
// of the control messages; their topic is the stream's, or written in
// front of the data on a multiplexed stream.

/** A lean WebSocket control message is the v1 one after this; no JSON
 *  value starts with it, so a frame is an event iff it does not. */
export const CONTROL_MARK = '#';

/** Per connection, per topic: the seq of the last lean event. */
export class LeanSeqs {
  #seq = /** @type {Map<string, number>} */ (new Map());

  /**
   * A control message for `topic` (`ready`, `subscribed`, `gap`, `reset`)
   * said where events resume: after `next`.
   * @param {string} topic
   * @param {unknown} next
   */
  at(topic, next) {
    if (typeof next === 'number') this.#seq.set(topic, next);
  }

  /**
   * The seq of `topic`'s next lean event on this connection.
   * @param {string} topic
   */
  next(topic) {
    const seq = (this.#seq.get(topic) ?? 0) + 1;
    this.#seq.set(topic, seq);
    return seq;
  }
}

/**
 * A multiplexed lean event, `TOPIC DATA` → [topic, data]; null when it has
 * no topic in front.
 * @param {string} text
 * @returns {[string, string] | null}
 */
export function splitTopic(text) {
  const sp = text.indexOf(' ');
  return sp > 0 ? [text.slice(0, sp), text.slice(sp + 1)] : null;
}

/**
 * The events of one topic in a lean poll answer, which end at `next`:
 * each as its JSON text and its seq.
 * @param {number} next
 * @param {unknown[]} events
 * @returns {{ text: string, seq: number }[]}
 */
export function leanBatch(next, events) {
  const first = next - events.length + 1;
  return events.map((data, i) => ({ text: JSON.stringify(data), seq: first + i }));
}
