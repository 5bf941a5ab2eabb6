/**
 * `N`, `EPOCH:N`, a number, or nothing (from now) → a position.
 * @param {unknown} after
 * @returns {Position}
 * @throws {SyntaxError} on anything else
 */
export function parseCursor(after: unknown): Position;
/**
 * A placed position → `EPOCH:SEQ` (or `SEQ` without an epoch).
 * @param {Position} c
 */
export function cursorText(c: Position): string;
/**
 * Checks a topic name.
 * @param {unknown} name
 * @returns {string}
 * @throws {SyntaxError} when the server would refuse it
 */
export function checkTopic(name: unknown): string;
/**
 * A LIST item `TOPIC` or `TOPIC@CURSOR` → [topic, cursor or undefined].
 * @param {unknown} item
 * @returns {[string, string | undefined]}
 */
export function splitItem(item: unknown): [string, string | undefined];
/**
 * The `after` option for one topic: one cursor for all, or `{topic: cursor}`.
 * @param {unknown} after
 * @param {string} topic
 */
export function startOf(after: unknown, topic: string): unknown;
/**
 * The LIST that resumes every topic: `a@EPOCH:SEQ,b@SEQ,c` (a topic not
 * placed yet goes without `@`: from now).
 * @param {Iterable<[string, Position]>} positions
 */
export function listText(positions: Iterable<[string, Position]>): string;
/**
 * Where a topic stands: the epoch of its log and the seq of the last event
 * delivered. `seq` is null until the server has placed a "from now"
 * subscription; `epoch` is null until a server has named one.
 * @typedef {{ epoch: string | null, seq: number | null }} Position
 */
/** The epoch of a topic nobody has published to yet. */
export const NO_EPOCH: "0000000000000000";
/** Topic names as the server checks them (`,` and `@` are not in it, so a
 *  LIST needs no escaping). */
export const TOPIC_RE: RegExp;
/**
 * Where a topic stands: the epoch of its log and the seq of the last event
 * delivered. `seq` is null until the server has placed a "from now"
 * subscription; `epoch` is null until a server has named one.
 */
export type Position = {
    epoch: string | null;
    seq: number | null;
};
