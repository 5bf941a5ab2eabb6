/**
 * The defaults with `options` over them; unknown transports are dropped.
 * @param {FeedgateOptions} options
 * @returns {Settings}
 * @throws {SyntaxError} when no known transport is left
 */
export function settings(options: FeedgateOptions): Settings;
/** @typedef {'ws' | 'sse' | 'longpoll' | 'poll'} Transport */
/**
 * A cursor: `0` (everything retained), `N` or `'EPOCH:N'` (after that
 * event), as in the server's `after=`.
 * @typedef {number | string} CursorInput
 */
/**
 * A token, or a function returning one (or a promise of one), called for
 * every new connection so that an expired token is replaced on reconnect.
 * @typedef {string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>)} TokenSource
 */
/**
 * @typedef {object} FeedgateOptions
 * @property {readonly Transport[]} [transports] which transports to use,
 *   best first (default: all four)
 * @property {number} [probeTimeout] ms a new connection has to prove it
 *   delivers (default 4000)
 * @property {number} [probeInterval] ms between tries to climb back to a
 *   better transport; 0: never (default 20000)
 * @property {number} [pollInterval] short-poll interval, ms (default 1000)
 * @property {number} [longpollTimeout] long-poll hold asked of the server,
 *   seconds (default 25)
 * @property {number} [requestTimeout] ms after which an ordinary poll
 *   without an answer has failed (default 10000)
 * @property {number} [reconnectDelay] first reconnect backoff, ms (500)
 * @property {number} [maxReconnectDelay] backoff cap, ms (15000)
 * @property {number} [restartSpread] after a server restart without a
 *   delay of its own, reconnect after a random delay up to this, ms (5000)
 * @property {CursorInput | Record<string, CursorInput> | null} [after]
 *   where to start (omitted: from now); with several topics, the start of
 *   every item without `@CURSOR`, or `{topic: cursor}`
 * @property {TokenSource} [token] the subscriber JWT: `Authorization:
 *   Bearer` on polls, `?token=` on SSE and WebSocket
 * @property {TokenSource} [publishToken] the token `send()` presents
 *   (default: `token`)
 * @property {boolean} [remember] keep the last transport that worked in
 *   sessionStorage (default true)
 * @property {boolean} [telemetry] tell the server why it switched
 *   transports (`POST /telemetry/switch`; default true)
 * @property {boolean} [bufferCheck] check once that the path does not
 *   buffer SSE before trusting it (default true)
 * @property {'json' | 'lean'} [encoding] `json`: events are the v1 event
 *   object; `lean`: the published data alone (default `json`)
 */
/**
 * The options in force: every one set.
 * @typedef {Required<Omit<FeedgateOptions, 'after' | 'token' | 'publishToken'>> &
 *   Pick<FeedgateOptions, 'after' | 'token' | 'publishToken'>} Settings
 */
/** The transports, best first. */
export const TRANSPORTS: readonly Transport[];
export type Transport = "ws" | "sse" | "longpoll" | "poll";
/**
 * A cursor: `0` (everything retained), `N` or `'EPOCH:N'` (after that
 * event), as in the server's `after=`.
 */
export type CursorInput = number | string;
/**
 * A token, or a function returning one (or a promise of one), called for
 * every new connection so that an expired token is replaced on reconnect.
 */
export type TokenSource = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);
export type FeedgateOptions = {
    /**
     * which transports to use,
     * best first (default: all four)
     */
    transports?: readonly Transport[] | undefined;
    /**
     * ms a new connection has to prove it
     * delivers (default 4000)
     */
    probeTimeout?: number | undefined;
    /**
     * ms between tries to climb back to a
     * better transport; 0: never (default 20000)
     */
    probeInterval?: number | undefined;
    /**
     * short-poll interval, ms (default 1000)
     */
    pollInterval?: number | undefined;
    /**
     * long-poll hold asked of the server,
     * seconds (default 25)
     */
    longpollTimeout?: number | undefined;
    /**
     * ms after which an ordinary poll
     * without an answer has failed (default 10000)
     */
    requestTimeout?: number | undefined;
    /**
     * first reconnect backoff, ms (500)
     */
    reconnectDelay?: number | undefined;
    /**
     * backoff cap, ms (15000)
     */
    maxReconnectDelay?: number | undefined;
    /**
     * after a server restart without a
     * delay of its own, reconnect after a random delay up to this, ms (5000)
     */
    restartSpread?: number | undefined;
    /**
     * where to start (omitted: from now); with several topics, the start of
     * every item without `@CURSOR`, or `{topic: cursor}`
     */
    after?: CursorInput | Record<string, CursorInput> | null | undefined;
    /**
     * the subscriber JWT: `Authorization:
     * Bearer` on polls, `?token=` on SSE and WebSocket
     */
    token?: TokenSource;
    /**
     * the token `send()` presents
     * (default: `token`)
     */
    publishToken?: TokenSource;
    /**
     * keep the last transport that worked in
     * sessionStorage (default true)
     */
    remember?: boolean | undefined;
    /**
     * tell the server why it switched
     * transports (`POST /telemetry/switch`; default true)
     */
    telemetry?: boolean | undefined;
    /**
     * check once that the path does not
     * buffer SSE before trusting it (default true)
     */
    bufferCheck?: boolean | undefined;
    /**
     * `json`: events are the v1 event
     * object; `lean`: the published data alone (default `json`)
     */
    encoding?: "json" | "lean" | undefined;
};
/**
 * The options in force: every one set.
 */
export type Settings = Required<Omit<FeedgateOptions, "after" | "token" | "publishToken">> & Pick<FeedgateOptions, "after" | "token" | "publishToken">;
