// The npm package as an application gets it: `npm pack`, the tarball
// installed into a scratch project (clients/js/scripts/pack.mjs), and the
// installed bundle imported in Chromium, where it subscribes to the
// server and delivers every event exactly once.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { packAndInstall } from '../../clients/js/scripts/pack.mjs';
import { BASE, assertExactlyOnce, launch, watchErrors } from './lib.mjs';

const N = 20;
const TOPIC = `browser-package-${Date.now()}`;
let browser;
let dir;
let installed;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feedgate-pack-browser-'));
  ({ installed } = packAndInstall(dir));
  for (let n = 1; n <= N; n += 1) {
    await fetch(`${BASE}/topics/${TOPIC}/events`, { method: 'POST', body: JSON.stringify({ n }) });
  }
  browser = await launch();
});
after(async () => {
  await browser?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the installed package is the bundle the server serves', async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
  const code = fs.readFileSync(path.join(installed, pkg.exports['.'].default), 'utf8');
  const served = await (await fetch(`${BASE}/feedgate.js`)).text();
  assert.equal(code, served);
  assert.ok(fs.existsSync(path.join(installed, pkg.exports['.'].types)));
});

test('the installed package, imported in Chromium, delivers every event once', { timeout: 30_000 }, async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
  const code = fs.readFileSync(path.join(installed, pkg.exports['.'].default), 'utf8');
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  // The page imports the installed file, not the server's /feedgate.js.
  await page.route(`${BASE}/node_modules/feedgate/index.js`, (route) => route.fulfill({ body: code, contentType: 'text/javascript' }));
  await page.goto(`${BASE}/healthz`);
  const got = await page.evaluate(
    async ([topic, n]) => {
      const { FeedgateSocket, FeedgateMessageEvent, diagnose, TRANSPORTS } = await import('/node_modules/feedgate/index.js');
      const s = new FeedgateSocket(location.origin, topic, { after: 0, transports: ['ws'] });
      const seqs = [];
      let typed = true;
      await new Promise((resolve) => {
        s.onmessage = (e) => {
          typed &&= e instanceof FeedgateMessageEvent && typeof e.topic === 'string';
          seqs.push(e.seq);
          if (seqs.length === n) resolve();
        };
      });
      s.close();
      return { seqs, typed, transports: [...TRANSPORTS], diagnose: typeof diagnose };
    },
    [TOPIC, N],
  );
  await page.close();
  assert.equal(got.seqs[0], 1);
  assertExactlyOnce(assert, got.seqs);
  assert.ok(got.typed, 'message events are FeedgateMessageEvents');
  assert.deepEqual(got.transports, ['ws', 'sse', 'longpoll', 'poll']);
  assert.equal(got.diagnose, 'function');
  assert.deepEqual(errors.filter((e) => !e.includes('status of 404')), []);
});
