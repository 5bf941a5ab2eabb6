// @ts-check
// The server's probe endpoints (`/probe/{ws,sse,longpoll,poll}`,
// docs/protocol.md) as the browser sees them: what arrived, and when.

import { RULES } from './doctor/rules.js';
import { wsUrl } from './endpoints.js';

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
export function bunched(series) {
  let n = 0;
  for (let i = 1; i < series.length; i += 1) {
    const sent = (series[i].sent_us - series[i - 1].sent_us) / 1000;
    if (sent > 0 && series[i].at - series[i - 1].at < RULES.bunched_share * sent) n += 1;
  }
  return n;
}

/**
 * Runs one stream probe (`/probe/sse` or `/probe/ws`) for at most
 * `budget` ms. Resolves (never rejects) to what arrived and when.
 * @param {'ws' | 'sse'} transport
 * @param {string} base the server's base URL
 * @param {Record<string, number>} params `count`, `interval_ms`, `idle`
 * @param {number} budget ms
 * @returns {Promise<StreamRun>}
 */
export function probeStream(transport, base, params, budget) {
  return new Promise((resolve) => {
    const u = new URL(`${base}/probe/${transport}`);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, String(v));
    /** @type {StreamRun} */
    const run = { transport, started: performance.now(), opened: false, hello: null, events: [], end: null };
    /** @type {WebSocket | EventSource | null} */
    let src = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    /** @param {string} how */
    const finish = (how) => {
      if (run.ended) return;
      run.ended = how;
      run.endedAt = performance.now();
      clearTimeout(timer);
      if (src instanceof WebSocket) {
        const ws = src;
        if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
        else ws.close(1000);
      } else src?.close();
      resolve(run);
    };
    /** @param {unknown} text */
    const take = (text) => {
      let msg;
      try {
        msg = JSON.parse(String(text));
      } catch {
        return;
      }
      const a = { at: performance.now(), sent_us: msg.sent_us, msg };
      if (msg.type === 'hello') run.hello = a;
      else if (msg.type === 'probe') run.events.push(a);
      else if (msg.type === 'end') {
        run.end = a;
        finish('end');
      }
    };
    timer = setTimeout(() => finish('deadline'), budget);
    try {
      if (transport === 'ws') {
        const ws = (src = new WebSocket(wsUrl(u.href)));
        ws.onopen = () => (run.opened = true);
        ws.onmessage = (m) => typeof m.data === 'string' && take(m.data);
        ws.onclose = (e) => {
          run.code = e.code;
          finish(`close ${e.code}`);
        };
      } else {
        const es = (src = new EventSource(u.href));
        es.onopen = () => (run.opened = true);
        for (const type of ['hello', 'probe', 'end']) es.addEventListener(type, (e) => take(/** @type {MessageEvent} */ (e).data));
        // EventSource would reconnect by itself: one try only.
        es.onerror = () => finish(run.opened ? 'error' : 'refused');
      }
    } catch (e) {
      finish(`error: ${/** @type {Error} */ (e).message}`);
    }
  });
}

/**
 * A fetch with a time limit.
 * @param {string} url
 * @param {number} [limit] ms
 * @returns {Promise<Fetched>}
 */
export async function timedFetch(url, limit = 10000) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), limit);
  const t0 = performance.now();
  try {
    const res = await fetch(url, { cache: 'no-store', signal: abort.signal });
    const text = await res.text();
    /** @type {Fetched} */
    const out = { ms: performance.now() - t0, status: res.status, text, t0 };
    if (!res.ok) out.error = `answered ${res.status}`;
    return out;
  } catch (e) {
    const err = /** @type {Error} */ (e);
    return { ms: performance.now() - t0, error: err.name === 'AbortError' ? `no answer within ${limit} ms` : err.message, t0 };
  } finally {
    clearTimeout(timer);
  }
}
