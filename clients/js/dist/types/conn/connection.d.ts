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
    /**
     * @param {Host} host
     * @param {Transport} name
     */
    constructor(host: Host, name: Transport);
    host: Host;
    name: import("../options.js").Transport;
    closed: boolean;
    started: boolean;
    proved: boolean;
    /** When it proved itself and took over (performance.now()). @type {number | undefined} */
    since: number | undefined;
    /** Why it failed, in telemetry's words. @type {string | undefined} */
    reason: string | undefined;
    /** A close code or status that goes with `reason`. @type {number | undefined} */
    code: number | undefined;
    /** The subscriber token it opens with. @type {string | null | undefined} */
    token: string | null | undefined;
    multi: boolean;
    /** The one topic, when not multiplexed. @type {string | null} */
    topic: string | null;
    lean: boolean;
    leanSeqs: LeanSeqs;
    onProved: () => void;
    /** @type {Lost} */
    onLost: Lost;
    /**
     * Names the reason of the failure that follows (and a close code or
     * status); the first one named stands.
     * @param {string} reason
     * @param {number} [code]
     */
    as(reason: string, code?: number): this;
    /** The server placed us (`ready`, a poll answer): the proof, unless a
     *  check is still under way (SSE). */
    prove(): void;
    /** Starts on the socket's endpoints and cursors as they are now. */
    begin(): void;
    /** The socket's topics changed. */
    retarget(): void;
    /**
     * Opens anew from the socket's cursors (a new LIST on SSE, a one-topic
     * connection that becomes multiplexed). A connection that had proved
     * itself must do so again within `probeTimeout`.
     */
    restart(): void;
    /** The server answered: a pending re-proof is done. */
    heard(): void;
    fail(why: string, status?: number | undefined, retryAfter?: number | undefined, restart?: number | null | undefined): void;
    /** Ends the connection without reporting. */
    close(): void;
    /**
     * The URL to open now, from the socket's cursors.
     * @param {Transport} action
     * @param {Record<string, string>} [params]
     */
    url(action: Transport, params?: Record<string, string>): string;
    /** Opens the transport (each kind its own). */
    start(): void;
    /** The topics changed while multiplexed: follow them. */
    update(): void;
    /** Closes what `start` opened, quietly. */
    teardown(): void;
    #private;
}
export type Settings = import("../options.js").Settings;
export type Transport = import("../options.js").Transport;
export type Ledger = import("../ledger.js").Ledger;
export type FeedgateEvent = import("../events.js").FeedgateEvent;
/**
 * What a connection may see of its socket, and tell it. Only the socket
 * moves the ledger; a connection reads it to build its requests.
 */
export type Host = {
    options: Settings;
    /**
     * the server's base URL
     */
    url: string;
    ledger: Ledger;
    /**
     * on the multiplexed endpoints
     */
    multi: () => boolean;
    /**
     * the one topic, when not multiplexed
     */
    topic: () => string | null;
    token: () => string | null | undefined | Promise<string | null | undefined>;
    wantsBufferCheck: () => boolean;
    /**
     * SSE passed the buffer check
     */
    bufferChecked: () => void;
    /**
     *   the server placed `topic` (the proof)
     */
    ready: (conn: Connection, topic: string, epoch: string, next: number) => void;
    /**
     * following no topic: as good as proved
     */
    idle: (conn: Connection) => void;
    gap: (conn: Connection, topic: string, missed: number, resumeSeq: number) => void;
    reset: (conn: Connection, topic: string, reason: string, epoch: string) => void;
    topicError: (conn: Connection, topic: string, code: string, message: string) => void;
    event: (conn: Connection, text: string, event: FeedgateEvent) => void;
};
export type Lost = (why: string, status?: number | undefined, retryAfter?: number | undefined, restart?: number | null | undefined) => void;
import { LeanSeqs } from '../lean.js';
