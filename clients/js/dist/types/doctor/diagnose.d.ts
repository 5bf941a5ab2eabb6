/** @typedef {import('./verdicts.js').TransportReport} TransportReport */
/**
 * @typedef {object} DiagnoseOptions
 * @property {number} [count] messages on each stream probe (5)
 * @property {number} [intervalMs] ms between them (250)
 * @property {number} [idle] s of silence after them (10)
 * @property {number} [hold] s a long poll is held (10)
 */
/**
 * @typedef {object} Diagnosis
 * @property {string} url
 * @property {TransportReport[]} transports ws, sse, longpoll, poll
 * @property {import('../options.js').Transport[]} recommended the
 *   transports that work, best first
 * @property {string[]} notes what the path did to HTTP
 */
/**
 * Diagnoses the path from this browser to a feedgate server, as `feedgate
 * doctor` does from a terminal and with the same verdicts (`ok`,
 * `blocked`, `buffered`, `cut`, `slow`; docs/operations.md), against the
 * server's `/probe/…`. Takes `idle` (or `hold`) seconds plus a few.
 * @param {string} url the server's base URL, as for FeedgateSocket
 * @param {DiagnoseOptions} [options]
 * @returns {Promise<Diagnosis>}
 */
export function diagnose(url: string, options?: DiagnoseOptions): Promise<Diagnosis>;
export type TransportReport = import("./verdicts.js").TransportReport;
export type DiagnoseOptions = {
    /**
     * messages on each stream probe (5)
     */
    count?: number | undefined;
    /**
     * ms between them (250)
     */
    intervalMs?: number | undefined;
    /**
     * s of silence after them (10)
     */
    idle?: number | undefined;
    /**
     * s a long poll is held (10)
     */
    hold?: number | undefined;
};
export type Diagnosis = {
    url: string;
    /**
     * ws, sse, longpoll, poll
     */
    transports: TransportReport[];
    /**
     * the
     * transports that work, best first
     */
    recommended: import("../options.js").Transport[];
    /**
     * what the path did to HTTP
     */
    notes: string[];
};
