// Chromium over HTTPS and HTTP/2, against a feedgate of this test's own
// (`serve --tls-self-signed`; Chromium trusts that certificate's key alone,
// see tls.mjs):
//   - FeedgateSocket on each transport delivers every event exactly once,
//     and the server counts each delivery under protocol="h2",tls="true";
//   - 20 native EventSources on one page are all live at once, on one
//     HTTP/2 connection (the server's gauges: one connection carries SSE
//     while 20 SSE subscriptions are open; no HTTP/1.1 connection at all) —
//     over HTTP/1.1 the browser would hold at most 6;
//   - a native WebSocket on a page already on HTTP/2 goes over that
//     connection (RFC 8441 extended CONNECT): observed with Chromium 156,
//     which does so once the server advertised SETTINGS_ENABLE_CONNECT_PROTOCOL,
//     and asserted from the server's series.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FAST, assertExactlyOnce, closeAndTake, launch, metricSum, startRecorder, watchErrors } from './lib.mjs';
import { tlsServer } from './tls.mjs';

const TRANSPORTS = ['ws', 'sse', 'longpoll', 'poll'];
const H2_TLS = { protocol: 'h2', tls: 'true' };
const H1_TLS = { protocol: 'h1', tls: 'true' };
let server;
let browser;

before(async () => {
  server = await tlsServer();
  browser = await launch({ args: server.chromiumArgs });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page on the server's origin, loaded over HTTP/2; its errors. */
async function h2Page() {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.url}/healthz`);
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  assert.equal(protocol, 'h2', 'the page itself came over HTTP/2');
  return { page, errors };
}

/** Console errors other than the 404 of the favicon Chromium asks for. */
const unexpected = (errors) => errors.filter((e) => !/Failed to load resource: the server responded with a status of 404/.test(e));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const t of TRANSPORTS) {
  test(`FeedgateSocket on ${t} over HTTPS: every event exactly once, delivered on HTTP/2`, { timeout: 30_000 }, async () => {
    const topic = `https-${t}`;
    const { page, errors } = await h2Page();
    const before = await server.metrics();
    for (let n = 1; n <= 5; n += 1) await server.publish(topic, { n });
    await startRecorder(page, topic, { ...FAST, transports: [t], after: 0 });
    await page.waitForFunction(() => window.rec.seqs.length >= 5);
    // And live: published while the socket is open.
    for (let n = 6; n <= 20; n += 1) {
      await server.publish(topic, { n });
      await sleep(20);
    }
    await page.waitForFunction(() => window.rec.seqs.at(-1) === 20);
    const rec = await closeAndTake(page);
    assert.deepEqual(rec.seqs, Array.from({ length: 20 }, (_, i) => i + 1));
    assertExactlyOnce(assert, rec.seqs);
    assert.deepEqual(Object.keys(rec.by), [t], `stayed on ${t}: ${JSON.stringify(rec.changes)}`);
    assert.equal(rec.mismatch, undefined);

    const now = await server.metrics();
    const delivered = (text, link) => metricSum(text, 'feedgate_events_delivered_total', { transport: t, ...link });
    assert.ok(delivered(now, H2_TLS) - delivered(before, H2_TLS) >= 20, `${t}: deliveries counted on h2 over TLS`);
    assert.equal(delivered(now, H1_TLS), delivered(before, H1_TLS), `${t}: none on HTTP/1.1`);
    assert.deepEqual(unexpected(errors), []);
    await page.close();
  });
}

test('20 native EventSources on one page: all live at once, over one HTTP/2 connection', { timeout: 30_000 }, async () => {
  const topic = 'https-many';
  const N = 20;
  const { page, errors } = await h2Page();
  await page.evaluate(
    ([topic, N]) => {
      window.many = Array.from({ length: N }, () => {
        const es = new EventSource(`/topics/${topic}/sse`);
        const r = { ready: false, seqs: [], es };
        es.addEventListener('ready', () => (r.ready = true));
        es.onmessage = (e) => r.seqs.push(JSON.parse(e.data).seq);
        return r;
      });
    },
    [topic, N],
  );
  // All 20 open at once: over HTTP/1.1 the seventh would wait for a free
  // connection and never get its `ready`.
  await page.waitForFunction(() => window.many.every((r) => r.ready));

  const m = await server.metrics();
  const lines = m.match(/^feedgate_(connections|subscriptions)\{.*[1-9]\d*$/gm)?.join('\n');
  assert.equal(metricSum(m, 'feedgate_subscriptions', { transport: 'sse' }), N, lines);
  // A connection is counted under the transport of its latest stream: one
  // connection carries all 20 streams.
  assert.equal(metricSum(m, 'feedgate_connections', { transport: 'sse' }), 1, lines);
  assert.equal(metricSum(m, 'feedgate_connections', { transport: 'sse', ...H2_TLS }), 1, lines);
  assert.equal(metricSum(m, 'feedgate_connections', { protocol: 'h1' }), 0, lines);

  for (let n = 1; n <= 3; n += 1) await server.publish(topic, { n });
  await page.waitForFunction(() => window.many.every((r) => r.seqs.length >= 3));
  const seqs = await page.evaluate(() => window.many.map((r) => r.seqs));
  for (const s of seqs) assert.deepEqual(s, [1, 2, 3]);

  // Closed, each stream leaves a resource timing entry naming its protocol.
  await page.evaluate(() => window.many.forEach((r) => r.es.close()));
  await page.waitForFunction(
    (n) => performance.getEntriesByType('resource').filter((e) => e.name.includes('/topics/https-many/sse')).length === n,
    N,
  );
  const protocols = await page.evaluate(() =>
    performance
      .getEntriesByType('resource')
      .filter((e) => e.name.includes('/topics/https-many/sse'))
      .map((e) => e.nextHopProtocol),
  );
  assert.deepEqual(protocols, Array(N).fill('h2'));
  assert.deepEqual(unexpected(errors), []);
  await page.close();
});

test('a native WebSocket on a page already on HTTP/2 rides that connection (RFC 8441)', { timeout: 30_000 }, async () => {
  const topic = 'https-ws-native';
  const { page, errors } = await h2Page();
  const before = await server.metrics();
  await page.evaluate(async (topic) => {
    const url = new URL(`/topics/${topic}/ws?after=0`, location.href);
    url.protocol = 'wss:';
    const ws = (window.ws = new WebSocket(url));
    window.wsSeqs = [];
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === 'ready') window.wsReady = true;
      else if (!msg.type) window.wsSeqs.push(msg.seq);
    };
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onclose = (e) => reject(new Error(`closed ${e.code}`));
    });
  }, topic);
  await page.waitForFunction(() => window.wsReady === true);
  for (let n = 1; n <= 3; n += 1) await server.publish(topic, { n });
  await page.waitForFunction(() => window.wsSeqs.length >= 3);
  assert.deepEqual(await page.evaluate(() => window.wsSeqs), [1, 2, 3]);

  const now = await server.metrics();
  const lines = now.match(/^feedgate_connections\{.*transport="ws".*[1-9]\d*$/gm)?.join('\n');
  // The page's connection, its latest stream the WebSocket's.
  assert.equal(metricSum(now, 'feedgate_connections', { transport: 'ws', ...H2_TLS }), 1, lines);
  assert.equal(metricSum(now, 'feedgate_connections', { transport: 'ws', protocol: 'h1' }), 0, lines);
  const wire = (text, link) => metricSum(text, 'feedgate_wire_bytes_total', { transport: 'ws', direction: 'out', ...link });
  const delivered = (text, link) => metricSum(text, 'feedgate_events_delivered_total', { transport: 'ws', ...link });
  assert.ok(wire(now, H2_TLS) > wire(before, H2_TLS), 'WebSocket bytes on h2');
  assert.equal(delivered(now, H2_TLS) - delivered(before, H2_TLS), 3);
  assert.equal(wire(now, H1_TLS), wire(before, H1_TLS), 'no WebSocket byte on HTTP/1.1');
  await page.evaluate(() => window.ws.close());
  assert.deepEqual(unexpected(errors), []);
  await page.close();
});
