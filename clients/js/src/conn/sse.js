// @ts-check
// Server-Sent Events: `/topics/{t}/sse` for one topic, `/sse?topics=LIST`
// for several; a topic change is a new stream from every topic's cursor.
// SSE is the transport proxies buffer most, so it is also checked once
// against the server's probe (`/probe/sse`).

import { parseCursor } from '../cursor.js';
import { splitTopic } from '../lean.js';
import { bunched, probeStream } from '../probe.js';
import { Connection } from './connection.js';

/** The buffer check: CHECK_COUNT probe messages sent CHECK_INTERVAL_MS
 *  apart after a hello. */
const CHECK_COUNT = 3;
const CHECK_INTERVAL_MS = 250;

/**
 * The seq in an event's `id:` on a one-topic stream: `SEQ` (lean) or
 * `EPOCH:SEQ` (json); null when it is neither (a LIST, or nothing).
 * @param {string} id
 */
export function idSeq(id) {
  try {
    return parseCursor(id).seq;
  } catch {
    return null;
  }
}

export class SseConn extends Connection {
  /** @type {EventSource | null} */
  #es = null;
  /** The buffer check: not run (undefined), 'running' or 'done'.
   *  @type {'running' | 'done' | undefined} */
  #check = undefined;
  /** The server placed us; proved as soon as the check passes. */
  #ready = false;

  start() {
    const h = this.host;
    if (this.multi && h.ledger.size === 0) {
      // `topics=` must name one: nothing to open until a subscribe.
      h.idle(this);
      return;
    }
    if (this.#check === undefined && h.wantsBufferCheck()) this.#checkBuffering();
    const es = (this.#es = new EventSource(this.url('sse')));
    let opened = false;
    es.onopen = () => (opened = true);
    /**
     * @param {Event} e
     * @param {(m: any) => void} f
     */
    const json = (e, f) => {
      // A stream replaced by a topic change may still have queued events.
      if (this.closed || this.#es !== es) return;
      try {
        f(JSON.parse(/** @type {MessageEvent} */ (e).data));
      } catch {
        this.as('error').fail('unparsable event');
      }
    };
    // One topic: `ready`; several: `subscribed`, and signals name their topic.
    /** @param {{topic: string}} m */
    const topic = (m) => (this.multi ? m.topic : /** @type {string} */ (this.topic));
    /** @param {{topic: string, next?: number}} m */
    const at = (m) => this.leanSeqs.at(topic(m), m.next);
    es.addEventListener(this.multi ? 'subscribed' : 'ready', (e) => json(e, (m) => (at(m), h.ready(this, topic(m), m.epoch, m.next))));
    es.addEventListener('gap', (e) => json(e, (m) => (at(m), h.gap(this, topic(m), m.missed, m.resume_seq))));
    es.addEventListener('reset', (e) => json(e, (m) => (at(m), h.reset(this, topic(m), m.reason, m.epoch))));
    es.addEventListener('message', (e) => {
      if (this.closed || this.#es !== es) return;
      if (!this.lean) return json(e, (m) => h.event(this, e.data, m));
      const t = /** @type {string} */ (this.topic);
      if (!this.multi) {
        // Lean, one topic: `id:SEQ` and the data.
        const seq = idSeq(e.lastEventId);
        if (seq === null) this.as('error').fail(`bad event id ${e.lastEventId}`);
        else h.event(this, e.data, { topic: t, seq });
        return;
      }
      // Lean, several: `TOPIC DATA`.
      const split = splitTopic(e.data);
      if (!split) this.as('error').fail('unparsable event');
      else h.event(this, split[1], { topic: split[0], seq: this.leanSeqs.next(split[0]) });
    });
    // The server drains: the stream ends next, and it says when to return.
    /** @type {number | undefined} */
    let restart;
    es.addEventListener('restart', (e) => json(e, (m) => (restart = Number(m.retry) || 0)));
    // EventSource would reconnect by itself; the socket decides instead
    // (possibly on another transport), from its own cursors.
    // An error before the response opened: an error status or no
    // connection (the browser hides which); after: the stream was cut.
    es.onerror = () => {
      if (this.#es !== es) return;
      if (restart !== undefined) this.as('restart').fail('server restarting', undefined, undefined, restart);
      else if (!opened) this.as('refused').fail('event stream refused');
      else this.as('cut').fail('event stream failed or ended');
    };
  }

  /** Proved only once the buffer check (if any) has passed too. */
  prove() {
    this.#ready = true;
    if (this.#check !== 'running') this.onProved();
  }

  /**
   * The buffer check: when every probe message arrived with the one
   * before it (a proxy held them and let go at the end of the probe's
   * response), the path buffers SSE: fail as `buffered` rather than wait
   * for probeTimeout. A probe that cannot run (an older server, the probe
   * rate limit) proves nothing either way.
   */
  #checkBuffering() {
    this.#check = 'running';
    const h = this.host;
    const params = { count: CHECK_COUNT, interval_ms: CHECK_INTERVAL_MS };
    probeStream('sse', h.url, params, Math.max(0, h.options.probeTimeout - 200)).then((run) => {
      this.#check = 'done';
      if (this.closed) return;
      const series = run.hello ? [run.hello, ...run.events] : [];
      if (series.length === CHECK_COUNT + 1 && bunched(series) === CHECK_COUNT) {
        const spread = Math.round(series[CHECK_COUNT].at - series[0].at);
        this.as('buffered').fail(`buffered: ${CHECK_COUNT + 1} probe messages sent ${CHECK_INTERVAL_MS} ms apart arrived within ${spread} ms`);
        return;
      }
      if (run.end) h.bufferChecked();
      if (this.#ready) this.onProved();
    });
  }

  /** A new LIST: a new stream from every topic's cursor. */
  update() {
    this.restart();
  }

  teardown() {
    this.#es?.close();
    this.#es = null;
  }
}
