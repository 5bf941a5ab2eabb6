// The demo page over HTTPS, as `serve --demo --tls-self-signed` serves it:
// Chromium speaks HTTP/2 to it, every panel says so (h2 · TLS) and shows
// its h2 bytes per event, its FeedgateSocket runs on WebSocket (over the
// page's HTTP/2 connection) with nothing lost, the page's own publishes
// and controls are accepted as same-origin, and the h1 column fills in
// when HTTP/1.1-over-TLS subscribers (node) follow the same topic. Saves
// target/e2e/demo-https.png.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, launch, metricSum, watchErrors } from './lib.mjs';
import { tlsServer } from './tls.mjs';
import { subscribers } from './traffic.mjs';

const SHOT = path.join(ROOT, 'target/e2e/demo-https.png');
let server;
let browser;
let page;
let errors;

before(async () => {
  server = await tlsServer(['--demo', '--demo-rate', '20']);
  browser = await launch({ args: server.chromiumArgs });
  page = await browser.context.newPage();
  errors = watchErrors(page);
  await page.goto(`${server.url}/`);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const panels = () =>
  page.$$eval('.panel[data-transport]', (ps) =>
    ps.map((p) => ({
      transport: p.dataset.transport,
      protocol: p.dataset.protocol,
      tls: p.dataset.tls,
      source: p.dataset.protocolSource,
      badge: p.querySelector('[data-k="proto"]').textContent,
      h1: p.querySelector('[data-k="bpe-h1"]').textContent,
      h2: p.querySelector('[data-k="bpe-h2"]').textContent,
      mine: [...p.querySelectorAll('.byproto [data-p]')].map((e) => e.dataset.mine),
    })),
  );

test('over HTTPS every panel says h2 · TLS and shows its h2 bytes per event', { timeout: 30_000 }, async () => {
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2');
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('.panel[data-transport]')].every(
        (p) => p.dataset.status === 'live' && p.dataset.protocol === 'h2' && Number(p.dataset.bpeH2) > 0,
      ),
    null,
    { timeout: 20_000 },
  );
  const shown = await panels();
  assert.deepEqual(
    shown.map((p) => [p.transport, p.protocol, p.tls, p.source, p.badge]),
    [
      ['poll', 'h2', 'true', 'request', 'h2 · TLS'],
      ['longpoll', 'h2', 'true', 'request', 'h2 · TLS'],
      ['sse', 'h2', 'true', 'server', 'h2 · TLS'],
      // Chromium sends a WebSocket over the page's HTTP/2 connection
      // (RFC 8441); the server's ws bytes went out on h2 only.
      ['ws', 'h2', 'true', 'server', 'h2 · TLS'],
    ],
  );
  for (const p of shown) {
    assert.match(p.h2, /^\d/, `${p.transport} h2`);
    assert.deepEqual(p.mine, ['false', 'true'], `${p.transport}: its own protocol's figure stands out`);
  }
  assert.deepEqual(errors, []);
});

test('over HTTPS the FeedgateSocket runs on WebSocket, and the page publishes as its own origin', { timeout: 30_000 }, async () => {
  await page.waitForFunction(() => Number(document.getElementById('fg').dataset.events) >= 20, null, { timeout: 20_000 });
  const fg = await page.evaluate(() => ({ ...document.getElementById('fg').dataset }));
  assert.equal(fg.transportCurrent, 'ws');
  assert.equal(fg.lost, '0');
  assert.equal(fg.dup, '0');
  // The page's tickers are publishes from https://127.0.0.1:PORT: every
  // topic moves on every transport.
  await page.waitForFunction(
    () => [...document.querySelectorAll('#multi-rows td[data-t]')].every((td) => Number(td.dataset.events) >= 1),
    null,
    { timeout: 20_000 },
  );
  assert.match(await page.textContent('#multi-note'), /This page is on HTTP\/2/);
  const m = await server.metrics();
  assert.equal(metricSum(m, 'feedgate_requests_total', { transport: 'publish', result: 'error' }), 0, 'no publish refused');
  assert.equal(metricSum(m, 'feedgate_connections', { protocol: 'h1' }), 0, 'the browser holds no HTTP/1.1 connection');
  assert.deepEqual(errors, []);
});

test('HTTP/1.1-over-TLS subscribers fill in the h1 column beside h2', { timeout: 40_000 }, async () => {
  const h1 = subscribers(server.url, 'demo', { h2: false });
  try {
    await page.waitForFunction(
      () => ['poll', 'longpoll', 'sse'].every((t) => Number(document.querySelector(`.panel[data-transport="${t}"]`).dataset.bpeH1) > 0),
      null,
      { timeout: 20_000 },
    );
    // The SSE badge reads the server's sse bytes, and both protocols carry
    // them now.
    await page.waitForFunction(() => document.querySelector('.panel[data-transport="sse"]').dataset.protocol === 'h1+h2', null, {
      timeout: 10_000,
    });
  } finally {
    const got = await h1.stop();
    for (const [t, n] of Object.entries(got)) assert.ok(n > 0, `the h1 ${t} subscriber received ${n} events`);
  }
  for (const p of await panels()) {
    assert.match(p.h2, /^\d/, `${p.transport} h2`);
    if (p.transport === 'ws') assert.equal(p.h1, '–', 'no WebSocket used HTTP/1.1');
    else assert.match(p.h1, /^\d/, `${p.transport} h1`);
  }
  const m = await server.metrics();
  assert.ok(metricSum(m, 'feedgate_events_delivered_total', { transport: 'sse', protocol: 'h1', tls: 'true' }) > 0);
  await page.mouse.move(0, 0);
  fs.mkdirSync(path.dirname(SHOT), { recursive: true });
  await page.screenshot({ path: SHOT });
  assert.deepEqual(errors, []);
});
