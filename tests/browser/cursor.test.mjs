// The cursor on every transport: a reset and a gap reach the application
// as events (never a silent skip), `data` is the same text whichever
// transport carried it, and a token goes where the server expects it.
//
// Needs the server's retention below RETAINED (scripts/browser-test.sh
// passes --retention-events 300).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE, assertExactlyOnce, launch, recordingPage, setFaults } from './lib.mjs';

const RETAINED = 300;
const PUBLISHED = RETAINED + 5;
const TOPIC = `browser-cursor-${Date.now()}`;
const ALL = ['ws', 'sse', 'longpoll', 'poll'];
let browser;
let epoch;

before(async () => {
  await setFaults({});
  // Enough events that the oldest are no longer retained.
  for (let i = 1; i <= PUBLISHED; i += 25) {
    const batch = [];
    for (let n = i; n < i + 25 && n <= PUBLISHED; n += 1) {
      batch.push(
        fetch(`${BASE}/topics/${TOPIC}/events`, { method: 'POST', body: JSON.stringify({ n, price: 99.9 }) }).then((r) => r.json()),
      );
    }
    for (const ack of await Promise.all(batch)) epoch = ack.epoch;
  }
  const oldest = await (await fetch(`${BASE}/topics/${TOPIC}/poll?after=0`)).json();
  assert.equal(oldest.events.length, RETAINED, 'the server runs with --retention-events 300');
  browser = await launch();
});
after(() => browser?.close());

async function collect(options) {
  const { page } = await recordingPage(browser.context, TOPIC, options);
  await page.waitForFunction((n) => window.rec.seqs.length >= n, RETAINED);
  const rec = await page.evaluate(() => {
    window.sock.close();
    return window.rec;
  });
  await page.close();
  return rec;
}

const first = PUBLISHED - RETAINED + 1;

for (const t of ALL) {
  test(`${t}: a cursor from another epoch is a reset, then everything retained`, { timeout: 30_000 }, async () => {
    const rec = await collect({ transports: [t], after: '0123456789abcdef:3' });
    assert.deepEqual(rec.resets, [{ reason: 'epoch_changed', epoch }]);
    assert.deepEqual(rec.gaps, []);
    assert.equal(rec.seqs[0], first);
    assertExactlyOnce(assert, rec.seqs);
  });

  test(`${t}: after 0 starts at the oldest retained event, with no gap`, { timeout: 30_000 }, async () => {
    const rec = await collect({ transports: [t], after: 0 });
    assert.deepEqual(rec.gaps, []);
    assert.deepEqual(rec.resets, []);
    assert.equal(rec.seqs[0], first);
    assertExactlyOnce(assert, rec.seqs);
  });

  test(`${t}: a cursor older than retention is a gap with the missed count`, { timeout: 30_000 }, async () => {
    const rec = await collect({ transports: [t], after: `${epoch}:1` });
    assert.deepEqual(rec.gaps, [{ missed: first - 2, resumeSeq: first }]);
    assert.deepEqual(rec.resets, []);
    assert.equal(rec.seqs[0], first);
    assertExactlyOnce(assert, rec.seqs);
  });
}

test('data is the same text on every transport', { timeout: 60_000 }, async () => {
  const texts = {};
  for (const t of ALL) {
    const { page } = await recordingPage(browser.context, TOPIC, { transports: [t], after: `${epoch}:${PUBLISHED - 3}` });
    await page.waitForFunction(() => window.rec.texts.length >= 3);
    texts[t] = await page.evaluate(() => window.rec.texts);
    await page.close();
  }
  // As the server wrote it (99.9 stays 99.9, key order kept), not re-encoded.
  assert.match(texts.ws[0], new RegExp(`^\\{"topic":"${TOPIC}","seq":${PUBLISHED - 2},"time":\\d+,"data":\\{"n":\\d+,"price":99.9\\}\\}$`));
  for (const t of ALL) assert.deepEqual(texts[t], texts.ws, t);
});

test('a token goes as ?token= on SSE and WebSocket, as a Bearer header on fetches', { timeout: 30_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${BASE}/healthz`);
  const seen = await page.evaluate(async (topic) => {
    const seen = { ws: [], sse: [], fetch: [] };
    const NativeWs = window.WebSocket;
    window.WebSocket = class extends NativeWs {
      constructor(url, ...rest) {
        super(url, ...rest);
        seen.ws.push(String(url));
      }
    };
    const NativeEs = window.EventSource;
    window.EventSource = class extends NativeEs {
      constructor(url, ...rest) {
        super(url, ...rest);
        seen.sse.push(String(url));
      }
    };
    const nativeFetch = window.fetch;
    window.fetch = (url, init = {}) => {
      seen.fetch.push([String(url), new Headers(init.headers).get('authorization')]);
      return nativeFetch(url, init);
    };
    const { FeedgateSocket } = await import('/feedgate.js');
    for (const t of ['ws', 'sse', 'poll']) {
      const s = new FeedgateSocket(location.origin, topic, { transports: [t], token: 's3cr:t', after: 0 });
      await new Promise((resolve) => (s.onmessage = resolve));
      if (t === 'poll') await s.send({ hello: 'token' });
      s.close();
    }
    return seen;
  }, TOPIC);
  assert.equal(new URL(seen.ws[0]).searchParams.get('token'), 's3cr:t');
  assert.equal(new URL(seen.sse[0]).searchParams.get('token'), 's3cr:t');
  assert.ok(seen.fetch.length >= 2);
  for (const [url, auth] of seen.fetch) {
    assert.equal(auth, 'Bearer s3cr:t', url);
    assert.equal(new URL(url).searchParams.get('token'), null, 'no token in fetched URLs');
  }
  await page.close();
});
