// The doctor's verdict rules, on the cases of the fixture that
// src/doctor/verdict.rs runs too (cargo test --lib doctor::verdict).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RULES } from '../src/doctor/rules.js';
import fixture from '../src/doctor/verdicts.json' with { type: 'json' };
import { judgeLongPoll, judgePoll, judgeStream, recommended } from '../src/doctor/verdicts.js';
import { bunched } from '../src/probe.js';

/** Local performance.now() 0 is this Unix time (ms); the server's clock agrees. */
const ORIGIN = 1e9;
const plan = fixture.plan;

/** A browser stream run from a stream case (times in ms since ORIGIN). */
function streamRun(c) {
  const sentUs = (s) => (ORIGIN + s * 1000) * 1000;
  const arrival = (atS, sentS, type) => ({ at: atS * 1000, sent_us: sentUs(sentS), msg: { type } });
  const hello =
    c.hello === false
      ? null
      : { ...arrival(Math.min(c.arrivals_s[0] ?? 0, 0.01), 0, 'hello'), msg: { type: 'hello', sse_heartbeat_s: plan.sse_heartbeat_s, ws_ping_s: plan.ws_ping_s } };
  return {
    transport: c.transport,
    started: 0,
    opened: c.hello !== false,
    hello,
    events: c.arrivals_s.map((at, k) => arrival(at, plan.interval_s * (k + 1), 'probe')),
    end: c.end_at_s === null ? null : arrival(c.end_at_s, 10, 'end'),
    ended: c.ended,
    endedAt: c.ended_at_s * 1000,
  };
}

function judge(c) {
  if (c.kind === 'stream') return judgeStream(streamRun(c), { offset: 0, uncertainty: 1 }, { count: plan.count, idle: plan.idle_s }, ORIGIN);
  if (c.kind === 'longpoll') {
    const quick = c.quick_error ? { ms: 3, t0: 0, error: c.quick_error } : { ms: c.rtt_ms, t0: 0, status: 200 };
    const held = c.quick_error ? undefined : { ms: c.answered_after_s * 1000, t0: 0, status: 200, error: c.error };
    return judgeLongPoll({ quick, held }, c.hold_s);
  }
  return judgePoll({ ms: c.rtt_ms, t0: 0, status: c.error ? undefined : 200, error: c.error });
}

test('the fixture has rules and cases for every verdict and kind', () => {
  assert.deepEqual(Object.keys(RULES).sort(), ['buffered_share', 'bunched_share', 'hold_slack_s', 'keepalive_slack_s', 'late_s', 'slow_rtt_ms', 'slow_s']);
  const seen = new Set(fixture.cases.map((c) => `${c.kind}:${c.verdict}`));
  for (const v of ['ok', 'blocked', 'buffered', 'cut', 'slow']) assert.ok(seen.has(`stream:${v}`), `stream:${v}`);
  for (const v of ['ok', 'blocked', 'cut', 'slow']) assert.ok(seen.has(`longpoll:${v}`), `longpoll:${v}`);
  for (const v of ['ok', 'blocked', 'slow']) assert.ok(seen.has(`poll:${v}`), `poll:${v}`);
});

for (const c of fixture.cases) {
  test(`${c.kind}: ${c.name}`, () => {
    const r = judge(c);
    assert.equal(r.verdict, c.verdict, r.detail);
    assert.ok(r.detail.length > 0);
  });
}

test('bunched: pairs that arrived much closer than they were sent', () => {
  const at = (ms, sentMs) => ({ at: ms, sent_us: sentMs * 1000 });
  assert.equal(bunched([at(0, 0), at(250, 250), at(500, 500)]), 0);
  assert.equal(bunched([at(1000, 0), at(1001, 250), at(1002, 500), at(1003, 750)]), 3);
  assert.equal(bunched([at(0, 0), at(74, 250)]), 1, 'under 30 % of the send gap');
  assert.equal(bunched([at(0, 0), at(76, 250)]), 0);
  assert.equal(bunched([at(0, 0), at(0, 0)]), 0, 'sent together is not bunched');
});

test('recommended: what works, best first; the slow ones only when nothing is ok', () => {
  const r = (transport, verdict) => ({ transport, verdict, detail: '', facts: {} });
  assert.deepEqual(recommended([r('ws', 'blocked'), r('sse', 'ok'), r('longpoll', 'cut'), r('poll', 'ok')]), ['sse', 'poll']);
  assert.deepEqual(recommended([r('ws', 'blocked'), r('sse', 'slow'), r('poll', 'slow')]), ['sse', 'poll']);
  assert.deepEqual(recommended([r('ws', 'blocked')]), []);
});
