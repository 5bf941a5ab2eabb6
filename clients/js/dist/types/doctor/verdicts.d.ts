/**
 * Judges a stream probe (`ws` or `sse`).
 * @param {StreamRun} run
 * @param {Clock | null} clock from the poll probe, when it answered
 * @param {{ count: number, idle: number }} o what the probe was asked for
 * @param {number} [timeOrigin] Unix ms of performance.now()'s 0
 * @returns {TransportReport}
 */
export function judgeStream(run: StreamRun, clock: Clock | null, o: {
    count: number;
    idle: number;
}, timeOrigin?: number): TransportReport;
/**
 * Judges the long-poll probe: a quick one (`hold=0`), then one held `hold`
 * seconds.
 * @param {{ quick: Fetched, held?: Fetched }} runs
 * @param {number} hold s
 * @returns {TransportReport}
 */
export function judgeLongPoll({ quick, held }: {
    quick: Fetched;
    held?: Fetched;
}, hold: number): TransportReport;
/**
 * Judges the short-poll probe. Resource timing sees the body as it came
 * over the wire (same origin, or Timing-Allow-Origin): fewer bytes than
 * decoded is compression on the path.
 * @param {Fetched} poll
 * @param {PerformanceResourceTiming} [timing]
 * @returns {TransportReport}
 */
export function judgePoll(poll: Fetched, timing?: PerformanceResourceTiming): TransportReport;
/**
 * The transports that work, best first; the slow ones only when none is ok.
 * @param {TransportReport[]} reports
 */
export function recommended(reports: TransportReport[]): import("../options.js").Transport[];
export type StreamRun = import("../probe.js").StreamRun;
export type Fetched = import("../probe.js").Fetched;
/**
 * `ok`: delivers promptly and survives idle times feedgate's keep-alive
 * covers; `blocked`: refused, or nothing came through; `buffered`: late
 * and together (a proxy holds them); `cut`: closed by the path before
 * feedgate would; `slow`: late, without bunching.
 */
export type Verdict = "ok" | "blocked" | "buffered" | "cut" | "slow";
export type TransportReport = {
    transport: import("../options.js").Transport;
    verdict: Verdict;
    /**
     * what was seen, in a sentence
     */
    detail: string;
    /**
     * the measured facts behind it
     */
    facts: Record<string, unknown>;
};
/**
 * The server's clock minus ours (ms), known within `uncertainty` (ms).
 */
export type Clock = {
    offset: number;
    uncertainty: number;
};
