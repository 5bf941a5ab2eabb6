// encoding: 'lean' in FeedgateSocket on every transport, one topic and
// several over one connection (the multiplexed lean forms: `TOPIC DATA`
// frames and SSE data, per-topic event arrays on polls), through the
// forced fallback ladder, and the browser's own permessage-deflate offer
// accepted: every event exactly once with the right seq, though lean
// events carry none on the wire.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import {
  BASE,
  FAST,
  assertEveryTopic,
  closeAndTake,
  assertExactlyOnce,
  launch,
  publisher,
  recordingPage,
  setFaults,
  startMultiRecorder,
  waitCaughtUp,
  watchErrors,
} from './lib.mjs';

const N = 40;
const TOPIC = `browser-lean-${Date.now()}`;
const ALL = ['ws', 'sse', 'longpoll', 'poll'];
let browser;

/** Fresh topic names: nobody has published to them. */
const fresh = (name, n) => Array.from({ length: n }, (_, i) => `lean-${name}-${Date.now()}-${i}`);

/** Publishes `{topic, seq}` to each topic (fresh, so seq is the tick):
 *  the recorders check that the data names the seq and topic it came with. */
const naming = (topics, everyMs) => publisher(topics, everyMs, BASE, (topic, seq) => ({ topic, seq }));

/**
 * Stops publishing, waits until the page's socket has every event, closes
 * it and the page, and checks that each topic got all its events once, in
 * order, their data naming their topic and seq. Returns the recorder.
 */
async function settle(page, pub) {
  const last = await pub.stop();
  await waitCaughtUp(page, last);
  const rec = await closeAndTake(page);
  await page.close();
  assert.deepEqual(rec.bad, [], 'data, topic and seq agree');
  assertEveryTopic(assert, rec.seqs, last);
  return rec;
}

before(async () => {
  await setFaults({});
  // The data names its own seq, so the recorder's check (JSON.parse(data).seq
  // === e.seq) holds for lean events too.
  for (let n = 1; n <= N; n += 1) {
    await fetch(`${BASE}/topics/${TOPIC}/events`, { method: 'POST', body: JSON.stringify({ seq: n, note: 'lean' }) });
  }
  browser = await launch();
});
afterEach(() => setFaults({}));
after(async () => {
  await setFaults({});
  await browser?.close();
});

for (const t of ALL) {
  test(`${t}: lean events arrive once each, with their seqs`, { timeout: 30_000 }, async () => {
    const { page, errors } = await recordingPage(browser.context, TOPIC, { transports: [t], after: 0, encoding: 'lean' });
    await page.waitForFunction((n) => window.rec.seqs.length >= n, N);
    const rec = await closeAndTake(page);
    await page.close();
    assert.equal(rec.mismatch, undefined);
    assert.equal(rec.seqs[0], 1);
    assertExactlyOnce(assert, rec.seqs);
    assert.equal(rec.texts[0], '{"seq":1,"note":"lean"}');
    // (The first page of a fresh profile asks for /favicon.ico: a 404.)
    assert.deepEqual(errors.filter((e) => !e.includes('status of 404')), []);
  });
}

for (const t of ALL) {
  test(`${t}: lean over one multiplexed connection, 3 topics, each exactly once`, { timeout: 30_000 }, async () => {
    const topics = fresh(t, 3);
    const pub = naming(topics, 50);
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${BASE}/healthz`);
    await startMultiRecorder(page, topics.map((x) => `${x}@0`), { transports: [t], encoding: 'lean', pollInterval: 200 });
    await page.waitForFunction((n) => window.rec.count >= n, 30);
    const rec = await settle(page, pub);
    assert.equal(rec.by[t], rec.count, `all on ${t}`);
    assert.deepEqual(errors.filter((e) => !e.includes('status of 404')), []);
  });
}

for (const [label, count] of [
  ['one topic', 1],
  ['3 topics over one connection', 3],
]) {
  test(`lean through the forced fallback ladder, ${label}: ws → sse → longpoll → poll → ws, exactly once`, { timeout: 90_000 }, async () => {
    const topics = fresh(`ladder${count}`, count);
    const pub = naming(topics, 100);
    await setFaults({ ws: 'refuse' });
    const page = await browser.context.newPage();
    await page.goto(`${BASE}/healthz`);
    // One topic: the v1 endpoints (a string); several: `topics=LIST`.
    const spec = count === 1 ? topics[0] : topics.map((x) => `${x}@0`);
    await startMultiRecorder(page, spec, { ...FAST, remember: false, encoding: 'lean', after: 0 });
    const on = (t) =>
      page.waitForFunction(([t, n]) => window.sock.transport === t && (window.rec.by[t] || 0) >= n, [t, 5 * count], { timeout: 20_000 });
    await on('sse');
    await setFaults({ ws: 'refuse', sse: 'refuse' });
    await on('longpoll');
    await setFaults({ ws: 'refuse', sse: 'refuse', longpoll: 'refuse' });
    await on('poll');
    await setFaults({});
    await on('ws');
    const rec = await settle(page, pub);
    assert.deepEqual(rec.changes.map((c) => c.transport), ['sse', 'longpoll', 'poll', 'ws']);
    assert.deepEqual(rec.gaps, []);
    assert.deepEqual(rec.resets, []);
    assert.equal(rec.errors, 0);
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
