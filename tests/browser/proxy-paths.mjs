// FeedgateSocket in Chromium through real nginx, one configuration per
// failure (scripts/nginx-variants.sh): it settles on a transport that
// delivers, every event exactly once, and the server's
// feedgate_client_transport_switches_total says why it left the ones that
// failed. Run by scripts/browser-proxy-test.sh, which starts a feedgate
// and an nginx per variant and passes them in FEEDGATE_PATHS
// ({"variant": {"url": nginx, "direct": feedgate}, …}); not part of
// browser-test.sh (no nginx there).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertExactlyOnce, launch, metricSum, metricsText, publisher, startRecorder, watchErrors } from './lib.mjs';

const PATHS = JSON.parse(process.env.FEEDGATE_PATHS || '{}');
const SWITCHES = 'feedgate_client_transport_switches_total';
const NO_WS = ['sse', 'longpoll', 'poll'];

// What each variant breaks, the transports the socket is given (SSE is
// only tried when WebSocket is out of the list: the variants that break
// SSE leave WebSocket working), where it must settle, and what it must
// have reported.
const CASES = {
  correct: { settles: 'ws', reported: [] },
  noupgrade: { settles: 'sse', reported: [{ from: 'ws', to: 'sse', reason: 'refused' }] },
  buffering: { transports: NO_WS, settles: 'longpoll', reported: [{ from: 'sse', to: 'longpoll', reason: 'buffered' }] },
  'buffer-hdr': { transports: NO_WS, settles: 'sse', reported: [] },
  gzip: { transports: NO_WS, settles: 'sse', reported: [] },
  // A 5 s read timeout cuts idle streams: with an event every 6.5 s the
  // WebSocket is cut between events, the socket reconnects on it (nothing
  // lost) and reports each cut with how long the stream had lived.
  timeout5: { settles: 'ws', reported: [{ from: 'ws', to: 'ws', reason: 'cut' }], everyMs: 6500, events: 3 },
};

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

async function waitFor(what, check, timeout) {
  const end = Date.now() + timeout;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('FeedgateSocket through nginx', { concurrency: true }, () => {
  for (const [name, c] of Object.entries(CASES)) {
    test(`${name}: settles on ${c.settles}, reports ${c.reported.map((r) => `${r.from} → ${r.to}: ${r.reason}`).join(', ') || 'nothing'}`, { timeout: 90_000 }, async () => {
      const p = PATHS[name];
      assert.ok(p, `FEEDGATE_PATHS has no ${name}: run scripts/browser-proxy-test.sh`);
      const topic = `proxy-${name}`;
      const pub = publisher([topic], c.everyMs ?? 100, p.direct);
      const page = await browser.context.newPage();
      const errors = watchErrors(page);
      try {
        await page.goto(`${p.url}/healthz`);
        await startRecorder(page, topic, { remember: false, ...(c.transports ? { transports: c.transports } : {}) });
        // Settled: on the expected transport, with events delivered there.
        const want = c.events ?? 20;
        await page.waitForFunction(
          ([t, n]) => window.sock.transport === t && (window.rec.by[t] || 0) >= n,
          [c.settles, want],
          { timeout: 60_000 },
        );
        for (const labels of c.reported) {
          await waitFor(`${SWITCHES}${JSON.stringify(labels)} on ${name}`, async () => metricSum(await metricsText(p.direct), SWITCHES, labels) >= 1, 10_000);
        }
        const metrics = await metricsText(p.direct);
        const total = metricSum(metrics, SWITCHES);
        const expected = c.reported.reduce((n, labels) => n + metricSum(metrics, SWITCHES, labels), 0);
        assert.equal(total, expected, `${name}: only the expected switches are reported:\n${metrics.split('\n').filter((l) => l.startsWith(SWITCHES)).join('\n')}`);
        const rec = await page.evaluate(() => window.rec);
        if (name === 'buffering') {
          // Found by the probe, in about a second, not by probeTimeout.
          const failures = rec.changes[0].failures;
          assert.deepEqual(failures.map(([t, , reason]) => [t, reason]), [['sse', 'buffered']], JSON.stringify(failures));
        }
        if (name === 'timeout5') {
          const count = metricSum(metrics, 'feedgate_client_stream_cut_after_seconds_count', { transport: 'ws' });
          const sum = metricSum(metrics, 'feedgate_client_stream_cut_after_seconds_sum', { transport: 'ws' });
          assert.ok(count >= 1, 'a cut was observed');
          // after_s is how long the stream lived: the 5 s of silence nginx
          // allows, after the last event it carried (at most 6.5 s in).
          const mean = sum / count;
          assert.ok(mean >= 4.9 && mean < 12.5, `streams were cut after ${mean} s on average, expected 5 to 11.5`);
        }
        await page.evaluate(() => window.sock.close());
        assertExactlyOnce(assert, rec.seqs);
        assert.deepEqual(rec.gaps, []);
        assert.equal(rec.errors, 0);
        assert.deepEqual(errors.filter((e) => e.startsWith('pageerror')), []);
      } finally {
        await pub.stop().catch(() => {});
        await page.close();
      }
    });
  }
});
