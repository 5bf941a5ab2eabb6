/** @typedef {import('./cursor.js').Position} Position */
/**
 * A one-topic endpoint: `/topics/{topic}/{action}?after=…&epoch=…`.
 * @param {string} base the server's base URL, without a trailing `/`
 * @param {string} topic
 * @param {string} action `ws`, `sse`, `longpoll` or `poll`
 * @param {Position} c where the topic stands
 * @param {Record<string, string>} params more query parameters
 */
export function topicUrl(base: string, topic: string, action: string, c: Position, params: Record<string, string>): string;
/**
 * A multiplexed endpoint: `/{action}?topics=LIST`. The LIST goes in as is
 * (its characters need no escaping), so it reads as the docs write it.
 * @param {string} base
 * @param {string} action
 * @param {string} list
 * @param {Record<string, string>} params
 */
export function listUrl(base: string, action: string, list: string, params: Record<string, string>): string;
/**
 * `ws:`/`wss:` for an `http:`/`https:` URL.
 * @param {string} href
 */
export function wsUrl(href: string): string;
/**
 * Request headers that carry a subscriber or publish token.
 * @param {string | null | undefined} token
 * @returns {Record<string, string>}
 */
export function authHeaders(token: string | null | undefined): Record<string, string>;
export type Position = import("./cursor.js").Position;
