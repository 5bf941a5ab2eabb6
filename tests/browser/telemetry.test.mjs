// FeedgateSocket tells the server why it switched transports (POST
// /telemetry/switch, counted in feedgate_client_transport_switches_total),
// at most a few times a minute and not at all with `telemetry: false`; it
// finds a buffering SSE path with the probe; diagnose() judges the path
// from the browser. Faults are injected server-side (/demo/faults); the
// checks through real nginx are in scripts/browser-proxy-test.sh.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { BASE, FAST as SHORT, assertExactlyOnce, launch, metricSum, metricsText, recordingPage, setFaults, startRecorder, waitOn } from './lib.mjs';

const FAST = { ...SHORT, remember: false };
const SWITCHES = 'feedgate_client_transport_switches_total';

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

/** Waits until the switch counter with `labels` has grown past `before`. */
async function counted(labels, before, timeout = 10_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const now = metricSum(await metricsText(), SWITCHES, labels);
    if (now > before) return now - before;
    if (Date.now() > end) assert.fail(`${SWITCHES}${JSON.stringify(labels)} stayed at ${before}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('a refused WebSocket is reported as refused, the climb back as climb', { timeout: 60_000 }, async () => {
  const refused = { from: 'ws', to: 'sse', reason: 'refused' };
  const climb = { from: 'sse', to: 'ws', reason: 'climb' };
  const m = await metricsText();
  const [r0, c0] = [metricSum(m, SWITCHES, refused), metricSum(m, SWITCHES, climb)];
  await setFaults({ ws: 'refuse' });
  const { page } = await recordingPage(browser.context, 'demo', FAST);
  await waitOn(page, 'sse', 3);
  const change = await page.evaluate(() => window.rec.changes[0]);
  assert.deepEqual(change.failures.map(([t, , reason]) => [t, reason]), [['ws', 'refused']]);
  assert.equal(await counted(refused, r0), 1);
  await setFaults({});
  await waitOn(page, 'ws', 3);
  assert.equal(await counted(climb, c0), 1);
  await page.evaluate(() => window.sock.close());
  assertExactlyOnce(assert, await page.evaluate(() => window.rec.seqs));
  await page.close();
});

test('a stalled WebSocket is reported as stalled; the cut before it as closed 1013', { timeout: 60_000 }, async () => {
  const stalled = { from: 'ws', to: 'sse', reason: 'stalled' };
  const s0 = metricSum(await metricsText(), SWITCHES, stalled);
  const { page } = await recordingPage(browser.context, 'demo', { ...FAST, probeInterval: 60_000 });
  await waitOn(page, 'ws', 3);
  // The fault closes the open WebSocket (1013) and stalls the next one.
  await setFaults({ ws: 'stall' });
  await waitOn(page, 'sse', 3);
  const change = await page.evaluate(() => window.rec.changes.at(-1));
  assert.deepEqual(change.failures.map(([t, , reason]) => [t, reason]), [['ws', 'closed'], ['ws', 'stalled']]);
  assert.deepEqual(change.cause, { from: 'ws', to: 'sse', reason: 'stalled' });
  assert.equal(await counted(stalled, s0), 1);
  await page.close();
});

test('telemetry: false sends nothing; otherwise the switch is reported once', { timeout: 30_000 }, async () => {
  // The same switch twice (a refused WebSocket → SSE), beacons caught in
  // the page. The cap of 4 reports a minute is unit-tested
  // (clients/js/test/telemetry.test.js).
  await setFaults({ ws: 'refuse' });
  for (const telemetry of [false, true]) {
    const page = await browser.context.newPage();
    await page.goto(`${BASE}/healthz`);
    await page.evaluate(() => {
      window.beacons = [];
      navigator.sendBeacon = (url, body) => window.beacons.push([url, body]) > 0;
    });
    await startRecorder(page, 'demo', { ...FAST, telemetry, probeInterval: 60_000 });
    await waitOn(page, 'sse', 2);
    const sent = await page.evaluate(() => window.beacons);
    await page.evaluate(() => window.sock.close());
    await page.close();
    if (!telemetry) {
      assert.deepEqual(sent, []);
      continue;
    }
    assert.equal(sent.length, 1, JSON.stringify(sent));
    assert.match(sent[0][0], /\/telemetry\/switch$/);
    const { from, to, reason } = JSON.parse(sent[0][1]);
    assert.deepEqual({ from, to, reason }, { from: 'ws', to: 'sse', reason: 'refused' });
  }
});

test('diagnose() from the browser: every transport ok on a direct path', { timeout: 30_000 }, async () => {
  const { page } = await recordingPage(browser.context, 'demo', { transports: ['poll'] });
  const report = await page.evaluate(async () => {
    const { diagnose } = await import('/feedgate.js');
    return diagnose(location.origin, { idle: 1, hold: 1 });
  });
  assert.deepEqual(
    report.transports.map((r) => [r.transport, r.verdict]),
    [['ws', 'ok'], ['sse', 'ok'], ['longpoll', 'ok'], ['poll', 'ok']],
    JSON.stringify(report, null, 1),
  );
  assert.deepEqual(report.recommended, ['ws', 'sse', 'longpoll', 'poll']);
  await page.close();
});
