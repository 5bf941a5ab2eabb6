// @ts-check
// The doctor's verdicts on what the browser measured: the rules of
// src/doctor/verdict.rs, on runs of probe.js.

import { bunched } from '../probe.js';
import { RULES } from './rules.js';

/** @typedef {import('../probe.js').StreamRun} StreamRun */
/** @typedef {import('../probe.js').Fetched} Fetched */

/**
 * `ok`: delivers promptly and survives idle times feedgate's keep-alive
 * covers; `blocked`: refused, or nothing came through; `buffered`: late
 * and together (a proxy holds them); `cut`: closed by the path before
 * feedgate would; `slow`: late, without bunching.
 * @typedef {'ok' | 'blocked' | 'buffered' | 'cut' | 'slow'} Verdict
 */

/**
 * @typedef {object} TransportReport
 * @property {import('../options.js').Transport} transport
 * @property {Verdict} verdict
 * @property {string} detail what was seen, in a sentence
 * @property {Record<string, unknown>} facts the measured facts behind it
 */

/**
 * The server's clock minus ours (ms), known within `uncertainty` (ms).
 * @typedef {{ offset: number, uncertainty: number }} Clock
 */

/** @param {number} x */
const round1 = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);

/**
 * Judges a stream probe (`ws` or `sse`).
 * @param {StreamRun} run
 * @param {Clock | null} clock from the poll probe, when it answered
 * @param {{ count: number, idle: number }} o what the probe was asked for
 * @param {number} [timeOrigin] Unix ms of performance.now()'s 0
 * @returns {TransportReport}
 */
export function judgeStream(run, clock, o, timeOrigin = performance.timeOrigin) {
  const t = run.transport;
  /** @param {number} at */
  const toUnix = (at) => timeOrigin + at;
  let offset = 0;
  let unc = Infinity;
  if (clock) [offset, unc] = [clock.offset, clock.uncertainty / 1000];
  else if (run.hello) [offset, unc] = [run.hello.sent_us / 1000 - toUnix(run.hello.at), 0];
  const delays = run.events.map((a) => (toUnix(a.at) + offset - a.sent_us / 1000) / 1000);
  const maxDelay = delays.length ? Math.max(...delays) : NaN;
  const pairs = Math.max(0, run.events.length - 1);
  const b = bunched(run.events);
  const last = run.end ?? run.events.at(-1) ?? run.hello;
  const silence = ((run.endedAt ?? run.started) - (last ? last.at : run.started)) / 1000;
  /** @type {number | undefined} */
  const keep = run.hello?.msg[t === 'ws' ? 'ws_ping_s' : 'sse_heartbeat_s'];
  const late = maxDelay > RULES.late_s + unc;
  /** @type {TransportReport} */
  const r = {
    transport: t,
    verdict: 'ok',
    detail: '',
    facts: {
      events_received: run.events.length,
      max_delay_ms: round1(maxDelay * 1000),
      bunched_pairs: b,
      pairs,
      ended: run.ended,
      silence_before_end_s: round1(silence),
      keepalive_s: keep ?? null,
    },
  };
  if (!run.hello && run.events.length === 0) {
    r.verdict = 'blocked';
    r.detail = run.opened
      ? `opened but nothing arrived (${run.ended})`
      : t === 'ws'
        ? `upgrade refused (close ${run.code ?? '?'})`
        : 'refused (an error status, or no connection)';
  } else if ((late && pairs > 0 && b >= RULES.buffered_share * pairs) || (late && run.events.length < 2)) {
    r.verdict = 'buffered';
    r.detail = `events held back: up to ${maxDelay.toFixed(1)} s late, ${b} of ${pairs} arrived together`;
  } else if (maxDelay > RULES.slow_s + unc) {
    r.verdict = 'slow';
    r.detail = `events arrive, up to ${maxDelay.toFixed(1)} s late (not bunched)`;
  } else if (!run.end && run.events.length < o.count) {
    r.verdict = 'cut';
    r.detail = `closed while delivering (${run.events.length} of ${o.count} events; ${run.ended})`;
  } else if (!run.end && run.ended !== 'deadline' && silence <= (keep ?? Infinity) + RULES.keepalive_slack_s) {
    r.verdict = 'cut';
    r.detail = `idle stream cut after ${silence.toFixed(1)} s of silence (${run.ended}); feedgate's ${t === 'ws' ? 'ping' : 'heartbeat'} every ${keep ?? '?'} s would come too late`;
  } else {
    r.detail = `${run.events.length} events prompt (max delay ${Math.max(0, Math.round(maxDelay * 1000))} ms); ${
      run.end ? `no idle cut within ${o.idle} s` : `idle connections cut after ${silence.toFixed(0)} s, after feedgate's keep-alive`
    }`;
  }
  return r;
}

/**
 * Judges the long-poll probe: a quick one (`hold=0`), then one held `hold`
 * seconds.
 * @param {{ quick: Fetched, held?: Fetched }} runs
 * @param {number} hold s
 * @returns {TransportReport}
 */
export function judgeLongPoll({ quick, held }, hold) {
  /** @type {TransportReport} */
  const r = { transport: 'longpoll', verdict: 'ok', detail: '', facts: { rtt_ms: round1(quick.ms), hold_s: hold } };
  if (quick.error || !held) {
    r.verdict = 'blocked';
    r.detail = `refused: ${quick.error}`;
    return r;
  }
  const after = held.ms / 1000;
  r.facts.answered_after_s = round1(after);
  if (held.error || after + RULES.hold_slack_s < hold) {
    r.verdict = 'cut';
    r.detail = `a ${hold} s hold was cut after ${after.toFixed(1)} s (${held.error ?? 'answered early'})`;
  } else if (quick.ms > RULES.slow_rtt_ms) {
    r.verdict = 'slow';
    r.detail = `held ${hold} s, but a round trip takes ${Math.round(quick.ms)} ms`;
  } else {
    r.detail = `held ${hold} s and answered; round trip ${Math.round(quick.ms)} ms`;
  }
  return r;
}

/**
 * Judges the short-poll probe. Resource timing sees the body as it came
 * over the wire (same origin, or Timing-Allow-Origin): fewer bytes than
 * decoded is compression on the path.
 * @param {Fetched} poll
 * @param {PerformanceResourceTiming} [timing]
 * @returns {TransportReport}
 */
export function judgePoll(poll, timing) {
  /** @type {TransportReport} */
  const r = { transport: 'poll', verdict: 'ok', detail: '', facts: { rtt_ms: round1(poll.ms), status: poll.status ?? null } };
  if (poll.error) {
    r.verdict = 'blocked';
    r.detail = `refused: ${poll.error}`;
    return r;
  }
  if (poll.ms > RULES.slow_rtt_ms) r.verdict = 'slow';
  r.detail = `answered in ${Math.round(poll.ms)} ms`;
  if (timing && timing.encodedBodySize > 0 && timing.encodedBodySize < timing.decodedBodySize) {
    r.detail += `; compressed on the path (${timing.encodedBodySize} bytes for ${timing.decodedBodySize})`;
    r.facts.compressed = true;
  }
  return r;
}

/**
 * The transports that work, best first; the slow ones only when none is ok.
 * @param {TransportReport[]} reports
 */
export function recommended(reports) {
  /** @param {Verdict} v */
  const pick = (v) => reports.filter((r) => r.verdict === v).map((r) => r.transport);
  return pick('ok').length ? pick('ok') : pick('slow');
}
