// Restarts no client notices, in the browser: a server on the durable file
// log (`serve --log file:DIR`) is drained and started again on the same
// port while a native EventSource and a FeedgateSocket forced onto each
// transport follow one topic. Events published before and after the
// restart each arrive exactly once, in order, with no reset and no gap,
// and the sockets come back after the jittered delays the server (or,
// after a WebSocket 1012, the socket) chose.
//
// Starts its own server: FEEDGATE_BIN (set by scripts/browser-test.sh) is
// the binary.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { assertExactlyOnce, launch, watchErrors } from './lib.mjs';

const BIN = process.env.FEEDGATE_BIN || path.resolve('target/debug/feedgate');
const TOPIC = 'browser-restart';
const TRANSPORTS = ['ws', 'sse', 'longpoll', 'poll'];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feedgate-restart-'));
let browser;

/** Starts `feedgate serve` on the file log at `listen`; resolves to {child, url}. */
function serve(listen) {
  const child = spawn(
    BIN,
    ['serve', '--listen', listen, '--log', `file:${dir}`, '--sse-retry', '300ms', '--reconnect-spread', '1500ms'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const look = (chunk) => {
      out += chunk;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (m) resolve({ child, url: m[0] });
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => reject(new Error(`feedgate exited ${code} before listening: ${out}`)));
  });
}

/** SIGTERM (a drain), and wait for the exit. */
function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

async function publish(url, n) {
  const res = await fetch(`${url}/topics/${TOPIC}/events`, { method: 'POST', body: JSON.stringify({ n }) });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text).seq;
}

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a restart on the file log: EventSource and FeedgateSocket on every transport lose, repeat and reset nothing', { timeout: 60_000 }, async () => {
  let server = await serve('127.0.0.1:0');
  const url = server.url;
  try {
    for (let n = 1; n <= 3; n += 1) assert.equal(await publish(url, n), n);
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${url}/healthz`);
    await page.evaluate(async (transports) => {
      const { FeedgateSocket } = await import('/feedgate.js');
      const topic = 'browser-restart';
      window.rec = { native: { seqs: [], resets: 0, errors: 0 } };
      const es = new EventSource(`/topics/${topic}/sse?after=0`);
      es.onmessage = (e) => window.rec.native.seqs.push(JSON.parse(e.data).seq);
      es.addEventListener('reset', () => (window.rec.native.resets += 1));
      es.addEventListener('gap', () => (window.rec.native.resets += 1));
      es.onerror = () => (window.rec.native.errors += 1);
      window.socks = {};
      for (const t of transports) {
        const r = (window.rec[t] = { seqs: [], resets: 0, gaps: 0, closed: null, transports: new Set() });
        const s = new FeedgateSocket(location.origin, topic, {
          transports: [t],
          after: 0,
          pollInterval: 200,
          restartSpread: 1500,
          remember: false,
        });
        s.onmessage = (e) => {
          r.seqs.push(e.seq);
          r.transports.add(s.transport);
        };
        s.onreset = () => (r.resets += 1);
        s.ongap = () => (r.gaps += 1);
        s.onclose = (e) => (r.closed = e.code);
        window.socks[t] = s;
      }
    }, TRANSPORTS);
    const caughtUp = (n) =>
      page.waitForFunction(
        (n) => Object.values(window.rec).every((r) => r.seqs.length >= n),
        n,
        { timeout: 30_000 },
      );
    await caughtUp(3);

    // Drain and restart on the same port, the same directory.
    assert.equal(await stop(server.child), 0);
    server = await serve(new URL(url).host);
    assert.equal(server.url, url);
    for (let n = 4; n <= 6; n += 1) assert.equal(await publish(url, n), n);
    await caughtUp(6);
    // A moment for anything that would arrive twice.
    await new Promise((r) => setTimeout(r, 500));

    const rec = await page.evaluate(() => {
      const out = {};
      for (const [k, r] of Object.entries(window.rec)) out[k] = { ...r, transports: r.transports ? [...r.transports] : undefined };
      for (const s of Object.values(window.socks)) s.close();
      return out;
    });
    for (const [who, r] of Object.entries(rec)) {
      assert.deepEqual(r.seqs, [1, 2, 3, 4, 5, 6], `${who}: ${r.seqs}`);
      assertExactlyOnce(assert, r.seqs);
      assert.equal(r.resets, 0, `${who} was reset`);
      if (who !== 'native') {
        assert.equal(r.gaps, 0, `${who} saw a gap`);
        assert.equal(r.closed, null, `${who} closed`);
        assert.deepEqual(r.transports, [who], `${who} stayed on its transport`);
      }
    }
    // The native EventSource saw the stream end (the drain) and came back.
    assert.ok(rec.native.errors >= 1);
    await page.close();
    // Connection errors while the server was down are expected; nothing else.
    const unexpected = errors.filter((e) => !/ERR_CONNECTION_REFUSED|WebSocket connection|Failed to load resource|net::ERR/.test(e));
    assert.deepEqual(unexpected, []);
  } finally {
    await stop(server.child);
  }
});
