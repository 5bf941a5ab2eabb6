// What a switch is reported as, and the reporter's per-minute cap.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { REPORTS_PER_MINUTE, Reporter, switchCause } from '../src/telemetry.js';

const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
afterEach(() => {
  if (saved) Object.defineProperty(globalThis, 'navigator', saved);
  else delete globalThis.navigator;
});

/** Beacons sent, as [url, body]. */
function beacons() {
  const sent = [];
  Object.defineProperty(globalThis, 'navigator', {
    value: { sendBeacon: (url, body) => sent.push([url, body]) > 0 },
    configurable: true,
    writable: true,
  });
  return sent;
}

test('a fallback carries the last failure of the transport it left', () => {
  const failures = [
    { t: 'ws', why: 'closed', reason: 'refused', code: 1006 },
    { t: 'ws', why: 'no answer', reason: 'stalled' },
  ];
  assert.deepEqual(switchCause(null, 'sse', 'connect', failures), { from: 'ws', to: 'sse', reason: 'stalled' });
  assert.deepEqual(switchCause('ws', 'sse', 'fallback', failures.slice(0, 1)), { from: 'ws', to: 'sse', reason: 'refused', code: 1006 });
});

test('a climb is a climb; nothing failed is nothing to say', () => {
  assert.deepEqual(switchCause('sse', 'ws', 'upgrade', []), { from: 'sse', to: 'ws', reason: 'climb' });
  assert.equal(switchCause('ws', 'ws', 'upgrade', []), null);
  assert.equal(switchCause(null, 'ws', 'connect', []), null);
});

test('a reconnect on the same transport only after the path ended it, never after a restart', () => {
  const cut = { t: 'ws', why: 'closed', reason: 'cut', code: 1006, after_s: 60.2 };
  assert.deepEqual(switchCause('ws', 'ws', 'fallback', [cut]), { from: 'ws', to: 'ws', reason: 'cut', code: 1006, after_s: 60.2 });
  assert.equal(switchCause('ws', 'ws', 'fallback', [{ t: 'ws', why: 'x', reason: 'stalled' }]), null);
  assert.equal(switchCause('ws', 'sse', 'fallback', [{ t: 'ws', why: 'x', reason: 'restart', code: 1012 }]), null);
});

test(`at most ${REPORTS_PER_MINUTE} reports a minute, each the cause as JSON`, () => {
  const sent = beacons();
  const r = new Reporter('http://gw.test');
  const cause = { from: 'ws', to: 'sse', reason: 'cut', after_s: 5 };
  const results = Array.from({ length: 10 }, (_, i) => r.report(cause, 1000 + i));
  assert.deepEqual(results, [true, true, true, true, false, false, false, false, false, false]);
  assert.equal(sent.length, REPORTS_PER_MINUTE);
  assert.equal(sent[0][0], 'http://gw.test/telemetry/switch');
  assert.deepEqual(JSON.parse(sent[0][1]), cause);
  // A minute after the first ones, there is room again.
  assert.equal(r.report(cause, 61000 + 1), true);
  assert.equal(r.report(null, 61002), false, 'no cause, no report');
  assert.equal(sent.length, REPORTS_PER_MINUTE + 1);
});

test('without beacons, a keepalive fetch that never throws', async () => {
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  const fetched = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = (url, init) => {
    fetched.push([url, init]);
    return Promise.reject(new TypeError('offline'));
  };
  try {
    assert.equal(new Reporter('http://gw.test').report({ from: 'sse', to: 'ws', reason: 'climb' }), true);
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(fetched.length, 1);
    assert.equal(fetched[0][1].keepalive, true);
    assert.equal(fetched[0][1].method, 'POST');
  } finally {
    globalThis.fetch = realFetch;
  }
});
