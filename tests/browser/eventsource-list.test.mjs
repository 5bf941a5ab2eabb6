// A native browser EventSource on `/sse?topics=LIST` (10 topics), its
// connection cut again and again by a TCP proxy between the page and
// feedgate while events are published to all ten. EventSource reconnects
// by itself, with nothing but its Last-Event-ID (a LIST) as memory, and
// every topic's events arrive exactly once, in order.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { BASE, assertEveryTopic, launch, publisher, watchErrors } from './lib.mjs';

/**
 * A TCP proxy on 127.0.0.1:0 to `target` that can cut every connection
 * through it (`cut()`), or go away for a while and come back on the same
 * port (`restart(ms)`). It notes each request's Last-Event-ID.
 */
function proxy(target) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  const lastEventIds = [];
  let requests = 0;
  let server;
  const onClient = (client) => {
    const upstream = net.connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {}); // cut on purpose: a reset is expected
    }
    client.on('data', (chunk) => {
      // Request heads are small and come in one chunk here (loopback).
      const head = chunk.toString('latin1');
      if (/^GET /.test(head)) {
        requests += 1;
        const m = /\r\nlast-event-id: *([^\r]*)\r\n/i.exec(head);
        if (m) lastEventIds.push(m[1]);
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  };
  const listen = (p) =>
    new Promise((resolve, reject) => {
      server = net.createServer(onClient);
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => resolve(server.address().port));
    });
  const cut = () => {
    for (const s of sockets) s.destroy();
  };
  const close = () => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  return {
    lastEventIds,
    get requests() {
      return requests;
    },
    async start() {
      this.port = await listen(0);
      this.url = `http://127.0.0.1:${this.port}`;
    },
    cut,
    /** Stops listening, cuts everything, and listens again after `ms`. */
    async restart(ms) {
      const closed = close();
      cut();
      await closed;
      await new Promise((r) => setTimeout(r, ms));
      await listen(this.port);
    },
    async stop() {
      const closed = close();
      cut();
      await closed;
    },
  };
}

let browser;
let px;
before(async () => {
  browser = await launch();
  px = proxy(BASE);
  await px.start();
});
after(async () => {
  await px?.stop();
  await browser?.close();
});

test('native EventSource, 10 topics, connection cut 4 times: every topic exactly once, in order', { timeout: 120_000 }, async (t) => {
  const stamp = Date.now();
  const topics = Array.from({ length: 10 }, (_, i) => `es-list-${stamp}-${i}`);
  // Three kinds of start, as a page would write them: t0–t3 published to
  // before and followed from a cursor with its epoch, t4–t6 from their
  // first event though nobody has published to them yet (epoch 0000…),
  // t7–t9 from now.
  const epochs = {};
  for (const t of topics.slice(0, 4)) {
    for (let n = 1; n <= 5; n += 1) {
      const res = await fetch(`${BASE}/topics/${t}/events`, { method: 'POST', body: JSON.stringify({ n }) });
      epochs[t] = (await res.json()).epoch;
    }
  }
  const list = topics
    .map((t, i) => (i < 4 ? `${t}@${epochs[t]}:3` : i < 7 ? `${t}@0` : t))
    .join(',');

  // The page comes through the proxy too, so the stream is same-origin.
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${px.url}/healthz`);
  await page.evaluate((list) => {
    const rec = (window.rec = { seqs: {}, opens: 0, errors: 0, control: [], ids: [], closed: false });
    const es = (window.es = new EventSource(`/sse?topics=${list}`));
    es.onopen = () => (rec.opens += 1);
    es.onerror = () => {
      rec.errors += 1;
      if (es.readyState === EventSource.CLOSED) rec.closed = true;
    };
    es.onmessage = (e) => {
      const ev = JSON.parse(e.data);
      (rec.seqs[ev.topic] ??= []).push(ev.seq);
      rec.ids.push(e.lastEventId);
    };
    for (const name of ['subscribed', 'gap', 'reset']) {
      es.addEventListener(name, (e) => rec.control.push([name, JSON.parse(e.data)]));
    }
  }, list);
  await page.waitForFunction(() => window.rec.control.filter(([n]) => n === 'subscribed').length >= 10);

  const pub = publisher(topics, 100);
  const delivered = () => page.evaluate(() => Object.values(window.rec.seqs).reduce((n, s) => n + s.length, 0));
  const moreThan = async (n) =>
    page.waitForFunction((n) => Object.values(window.rec.seqs).reduce((k, s) => k + s.length, 0) > n, n, {
      timeout: 20_000,
    });
  let last;
  try {
    for (let round = 0; round < 4; round += 1) {
      // Let events flow on this connection, then cut it: twice by killing
      // its sockets, twice by taking the proxy away for longer than the
      // server's `retry:` (2 s), so a reconnect attempt is refused first.
      await moreThan((await delivered()) + 50);
      if (round % 2 === 0) px.cut();
      else await px.restart(2500);
      // Reconnected (onopen again) and delivering.
      await page.waitForFunction((n) => window.rec.opens >= n, round + 2, { timeout: 20_000 });
    }
    await moreThan((await delivered()) + 50);
  } finally {
    last = await pub.stop();
  }
  // Up to the last seq published, from each topic's start: after the
  // URL's cursor (3), from 1, or from the first event published after the
  // stream opened (the publisher started after it did: 1 as well).
  const want = last;
  await page.waitForFunction(
    (want) => Object.entries(want).every(([t, n]) => (window.rec.seqs[t] || []).at(-1) === n),
    want,
    { timeout: 20_000 },
  );
  const rec = await page.evaluate(() => {
    window.es.close();
    return window.rec;
  });
  const from = Object.fromEntries(topics.slice(0, 4).map((t) => [t, 4]));
  t.diagnostic(`${rec.opens} opens, ${px.requests} requests through the proxy, events per topic ${Object.values(rec.seqs).map((s) => s.length)}`);
  t.diagnostic(`Last-Event-IDs sent: ${px.lastEventIds.map((id) => `${id.split(',').length} items, ${id.length} B`).join('; ')}`);
  assertEveryTopic(assert, rec.seqs, want, from);
  assert.equal(rec.closed, false, 'EventSource never gave up');
  assert.ok(rec.opens >= 5, `reconnected by itself: ${rec.opens} opens`);
  assert.deepEqual(rec.control.filter(([n]) => n !== 'subscribed'), [], 'no gap, no reset');
  // Its only memory was Last-Event-ID: each reconnect sent the LIST id of
  // the last event it had seen.
  const resumed = px.lastEventIds.filter((id) => id !== '');
  assert.ok(resumed.length >= 4, `Last-Event-ID sent on reconnects: ${JSON.stringify(px.lastEventIds)}`);
  // The compact id (`~` + base64url: the epoch once, a number per URL
  // topic), or a LIST when the topics' epochs differ (docs/protocol.md).
  for (const id of resumed) {
    assert.match(id, /^(~[A-Za-z0-9_-]+|(@[0-9a-f]{16},)?[A-Za-z0-9_.:-]+@([0-9a-f]{16}:)?\d+(,[A-Za-z0-9_.:-]+@([0-9a-f]{16}:)?\d+)*)$/);
  }
  assert.deepEqual(errors.filter((e) => e.startsWith('pageerror')), []);
  await page.close();
});
