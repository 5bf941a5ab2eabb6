// The demo page at `/`: loads cleanly, all four transports deliver with
// real byte counts, its controls reach the server, its layout holds still,
// its FeedgateSocket panel survives a broken transport, and each panel
// names its protocol with bytes per event on h1 and h2 side by side
// (demo-https.test.mjs: the same page over HTTPS and HTTP/2). Saves the
// screenshot used by the README (target/e2e/demo.png).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BASE, ROOT, getJson, launch, metricSum, setFaults, watchErrors } from './lib.mjs';
import { subscribers } from './traffic.mjs';

const SHOT = path.join(ROOT, 'target/e2e/demo.png');
let browser;
let page;
let errors;
let settingsBefore;

before(async () => {
  await setFaults({});
  settingsBefore = await getJson('/demo/settings');
  browser = await launch();
  page = await browser.context.newPage();
  errors = watchErrors(page);
  await page.goto(`${BASE}/`);
});
after(async () => {
  await setFaults({});
  if (settingsBefore) {
    await fetch(`${BASE}/demo/settings`, { method: 'POST', body: JSON.stringify(settingsBefore) });
  }
  await browser?.close();
});

const panelState = () =>
  page.evaluate(() =>
    [...document.querySelectorAll('.panel[data-transport]')].map((p) => ({
      transport: p.dataset.transport,
      events: Number(p.dataset.events),
      bytesPerEvent: Number(p.dataset.bytesPerEvent),
      status: p.dataset.status,
    })),
  );

test('all four panels show events and bytes per event, with no console error', { timeout: 30_000 }, async () => {
  await page.waitForFunction(
    () => {
      const ps = [...document.querySelectorAll('.panel[data-transport]')];
      const fg = document.getElementById('fg');
      return (
        ps.length === 4 &&
        ps.every((p) => Number(p.dataset.events) >= 3 && Number(p.dataset.bytesPerEvent) > 0) &&
        Number(fg.dataset.events) >= 3
      );
    },
    null,
    { timeout: 15_000 },
  );
  const panels = await panelState();
  assert.deepEqual(panels.map((p) => p.transport), ['poll', 'longpoll', 'sse', 'ws']);
  for (const p of panels) assert.equal(p.status, 'live', `${p.transport} is live`);
  // Stated with real numbers: each panel's text shows its bytes per event.
  const shown = await page.$$eval('.panel[data-transport] [data-k="bpe"]', (els) => els.map((e) => e.textContent));
  for (const s of shown) assert.match(s, /^\d/);
  assert.deepEqual(errors, []);
});

test('the layout does not move while events stream in', { timeout: 30_000 }, async () => {
  const boxes = () =>
    page.$$eval('.panel, header, .panel canvas, .panel ol', (els) =>
      els.map((e) => {
        const r = e.getBoundingClientRect();
        return [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)];
      }),
    );
  const before = await boxes();
  const n = (await panelState())[3].events;
  await page.waitForFunction((n) => Number(document.querySelector('[data-transport="ws"]').dataset.events) >= n + 20, n);
  assert.deepEqual(await boxes(), before);
});

test('the controls change the server-side publisher', { timeout: 30_000 }, async () => {
  await page.click('#payload button[data-v="1024"]');
  await page.waitForFunction(() => document.querySelector('#payload button[data-v="1024"]').getAttribute('aria-pressed') === 'true');
  assert.equal((await getJson('/demo/settings')).payload, 1024);
  await page.click('#payload button[data-v="0"]');
  await page.waitForFunction(() => document.querySelector('#payload button[data-v="0"]').getAttribute('aria-pressed') === 'true');
  assert.equal((await getJson('/demo/settings')).payload, 0);
  assert.deepEqual(errors, []);
});

