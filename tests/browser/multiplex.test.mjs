// FeedgateSocket following many topics over one connection (the
// multiplexed endpoints, docs/protocol.md "Multiplexed subscriptions
// (v1.1)"): every topic's events exactly once and in order across forced
// fallbacks and the climb back, and subscribe / unsubscribe at run time on
// each transport, with events published to every topic throughout.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import {
  BASE,
  FAST,
  assertEveryTopic,
  launch,
  publisher,
  setFaults,
  startMultiRecorder,
  waitCaughtUp,
  watchErrors,
} from './lib.mjs';


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

/** Fresh topic names: nobody has published to them (epoch 0000…). */
const fresh = (name, n) => Array.from({ length: n }, (_, i) => `mx-${name}-${Date.now()}-${i}`);

/** A page on the server's origin that counts the connections it opens. */
async function countingPage() {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${BASE}/healthz`);
  await page.evaluate(() => {
    window.made = { ws: [], sse: [] };
    const NativeWs = window.WebSocket;
    window.WebSocket = class extends NativeWs {
      constructor(url, ...rest) {
        super(url, ...rest);
        window.made.ws.push(String(url));
      }
    };
    const NativeEs = window.EventSource;
    window.EventSource = class extends NativeEs {
      constructor(url, ...rest) {
        super(url, ...rest);
        window.made.sse.push(String(url));
      }
    };
  });
  return { page, errors };
}

/** Waits until `transport` is in use and has delivered `n` more events. */
async function deliversOn(page, transport, n = 40, timeout = 20_000) {
  const start = await page.evaluate((t) => window.rec.by[t] || 0, transport);
  await page.waitForFunction(
    ([t, want]) => window.sock.transport === t && (window.rec.by[t] || 0) >= want,
    [transport, start + n],
    { timeout },
  );
}

/** Waits until each topic has `n` events delivered. */
async function eachHas(page, topics, n) {
  await page.waitForFunction(
    ([topics, n]) => topics.every((t) => (window.rec.seqs[t] || []).length >= n),
    [topics, n],
    { timeout: 20_000 },
  );
}

async function closeAndCollect(page) {
  await page.evaluate(() => window.sock.close());
  await page.waitForFunction(() => window.rec.closed !== null);
  return page.evaluate(() => ({ ...window.rec, made: window.made }));
}

test('10 topics over one connection: ws → sse → longpoll → poll → ws, each topic exactly once', { timeout: 120_000 }, async () => {
  const topics = fresh('ladder', 10);
  const { page, errors } = await countingPage();
  // From the start of each topic: none has been published to yet, so the
  // first publish's epoch arrives as a second `subscribed` on streams.
  await startMultiRecorder(page, topics, { ...FAST, after: 0 });
  await page.waitForFunction(() => window.sock.transport === 'ws');
  const pub = publisher(topics, 100);
  let last;
  try {
    await deliversOn(page, 'ws');
    await setFaults({ ws: 'refuse' });
    await deliversOn(page, 'sse');
    await setFaults({ ws: 'refuse', sse: 'refuse' });
    await deliversOn(page, 'longpoll');
    await setFaults({ ws: 'refuse', sse: 'refuse', longpoll: 'refuse' });
    await deliversOn(page, 'poll');
    await setFaults({});
    await deliversOn(page, 'ws');
  } finally {
    last = await pub.stop();
  }
  await waitCaughtUp(page, last);
  const rec = await closeAndCollect(page);

  const path = rec.changes.map((c) => c.transport);
  assert.deepEqual(path.slice(0, 4), ['ws', 'sse', 'longpoll', 'poll'], `transports: ${path}`);
  assert.equal(path.at(-1), 'ws', `transports: ${path}`);
  assert.equal(rec.changes.at(-1).reason, 'upgrade');
  assert.deepEqual(rec.bad, []);
  assert.deepEqual(rec.gaps, []);
  assert.deepEqual(rec.resets, []);
  assert.equal(rec.errors, 0);
  assertEveryTopic(assert, rec.seqs, last);
  // One connection for all ten topics, on every transport (the SSE buffer
  // check's /probe/sse follows no topic).
  for (const u of [...rec.made.ws, ...rec.made.sse].filter((u) => !new URL(u).pathname.startsWith('/probe/'))) {
    assert.equal(new URL(u).searchParams.get('topics').split(',').length, 10, u);
  }
  assert.deepEqual(errors.filter((e) => e.startsWith('pageerror')), []);
  await page.close();
});

for (const transport of ['ws', 'sse', 'longpoll', 'poll']) {
  test(`${transport}: subscribe and unsubscribe at run time, nothing lost or repeated on the topics that stay`, { timeout: 60_000 }, async () => {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = fresh(`sub-${transport}`, 8);
    const { page, errors } = await countingPage();
    const pub = publisher([t0, t1, t2, t3, t4, t5, t6, t7], 100);
    let last;
    try {
      await startMultiRecorder(page, [`${t0}@0`, `${t1}@0`, `${t2}@0`, `${t3}@0`], { ...FAST, transports: [transport] });
      await eachHas(page, [t0, t1, t2, t3], 5);
      await page.evaluate(([t1, t2, t4, t5]) => {
        const s = window.sock;
        // Leave and come back in the same turn, from where it stood: its
        // events continue exactly (on WebSocket the old subscription's
        // events still in flight must not count for the new one).
        const at = s.cursorOf(t1);
        s.unsubscribe(t1);
        s.subscribe(t1, at);
        // Gone for good: nothing of t2 after this line.
        s.unsubscribe(t2);
        window.rec.t2Left = window.rec.seqs[t2].length;
        s.subscribe(t4, 0); // from its first event
        s.subscribe(t5); // from now
      }, [t1, t2, t4, t5]);
      await eachHas(page, [t4, t5], 5);
      await page.evaluate(([t3, t6]) => {
        window.sock.unsubscribe(t3);
        window.rec.t3Left = window.rec.seqs[t3].length;
        window.sock.subscribe(t6, 0);
      }, [t3, t6]);
      await eachHas(page, [t6], 5);
    } finally {
      last = await pub.stop();
    }
    const staying = { [t0]: last[t0], [t1]: last[t1], [t4]: last[t4], [t5]: last[t5], [t6]: last[t6] };
    await waitCaughtUp(page, staying);
    const topicsNow = await page.evaluate(() => window.sock.topics);
    const rec = await closeAndCollect(page);

    assert.deepEqual(topicsNow, [t0, t1, t4, t5, t6]);
    const from = { [t5]: rec.seqs[t5][0] };
    assertEveryTopic(assert, rec.seqs, { [t0]: last[t0], [t1]: last[t1], [t4]: last[t4], [t6]: last[t6] });
    assertEveryTopic(assert, rec.seqs, { [t5]: last[t5] }, from);
    assert.equal(rec.seqs[t2].length, rec.t2Left, 'no event of an unsubscribed topic');
    assert.equal(rec.seqs[t3].length, rec.t3Left, 'no event of an unsubscribed topic');
    assert.equal(rec.seqs[t7], undefined, 'never followed');
    assert.deepEqual(rec.bad, []);
    assert.deepEqual(rec.gaps, []);
    assert.deepEqual(rec.resets, []);
    assert.deepEqual(rec.topicErrors, []);
    assert.equal(rec.changes.length, 1, `no reconnect: ${JSON.stringify(rec.changes)}`);
    if (transport === 'ws') {
      // Subscribed and unsubscribed by message on the one socket.
      assert.equal(rec.made.ws.length, 1, rec.made.ws.join('\n'));
    }
    if (transport === 'sse') {
      // One stream, then one new stream per change (calls in one turn
      // are one change), each with the LIST as it then stood.
      assert.equal(rec.made.sse.length, 3, rec.made.sse.join('\n'));
      const listed = rec.made.sse.map((u) => new URL(u).searchParams.get('topics').split(',').map((i) => i.split('@')[0]));
      assert.deepEqual(listed, [
        [t0, t1, t2, t3],
        [t0, t3, t1, t4, t5],
        [t0, t1, t4, t5, t6],
      ]);
    }
    assert.deepEqual(errors.filter((e) => e.startsWith('pageerror')), []);
    await page.close();
  });
}

for (const transport of ['ws', 'sse', 'longpoll']) {
  test(`${transport}: a one-topic socket that subscribes to another becomes multiplexed`, { timeout: 30_000 }, async () => {
    const [a, b] = fresh(`grow-${transport}`, 2);
    const { page } = await countingPage();
    const pub = publisher([a, b], 100);
    let last;
    try {
      await page.evaluate(
        async ([a, transport]) => {
          const { FeedgateSocket } = await import('/feedgate.js');
          const rec = (window.rec = { seqs: {}, closed: null, changes: 0, lost: [] });
          const s = (window.sock = new FeedgateSocket(location.origin, a, { transports: [transport], after: 0 }));
          s.onmessage = (e) => (rec.seqs[e.event.topic] ??= []).push(e.seq);
          s.onclose = (e) => (rec.closed = { code: e.code });
          s.ontransportchange = (e) => {
            rec.changes += 1;
            rec.lost.push(...e.failures);
          };
        },
        [a, transport],
      );
      await eachHas(page, [a], 5);
      const before = await page.evaluate((b) => {
        const s = window.sock;
        const was = { topic: s.topic, cursor: s.cursor };
        s.subscribe(b, 0);
        return { was, topic: s.topic, topics: s.topics };
      }, b);
      assert.equal(before.was.topic, a);
      assert.match(before.was.cursor, /^[0-9a-f]{16}:\d+$/);
      assert.equal(before.topic, null);
      assert.deepEqual(before.topics, [a, b]);
      await eachHas(page, [b], 5);
    } finally {
      last = await pub.stop();
    }
    await waitCaughtUp(page, last);
    const rec = await closeAndCollect(page);
    assertEveryTopic(assert, rec.seqs, last);
    // Switched endpoints in place: the connection was not lost and redone.
    assert.equal(rec.changes, 1, JSON.stringify(rec.lost));
    if (transport !== 'longpoll') {
      const urls = rec.made[transport].map((u) => new URL(u));
      assert.equal(urls[0].pathname, `/topics/${a}/${transport}`);
      assert.equal(urls.at(-1).pathname, `/${transport}`);
      assert.match(urls.at(-1).searchParams.get('topics'), new RegExp(`^${a}@[0-9a-f]{16}:\\d+,${b}@0$`));
    }
    await page.close();
  });
}

test('ws: a subscribe the server refuses is a topicerror; the other topics go on', { timeout: 30_000 }, async () => {
  // The server follows at most --max-topics-per-connection (100) topics.
  const topics = fresh('limit', 101);
  const { page } = await countingPage();
  await startMultiRecorder(page, topics.slice(0, 100), { ...FAST, transports: ['ws'] });
  await page.waitForFunction(() => window.sock.transport === 'ws');
  const added = await page.evaluate((t) => window.sock.subscribe(t, 0), topics[100]);
  assert.equal(added, true);
  await page.waitForFunction(() => window.rec.topicErrors.length > 0);
  const pub = publisher([topics[0], topics[99]], 100);
  await eachHas(page, [topics[0], topics[99]], 3);
  const last = await pub.stop();
  await waitCaughtUp(page, last);
  const state = await page.evaluate(() => ({ n: window.sock.topics.length, state: window.sock.readyState }));
  const rec = await closeAndCollect(page);
  assert.deepEqual(rec.topicErrors, [{ topic: topics[100], code: 'too_many_topics' }]);
  assert.deepEqual(state, { n: 100, state: 1 });
  assert.equal(rec.made.ws.length, 1);
  assert.equal(rec.changes.length, 1);
  await page.close();
});
