/**
 * One message of a probe stream, and when it arrived (performance.now()).
 * @typedef {object} Arrival
 * @property {number} at ms
 * @property {number} sent_us the server's send time, µs since the Unix epoch
 * @property {Record<string, any>} msg
 */
/**
 * A probe stream's run.
 * @typedef {object} StreamRun
 * @property {'ws' | 'sse'} transport
 * @property {number} started
 * @property {boolean} opened
 * @property {Arrival | null} hello
 * @property {Arrival[]} events
 * @property {Arrival | null} end
 * @property {string} [ended] how it ended: `end`, `deadline`, `close N`, `error`, `refused`
 * @property {number} [endedAt]
 * @property {number} [code] a WebSocket's close code
 */
/**
 * A timed fetch: the time it took and the status and body, or the error.
 * @typedef {object} Fetched
 * @property {number} ms
 * @property {number} t0 when it started (performance.now())
 * @property {number} [status]
 * @property {string} [text]
 * @property {string} [error]
 */
/**
 * Pairs of consecutive arrivals that came much closer together than the
 * server sent them.
 * @param {{ at: number, sent_us: number }[]} series
 */
export function bunched(series: {
    at: number;
    sent_us: number;
}[]): number;
/**
 * Runs one stream probe (`/probe/sse` or `/probe/ws`) for at most
 * `budget` ms. Resolves (never rejects) to what arrived and when.
 * @param {'ws' | 'sse'} transport
 * @param {string} base the server's base URL
 * @param {Record<string, number>} params `count`, `interval_ms`, `idle`
 * @param {number} budget ms
 * @returns {Promise<StreamRun>}
 */
export function probeStream(transport: "ws" | "sse", base: string, params: Record<string, number>, budget: number): Promise<StreamRun>;
/**
 * A fetch with a time limit.
 * @param {string} url
 * @param {number} [limit] ms
 * @returns {Promise<Fetched>}
 */
export function timedFetch(url: string, limit?: number): Promise<Fetched>;
/**
 * One message of a probe stream, and when it arrived (performance.now()).
 */
export type Arrival = {
    /**
     * ms
     */
    at: number;
    /**
     * the server's send time, µs since the Unix epoch
     */
    sent_us: number;
    msg: Record<string, any>;
};
/**
 * A probe stream's run.
 */
export type StreamRun = {
    transport: "ws" | "sse";
    started: number;
    opened: boolean;
    hello: Arrival | null;
    events: Arrival[];
    end: Arrival | null;
    /**
     * how it ended: `end`, `deadline`, `close N`, `error`, `refused`
     */
    ended?: string | undefined;
    endedAt?: number | undefined;
    /**
     * a WebSocket's close code
     */
    code?: number | undefined;
};
/**
 * A timed fetch: the time it took and the status and body, or the error.
 */
export type Fetched = {
    ms: number;
    /**
     * when it started (performance.now())
     */
    t0: number;
    status?: number | undefined;
    text?: string | undefined;
    error?: string | undefined;
};