test('the FeedgateSocket panel falls back on a blocked WebSocket and climbs back', { timeout: 60_000 }, async () => {
  const fg = () => page.evaluate(() => ({ ...document.getElementById('fg').dataset }));
  assert.equal((await fg()).transportCurrent, 'ws');
  await page.click('text=WebSocket blocked');
  await page.waitForFunction(() => document.getElementById('fg').dataset.transportCurrent === 'sse', null, { timeout: 15_000 });
  assert.deepEqual(await getJson('/demo/faults'), { ws: 'refuse', sse: 'ok', longpoll: 'ok', poll: 'ok' });
  await page.click('text=heal everything');
  // The page probes upward every 10 s.
  await page.waitForFunction(() => document.getElementById('fg').dataset.transportCurrent === 'ws', null, { timeout: 25_000 });
  // Every plain panel is live again, too.
  await page.waitForFunction(
    () => [...document.querySelectorAll('.panel[data-transport]')].every((p) => p.dataset.status === 'live'),
    null,
    { timeout: 15_000 },
  );
  const state = await fg();
  assert.equal(state.lost, '0');
  assert.equal(state.dup, '0');
  assert.ok(Number(state.events) > 20);
  const log = await page.$$eval('#fg-log li', (lis) => lis.map((l) => l.textContent));
  assert.ok(log.some((l) => /ws → sse \(fallback/.test(l)), log.join('\n'));
  assert.ok(log.some((l) => /sse → ws \(upgrade/.test(l)), log.join('\n'));

  await page.mouse.move(0, 0); // no hover highlight in the picture
  fs.mkdirSync(path.dirname(SHOT), { recursive: true });
  await page.screenshot({ path: SHOT });
  assert.ok(fs.statSync(SHOT).size > 10_000);
});

test('the many-topics panel: 8 topics live over one connection per transport, none lost or repeated', { timeout: 60_000 }, async () => {
  const n = await page.evaluate(() => Number(document.getElementById('multi').dataset.topics));
  assert.equal(n, 8);
  // Every topic moves on every transport, SSE and long polling included,
  // next to the page's other held connections: 8 topics each way would be
  // far past the browser's 6 per origin with one connection per topic.
  await page.waitForFunction(
    () => {
      const cells = [...document.querySelectorAll('#multi-rows td[data-t]')];
      return cells.length === 32 && cells.every((td) => Number(td.dataset.events) >= 2);
    },
    null,
    { timeout: 30_000 },
  );
  const checks = await page.$$eval('#multi-checks td[data-t]', (tds) => tds.map((td) => [td.dataset.t, td.dataset.ok]));
  assert.deepEqual(checks, [['ws', 'true'], ['sse', 'true'], ['longpoll', 'true'], ['poll', 'true']]);
  const sockets = await page.evaluate(() =>
    Object.entries(window.feedgateDemo.multi.sockets).map(([t, s]) => [t, s.transport, s.topics.length]),
  );
  assert.deepEqual(sockets, [['ws', 'ws', 8], ['sse', 'sse', 8], ['longpoll', 'longpoll', 8], ['poll', 'poll', 8]]);
  // The server sees it too: on SSE, topics followed far exceed the
  // connections that carry them (the plain SSE panel adds 1 of each).
  const metrics = await (await fetch(`${BASE}/metrics`)).text();
  // Summed over every label set naming transport="sse": connections also
  // carry `protocol` and `tls` labels.
  const gauge = (name) =>
    [...metrics.matchAll(new RegExp(`^${name}\\{[^}]*transport="sse"[^}]*\\} (\\d+)`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
  const lines = metrics.match(/^feedgate_(subscriptions|connections)\{[^}]*transport="sse".*$/gm) ?? [];
  assert.ok(gauge('feedgate_connections') >= 1, lines.join('; '));
  assert.ok(gauge('feedgate_subscriptions') - gauge('feedgate_connections') >= 7, lines.join('; '));
});

test('each panel names the protocol it really used, and shows bytes per event on h1 and h2 side by side', { timeout: 60_000 }, async () => {
  const seen = errors.length; // the faults of the tests before logged some
  // In the clear the browser speaks HTTP/1.1: the polls' own requests say
  // so (Resource Timing), the streams' server-side bytes say so.
  await page.waitForFunction(
    () => [...document.querySelectorAll('.panel[data-transport]')].every((p) => p.dataset.protocol === 'h1' && Number(p.dataset.bpeH1) > 0),
    null,
    { timeout: 15_000 },
  );
  const shown = await page.$$eval('.panel[data-transport]', (ps) =>
    ps.map((p) => [p.dataset.transport, p.dataset.protocol, p.dataset.tls, p.dataset.protocolSource, p.querySelector('[data-k="proto"]').textContent]),
  );
  assert.deepEqual(shown, [
    ['poll', 'h1', 'false', 'request', 'h1'],
    ['longpoll', 'h1', 'false', 'request', 'h1'],
    ['sse', 'h1', 'false', 'server', 'h1'],
    ['ws', 'h1', 'false', 'server', 'h1'],
  ]);
  // HTTP/2 from elsewhere (node, h2c with prior knowledge) on the same
  // topic: the h2 column fills in beside h1, for the transports it used.
  const h2c = subscribers(BASE, 'demo', { h2: true });
  try {
    await page.waitForFunction(
      () => ['poll', 'longpoll', 'sse'].every((t) => Number(document.querySelector(`.panel[data-transport="${t}"]`).dataset.bpeH2) > 0),
      null,
      { timeout: 20_000 },
    );
  } finally {
    const got = await h2c.stop();
    for (const [t, n] of Object.entries(got)) assert.ok(n > 0, `the h2c ${t} subscriber received ${n} events`);
  }
  const figures = await page.$$eval('.panel[data-transport]', (ps) =>
    ps.map((p) => [p.dataset.transport, p.querySelector('[data-k="bpe-h1"]').textContent, p.querySelector('[data-k="bpe-h2"]').textContent]),
  );
  for (const [t, h1, h2] of figures) {
    assert.match(h1, /^\d/, `${t} h1`);
    // No WebSocket used HTTP/2 here.
    if (t === 'ws') assert.equal(h2, '–', 'ws h2');
    else assert.match(h2, /^\d/, `${t} h2`);
  }
  const m = await (await fetch(`${BASE}/metrics`)).text();
  assert.ok(metricSum(m, 'feedgate_events_delivered_total', { transport: 'sse', protocol: 'h2', tls: 'false' }) > 0);
  assert.deepEqual(errors.slice(seen), []);
});

// Last: the probe responses leave idle keep-alive connections, which the
// server counts under the transport of their last request (`sse`), and the
// many-topics test counts SSE connections.
test('"diagnose this path" judges every transport from the browser: all ok on a direct path', { timeout: 30_000 }, async () => {
  const seen = errors.length; // the faults of the tests before may have logged some
  await page.click('#diag-run');
  await page.waitForFunction(() => document.getElementById('diag').dataset.state === 'done', null, { timeout: 20_000 });
  const verdicts = await page.$$eval('#diag-rows tr', (trs) => trs.map((tr) => [tr.dataset.t, tr.dataset.verdict]));
  assert.deepEqual(verdicts, [['ws', 'ok'], ['sse', 'ok'], ['longpoll', 'ok'], ['poll', 'ok']]);
  assert.match(await page.textContent('#diag-note'), /^recommended: ws, sse, longpoll, poll/);
  assert.deepEqual(errors.slice(seen), []);
});
