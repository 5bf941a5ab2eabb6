// @ts-check
// Telling the server why the socket switched transports (`POST
// /telemetry/switch`, counted in feedgate_client_transport_switches_total),
// so that operators see which paths fail their clients.

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
export const REPORTS_PER_MINUTE = 4;

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
export function switchCause(from, to, why, failures) {
  if (why === 'upgrade') return from && from !== to ? { from, to, reason: 'climb' } : null;
  if (failures.length === 0) return null;
  const left = from ?? failures[0].t;
  const mine = failures.filter((f) => f.t === left);
  const f = left === to ? mine[0] : mine.at(-1) ?? failures[0];
  if (!f || f.reason === 'restart') return null;
  if (left === to && f.reason !== 'cut' && f.reason !== 'closed') return null;
  const cause = /** @type {SwitchCause} */ ({ from: left, to, reason: f.reason });
  if (f.code !== undefined) cause.code = f.code;
  if (f.after_s !== undefined) cause.after_s = f.after_s;
  return cause;
}

/** Sends switch reports: best effort, never an error of its own, at most
 *  REPORTS_PER_MINUTE a minute. */
export class Reporter {
  #url;
  /** When the reports of the last minute were sent (performance.now()). */
  #sent = /** @type {number[]} */ ([]);

  /** @param {string} base the server's base URL */
  constructor(base) {
    this.#url = `${base}/telemetry/switch`;
  }

  /**
   * Sends `cause`, unless null or over the cap. A beacon (text/plain: no
   * CORS preflight) goes out on a keep-alive connection to the server when
   * one is idle. Returns whether it was sent.
   * @param {SwitchCause | null} cause
   * @param {number} [now] performance.now()
   */
  report(cause, now = performance.now()) {
    if (!cause) return false;
    this.#sent = this.#sent.filter((t) => now - t < 60000);
    if (this.#sent.length >= REPORTS_PER_MINUTE) return false;
    this.#sent.push(now);
    const body = JSON.stringify(cause);
    try {
      if (globalThis.navigator?.sendBeacon?.(this.#url, body)) return true;
    } catch {
      // no beacons here (a worker, an old browser): fetch below
    }
    fetch(this.#url, { method: 'POST', body, keepalive: true, mode: 'no-cors', credentials: 'omit' }).catch(() => {});
    return true;
  }
}
