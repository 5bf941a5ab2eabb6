// FeedgateSocket falls back when the server refuses or stalls a transport,
// climbs back when it heals, and delivers every event exactly once, in
// order, throughout.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { FAST, assertExactlyOnce, launch, recordingPage, setFaults, startRecorder, waitOn } from './lib.mjs';


let browser;
before(async () => {
  await setFaults({});
  browser = await launch();
});
afterEach(() => setFaults({}));
after(async () => {
  await setFaults({});
  await browser?.close();
});

async function closeAndCollect(page) {
  await page.evaluate(() => window.sock.close());
  await page.waitForFunction(() => window.rec.closed !== null);
  return page.evaluate(() => window.rec);
}

test('refused transports: ws → sse → longpoll → poll, then back to ws, exactly once', { timeout: 90_000 }, async () => {
  await setFaults({ ws: 'refuse' });
  const { page, errors } = await recordingPage(browser.context, 'demo', FAST);

  await waitOn(page, 'sse');
  await setFaults({ ws: 'refuse', sse: 'refuse' });
  await waitOn(page, 'longpoll');
  await setFaults({ ws: 'refuse', sse: 'refuse', longpoll: 'refuse' });
  await waitOn(page, 'poll');
  await setFaults({});
  await waitOn(page, 'ws');

  const rec = await closeAndCollect(page);
  const path = rec.changes.map((c) => c.transport);
  assert.deepEqual(path.slice(0, 3), ['sse', 'longpoll', 'poll'], `transports: ${path}`);
  assert.equal(path.at(-1), 'ws', `transports: ${path}`);
  assert.equal(rec.changes[0].previous, null);
  assert.equal(rec.changes[0].failures[0]?.[0], 'ws', 'the first change says ws failed first');
  assert.equal(rec.changes.at(-1).reason, 'upgrade');
  assert.ok(rec.opened, 'open fired');
  assert.deepEqual(rec.closed, { code: 1000, wasClean: true });
  assert.equal(rec.errors, 0);
  assert.deepEqual(rec.gaps, []);
  assert.deepEqual(rec.resets, []);
  assert.ok(!rec.mismatch, 'data, event and seq agree');
  assertExactlyOnce(assert, rec.seqs);
  for (const t of ['sse', 'longpoll', 'poll', 'ws']) assert.ok(rec.by[t] >= 10, `${t} delivered ${rec.by[t]}`);
  // The browser reports the refused connections on the console itself;
  // the client adds no error of its own.
  assert.deepEqual(errors.filter((e) => e.startsWith('pageerror')), []);
  await page.close();
});

test('a stalled WebSocket (no ready) is detected and abandoned for SSE', { timeout: 60_000 }, async () => {
  // Healthy first, then the WebSocket stalls under it (as if a buffering
  // proxy appeared): the open socket is cut, the new one delivers nothing.
  const { page } = await recordingPage(browser.context, 'demo', { ...FAST, probeInterval: 60_000 });
  await waitOn(page, 'ws');
  await setFaults({ ws: 'stall' });
  await waitOn(page, 'sse');
  const change = await page.evaluate(() => window.rec.changes.at(-1));
  assert.equal(change.previous, 'ws');
  assert.equal(change.reason, 'fallback');
  assert.ok(
    change.failures.some(([t, why]) => t === 'ws' && /no answer within 1500 ms/.test(why)),
    `failures: ${JSON.stringify(change.failures)}`,
  );

  // A new socket while the stall lasts: it opens on SSE, after one probe.
  const fresh = await recordingPage(browser.context, 'demo', { ...FAST, probeInterval: 60_000 });
  await waitOn(fresh.page, 'sse', 5);
  const first = await fresh.page.evaluate(() => window.rec.changes[0]);
  assert.deepEqual(first.failures.map(([t]) => t), ['ws']);

  const rec = await closeAndCollect(page);
  assertExactlyOnce(assert, rec.seqs);
  assertExactlyOnce(assert, (await closeAndCollect(fresh.page)).seqs);
  await page.close();
  await fresh.page.close();
});

test('the last working transport is remembered for the session', { timeout: 60_000 }, async () => {
  await setFaults({ ws: 'refuse' });
  const { page } = await recordingPage(browser.context, 'demo', FAST);
  await waitOn(page, 'sse', 3);
  await setFaults({});

  // Same tab, so the same sessionStorage: after a reload it starts on SSE
  // and makes no WebSocket until it is time to probe upward.
  await page.reload();
  await page.evaluate(() => {
    window.wsMade = 0;
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...a) {
        super(...a);
        window.wsMade += 1;
      }
    };
  });
  await startRecorder(page, 'demo', { ...FAST, probeInterval: 60_000 });
  await waitOn(page, 'sse', 3);
  assert.equal(await page.evaluate(() => window.wsMade), 0);
  const rec = await closeAndCollect(page);
  assert.deepEqual(rec.changes[0].failures, []);
  await page.close();
});
