// The one-line-change claim: a page written against the browser WebSocket
// API works with FeedgateSocket when only its constructor line changes.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE, assertExactlyOnce, launch, setFaults, watchErrors } from './lib.mjs';

// An application written for feedgate's WebSocket endpoint, using nothing
// but the WebSocket API. CONSTRUCTOR is the only line that differs.
const APP = `<!doctype html>
<meta charset="utf-8">
<title>a WebSocket application</title>
<pre id="out"></pre>
<script type="module">
import { FeedgateSocket } from '/feedgate.js';
const app = (window.app = { seqs: [], states: [], opened: false, closed: null, errors: 0 });
CONSTRUCTOR
app.states.push(socket.readyState === WebSocket.CONNECTING ? 'CONNECTING' : socket.readyState);
socket.onopen = () => {
  app.opened = socket.readyState === WebSocket.OPEN && socket.readyState === socket.OPEN;
};
socket.onmessage = (e) => {
  const msg = JSON.parse(e.data);
  if (msg.type) return; // feedgate's ready/gap/reset control messages
  app.seqs.push(msg.seq);
  document.getElementById('out').textContent += msg.seq + ' ' + JSON.stringify(msg.data) + '\\n';
  if (app.seqs.length === 15) {
    socket.close();
    app.states.push(socket.readyState === WebSocket.CLOSING ? 'CLOSING' : socket.readyState);
  }
};
socket.onerror = () => (app.errors += 1);
socket.onclose = (e) => {
  app.closed = { wasClean: e.wasClean, state: socket.readyState === WebSocket.CLOSED ? 'CLOSED' : socket.readyState };
};
</script>
`;
const WS_LINE = 'const socket = new WebSocket(`ws://${location.host}/topics/demo/ws`);';
const FG_LINE = "const socket = new FeedgateSocket(location.origin, 'demo');";

let browser;
before(async () => {
  await setFaults({});
  browser = await launch();
});
after(() => browser?.close());

async function runApp(constructorLine) {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  // Same origin as the server, so the module import and ws:// connect.
  await page.goto(`${BASE}/healthz`);
  await page.setContent(APP.replace('CONSTRUCTOR', constructorLine));
  await page.waitForFunction(() => window.app?.closed !== null && window.app?.closed !== undefined, null, {
    timeout: 20_000,
  });
  const app = await page.evaluate(() => window.app);
  const text = await page.textContent('#out');
  await page.close();
  return { app, errors: errors.filter((e) => !/favicon|404/.test(e)), text };
}

test('the two pages differ in exactly one line', () => {
  const a = APP.replace('CONSTRUCTOR', WS_LINE).split('\n');
  const b = APP.replace('CONSTRUCTOR', FG_LINE).split('\n');
  assert.equal(a.length, b.length);
  assert.equal(a.filter((line, i) => line !== b[i]).length, 1);
});

for (const [name, line] of [
  ['WebSocket', WS_LINE],
  ['FeedgateSocket', FG_LINE],
]) {
  test(`a plain WebSocket application runs unchanged on ${name}`, { timeout: 30_000 }, async () => {
    const { app, errors, text } = await runApp(line);
    assert.deepEqual(app.states, ['CONNECTING', 'CLOSING']);
    assert.equal(app.opened, true, 'onopen saw readyState OPEN');
    assert.deepEqual(app.closed, { wasClean: true, state: 'CLOSED' });
    assert.equal(app.errors, 0);
    assert.equal(app.seqs.length, 15);
    assertExactlyOnce(assert, app.seqs);
    assert.match(text, /"symbol":"FGT"/);
    assert.deepEqual(errors, []);
  });
}

test('send() publishes, and the event comes back exactly once', { timeout: 30_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${BASE}/healthz`);
  const topic = `browser-send-${Date.now()}`;
  const got = await page.evaluate(async (topic) => {
    const { FeedgateSocket } = await import('/feedgate.js');
    const s = new FeedgateSocket(location.origin, topic, { after: 0 });
    const seen = [];
    const done = new Promise((resolve) => {
      s.onmessage = (e) => {
        seen.push([e.seq, e.event.data.n ?? e.event.data, e.lastEventId]);
        if (seen.length === 4) resolve();
      };
    });
    await new Promise((r) => (s.onopen = r));
    const acks = [];
    for (let n = 1; n <= 3; n += 1) acks.push(await s.send({ n }));
    acks.push(await s.send('"a string is sent as JSON text"').then(() => 'ok'));
    const bad = await s.send('not json').then(() => 'accepted', (e) => e.message);
    await done;
    s.close();
    return { seen, acks, bad };
  }, topic);
  assert.deepEqual(got.seen.map(([seq, n]) => [seq, n]), [[1, 1], [2, 2], [3, 3], [4, 'a string is sent as JSON text']]);
  assert.match(got.seen[0][2], /^[0-9a-f]{16}:1$/, 'lastEventId is the EPOCH:SEQ cursor');
  assert.deepEqual(got.acks.slice(0, 3).map((a) => [a.topic, a.seq]), [[topic, 1], [topic, 2], [topic, 3]]);
  assert.equal(got.acks[3], 'ok');
  assert.match(got.bad, /400/);
  await page.close();
});
