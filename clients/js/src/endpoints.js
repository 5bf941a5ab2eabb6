// @ts-check
// The URLs of the server's subscriber endpoints (docs/protocol.md).

/** @typedef {import('./cursor.js').Position} Position */

/**
 * A one-topic endpoint: `/topics/{topic}/{action}?after=…&epoch=…`.
 * @param {string} base the server's base URL, without a trailing `/`
 * @param {string} topic
 * @param {string} action `ws`, `sse`, `longpoll` or `poll`
 * @param {Position} c where the topic stands
 * @param {Record<string, string>} params more query parameters
 */
export function topicUrl(base, topic, action, c, params) {
  const u = new URL(`${base}/topics/${encodeURIComponent(topic)}/${action}`);
  if (c.seq !== null) u.searchParams.set('after', String(c.seq));
  if (c.epoch) u.searchParams.set('epoch', c.epoch);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}

/**
 * A multiplexed endpoint: `/{action}?topics=LIST`. The LIST goes in as is
 * (its characters need no escaping), so it reads as the docs write it.
 * @param {string} base
 * @param {string} action
 * @param {string} list
 * @param {Record<string, string>} params
 */
export function listUrl(base, action, list, params) {
  const u = new URL(`${base}/${action}`);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const q = u.search.slice(1);
  u.search = list ? `topics=${list}${q ? `&${q}` : ''}` : q;
  return u.href;
}

/**
 * `ws:`/`wss:` for an `http:`/`https:` URL.
 * @param {string} href
 */
export function wsUrl(href) {
  const u = new URL(href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

/**
 * Request headers that carry a subscriber or publish token.
 * @param {string | null | undefined} token
 * @returns {Record<string, string>}
 */
export function authHeaders(token) {
  return token ? { authorization: `Bearer ${token}` } : {};
}
