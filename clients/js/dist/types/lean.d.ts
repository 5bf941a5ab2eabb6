/**
 * A multiplexed lean event, `TOPIC DATA` → [topic, data]; null when it has
 * no topic in front.
 * @param {string} text
 * @returns {[string, string] | null}
 */
export function splitTopic(text: string): [string, string] | null;
/**
 * The events of one topic in a lean poll answer, which end at `next`:
 * each as its JSON text and its seq.
 * @param {number} next
 * @param {unknown[]} events
 * @returns {{ text: string, seq: number }[]}
 */
export function leanBatch(next: number, events: unknown[]): {
    text: string;
    seq: number;
}[];
/** A lean WebSocket control message is the v1 one after this; no JSON
 *  value starts with it, so a frame is an event iff it does not. */
export const CONTROL_MARK: "#";
/** Per connection, per topic: the seq of the last lean event. */
export class LeanSeqs {
    /**
     * A control message for `topic` (`ready`, `subscribed`, `gap`, `reset`)
     * said where events resume: after `next`.
     * @param {string} topic
     * @param {unknown} next
     */
    at(topic: string, next: unknown): void;
    /**
     * The seq of `topic`'s next lean event on this connection.
     * @param {string} topic
     */
    next(topic: string): number;
    #private;
}
