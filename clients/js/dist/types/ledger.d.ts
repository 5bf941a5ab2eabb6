/** @typedef {import('./cursor.js').Position} Position */
/**
 * What to do with an event (`take`): `deliver` it (the position moved),
 * drop a `duplicate` (delivered already: a switch's overlap), drop it as
 * `unfollowed` (not followed, or not placed yet: never a guess), or drop
 * the connection after a `jump` (not contiguous and no gap signalled).
 * @typedef {'deliver' | 'duplicate' | 'unfollowed' | 'jump'} Take
 */
export class Ledger {
    /** How many topics are followed. */
    get size(): number;
    /** The topics followed, in order. */
    topics(): string[];
    /** @param {string} topic */
    has(topic: string): boolean;
    /**
     * Where a topic stands (a copy), or undefined when not followed.
     * @param {string} topic
     * @returns {Position | undefined}
     */
    get(topic: string): Position | undefined;
    /** Every topic and its position, in order. */
    entries(): MapIterator<[string, import("./cursor.js").Position]>;
    /**
     * Follows `topic` from `at`; false when it is followed already.
     * @param {string} topic
     * @param {Position} at
     */
    follow(topic: string, at: Position): boolean;
    /**
     * Stops following `topic` and forgets its position; false when it was
     * not followed.
     * @param {string} topic
     */
    forget(topic: string): boolean;
    /**
     * A topic's cursor (`EPOCH:SEQ`), or null when it has none yet.
     * @param {string} topic
     */
    cursorOf(topic: string): string | null;
    /** The LIST that resumes every topic (`a@EPOCH:SEQ,b,…`). */
    list(): string;
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
    place(topic: string, epoch: string, next: number): void;
    /**
     * The server no longer has the events before `resumeSeq`. Several
     * connections may report the same gap: it is counted once, from what was
     * delivered. Returns how many events were missed, or null when the gap
     * is no news (or the topic not followed).
     * @param {string} topic
     * @param {number} missedByConn what the connection's server said
     * @param {number} resumeSeq
     */
    skip(topic: string, missedByConn: number, resumeSeq: number): number | null;
    /**
     * The topic's log restarted (another epoch, or a cursor past its head):
     * after 0 in the new epoch. What follows is everything retained, and a
     * reconnect before it arrives asks for exactly that. False when the
     * topic is not followed.
     * @param {string} topic
     * @param {string} epoch
     */
    restart(topic: string, epoch: string): boolean;
    /**
     * One event of `topic` with `seq` arrived: whether it is the next one.
     * After 0 (or a reset) the server starts at the oldest event it still
     * has, whatever its seq; after N it continues at N + 1 or says why not.
     * @param {string} topic
     * @param {number} seq
     * @returns {Take}
     */
    take(topic: string, seq: number): Take;
    #private;
}
export type Position = import("./cursor.js").Position;
/**
 * What to do with an event (`take`): `deliver` it (the position moved),
 * drop a `duplicate` (delivered already: a switch's overlap), drop it as
 * `unfollowed` (not followed, or not placed yet: never a guess), or drop
 * the connection after a `jump` (not contiguous and no gap signalled).
 */
export type Take = "deliver" | "duplicate" | "unfollowed" | "jump";
