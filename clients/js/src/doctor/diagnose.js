// @ts-check
// `diagnose()`: the checks of `feedgate doctor`, run from the browser.

import { probeStream, timedFetch } from '../probe.js';
import { judgeLongPoll, judgePoll, judgeStream, recommended } from './verdicts.js';

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
export async function diagnose(url, options = {}) {
  const o = { count: 5, intervalMs: 250, idle: 10, hold: 10, ...options };
  const base = new URL(url, globalThis.location?.href).href.replace(/\/+$/, '');
  // The poll probe first: the round trip and the clocks, as the doctor.
  const pollUrl = `${base}/probe/poll?pad=2048&nonce=${Math.random().toString(36).slice(2)}`;
  const poll = await timedFetch(pollUrl);
  let hello = null;
  try {
    hello = poll.error ? null : JSON.parse(poll.text ?? '');
  } catch {
    poll.error = 'not a probe answer (is this feedgate?)';
  }
  const clock = hello
    ? {
        // server clock minus ours (ms), known within half the round trip
        offset: hello.sent_us / 1000 - (performance.timeOrigin + poll.t0 + poll.ms / 2),
        uncertainty: poll.ms / 2,
      }
    : null;
  const timing = /** @type {PerformanceResourceTiming | undefined} */ (performance.getEntriesByName?.(pollUrl)?.at(-1));
  const params = { count: o.count, interval_ms: o.intervalMs, idle: o.idle };
  const budget = o.count * o.intervalMs + o.idle * 1000 + 10000;
  const [ws, sse, longpoll] = await Promise.all([
    probeStream('ws', base, params, budget),
    probeStream('sse', base, params, budget),
    (async () => {
      const quick = await timedFetch(`${base}/probe/longpoll?hold=0`);
      if (quick.error) return { quick };
      return { quick, held: await timedFetch(`${base}/probe/longpoll?hold=${o.hold}`, (o.hold + 15) * 1000) };
    })(),
  ]);
  const transports = [judgeStream(ws, clock, o), judgeStream(sse, clock, o), judgeLongPoll(longpoll, o.hold), judgePoll(poll, timing)];
  const notes = [];
  if (hello) {
    notes.push(
      `HTTP: this browser spoke ${timing?.nextHopProtocol || '?'}; feedgate was spoken to in ${hello.http}` +
        (hello.proxy_headers.length ? `, through a proxy (${hello.proxy_headers.join(', ')})` : ' (no proxy headers seen)'),
    );
    if (hello.http === 'HTTP/1.0') notes.push('the proxy speaks HTTP/1.0 to feedgate: `proxy_http_version 1.1;`');
  }
  return { url: base, transports, recommended: recommended(transports), notes };
}
