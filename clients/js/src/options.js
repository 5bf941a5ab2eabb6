// @ts-check
// The options of a FeedgateSocket: their types, defaults and checks.

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
export const TRANSPORTS = /** @type {readonly Transport[]} */ (Object.freeze(['ws', 'sse', 'longpoll', 'poll']));

/** @type {Readonly<Settings>} */
const DEFAULTS = Object.freeze({
  transports: TRANSPORTS,
  probeTimeout: 4000,
  probeInterval: 20000,
  pollInterval: 1000,
  longpollTimeout: 25,
  requestTimeout: 10000,
  // Doubled per failed round, with full jitter (backoff.js).
  reconnectDelay: 500,
  maxReconnectDelay: 15000,
  restartSpread: 5000,
  after: undefined,
  token: undefined,
  publishToken: undefined,
  remember: true,
  telemetry: true,
  bufferCheck: true,
  // permessage-deflate needs no option: browsers offer it on every
  // WebSocket and the server accepts it.
  encoding: 'json',
});

/**
 * The defaults with `options` over them; unknown transports are dropped.
 * @param {FeedgateOptions} options
 * @returns {Settings}
 * @throws {SyntaxError} when no known transport is left
 */
export function settings(options) {
  const o = { ...DEFAULTS, ...options };
  o.transports = (o.transports || TRANSPORTS).filter((t) => TRANSPORTS.includes(t));
  if (o.transports.length === 0) throw new SyntaxError('FeedgateSocket: no known transport');
  return o;
}
