/**
 * What to tell the server about a connection that just proved itself, or
 * null. `from` is the transport in use before (null at the start), `why`
 * the transportchange reason, `failures` what failed since the last proof.
 * A switch carries the last failure of the transport it left; a reconnect
 * on the same transport is reported only when the path ended the
 * connection (`cut`, `closed`), since that is what an operator can fix; a
 * server restart is never a path problem.
 * @param {Transport | null} from
 * @param {Transport} to
 * @param {string} why
 * @param {Failure[]} failures
 * @returns {SwitchCause | null}
 */
export function switchCause(from: Transport | null, to: Transport, why: string, failures: Failure[]): SwitchCause | null;
/** @typedef {import('./options.js').Transport} Transport */
/** @typedef {import('./events.js').SwitchCause} SwitchCause */
/**
 * A connection that failed or was lost: its transport, what it saw (`why`,
 * free text), the reason in telemetry's words (or `restart`, which is not
 * reported), a close code or status, how long it had lived.
 * @typedef {object} Failure
 * @property {Transport} t
 * @property {string} why
 * @property {string} reason
 * @property {number} [code]
 * @property {number} [after_s]
 */
/** Reports sent in any minute, at most. */
export const REPORTS_PER_MINUTE: 4;
/** Sends switch reports: best effort, never an error of its own, at most
 *  REPORTS_PER_MINUTE a minute. */
export class Reporter {
    /** @param {string} base the server's base URL */
    constructor(base: string);
    /**
     * Sends `cause`, unless null or over the cap. A beacon (text/plain: no
     * CORS preflight) goes out on a keep-alive connection to the server when
     * one is idle. Returns whether it was sent.
     * @param {SwitchCause | null} cause
     * @param {number} [now] performance.now()
     */
    report(cause: SwitchCause | null, now?: number): boolean;
    #private;
}
export type Transport = import("./options.js").Transport;
export type SwitchCause = import("./events.js").SwitchCause;
/**
 * A connection that failed or was lost: its transport, what it saw (`why`,
 * free text), the reason in telemetry's words (or `restart`, which is not
 * reported), a close code or status, how long it had lived.
 */
export type Failure = {
    t: Transport;
    why: string;
    reason: string;
    code?: number | undefined;
    after_s?: number | undefined;
};
