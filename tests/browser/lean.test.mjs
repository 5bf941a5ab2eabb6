// encoding: 'lean' in FeedgateSocket on every transport, and the browser's
// own permessage-deflate offer accepted: every event exactly once with the
// right seq, though lean events carry none on the wire.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE, assertExactlyOnce, launch, recordingPage } from './lib.mjs';

const N = 40;
const TOPIC = `browser-lean-${Date.now()}`;
const ALL = ['ws', 'sse', 'longpoll', 'poll'];
let browser;

before(async () => {
  // The data names its own seq, so the recorder's check (JSON.parse(data).seq
  // === e.seq) holds for lean events too.
  for (let n = 1; n <= N; n += 1) {
    await fetch(`${BASE}/topics/${TOPIC}/events`, { method: 'POST', body: JSON.stringify({ seq: n, note: 'lean' }) });
  }
  browser = await launch();
});
after(() => browser?.close());

for (const t of ALL) {
  test(`${t}: lean events arrive once each, with their seqs`, { timeout: 30_000 }, async () => {
    const { page, errors } = await recordingPage(browser.context, TOPIC, { transports: [t], after: 0, encoding: 'lean' });
    await page.waitForFunction((n) => window.rec.seqs.length >= n, N);
    const rec = await page.evaluate(() => {
      window.sock.close();
      return window.rec;
    });
    await page.close();
    assert.equal(rec.mismatch, undefined);
    assert.equal(rec.seqs[0], 1);
    assertExactlyOnce(assert, rec.seqs);
    assert.equal(rec.texts[0], '{"seq":1,"note":"lean"}');
    // (The first page of a fresh profile asks for /favicon.ico: a 404.)
    assert.deepEqual(errors.filter((e) => !e.includes('status of 404')), []);
  });
}

test('the browser offers permessage-deflate and the server takes it', { timeout: 30_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${BASE}/healthz`);
  const got = await page.evaluate(
    (topic) =>
      new Promise((resolve) => {
        const ws = new WebSocket(`${location.origin.replace('http', 'ws')}/topics/${topic}/ws?after=0&encoding=lean`);
        const frames = [];
        ws.onmessage = (m) => {
          frames.push(m.data);
          if (frames.length === 3) {
            resolve({ extensions: ws.extensions, frames });
            ws.close();
          }
        };
      }),
    TOPIC,
  );
  await page.close();
  assert.equal(got.extensions, 'permessage-deflate; server_no_context_takeover');
  assert.match(got.frames[0], /^#\{"type":"ready"/);
  assert.deepEqual(got.frames.slice(1), ['{"seq":1,"note":"lean"}', '{"seq":2,"note":"lean"}']);
});
