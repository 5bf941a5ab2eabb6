/**
 * Where a poll answer places a reader that had no position yet ("from
 * now"): before its first event when it holds any (an event may be
 * published between the server placing the reader and reading), else at
 * `next`.
 * @param {{ seq: number }[]} events
 * @param {number} next
 */
export function placedAt(events: {
    seq: number;
}[], next: number): number;
/**
 * The events of a poll body as the server wrote them, so that `data` is
 * the same text on every transport (re-serialising would reformat numbers
 * such as 99.90). Returns null when the body is not as expected.
 * @param {string} body
 * @param {number} count how many events the body holds
 * @returns {string[] | null}
 */
export function eventTexts(body: string, count: number): string[] | null;
