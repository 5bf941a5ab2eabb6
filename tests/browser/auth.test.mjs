// FeedgateSocket against a server that requires tokens (--jwt-secret,
// --publish-token): a good token works on every transport, a missing or
// insufficient one closes the socket with 4401 / 4403 instead of retrying
// for ever, and a token provider replaces expiring tokens on reconnect
// without losing or repeating an event.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import { assertExactlyOnce, launch } from './lib.mjs';

const AUTH = (process.env.FEEDGATE_AUTH_URL || '').replace(/\/+$/, '');
const SECRET = process.env.FEEDGATE_TEST_JWT_SECRET;
const PUBLISH = process.env.FEEDGATE_TEST_PUBLISH_TOKEN;
const skip = !(AUTH && SECRET && PUBLISH) && 'needs FEEDGATE_AUTH_URL (scripts/browser-test.sh starts it)';

/** An HS256 JWT, as a backend would mint for a browser. */
function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${unsigned}.${crypto.createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}
const inSeconds = (s) => Math.floor(Date.now() / 1000) + s;

async function publish(topic, data) {
  const res = await fetch(`${AUTH}/topics/${topic}/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${PUBLISH}` },
    body: JSON.stringify(data),
  });
  assert.equal(res.status, 201);
}

let browser;
let page;
before(async () => {
  if (skip) return;
  browser = await launch();
  page = await browser.context.newPage();
  await page.goto(`${AUTH}/healthz`);
  await page.exposeFunction('mintToken', (topic, seconds) => jwt({ exp: inSeconds(seconds), topics: [topic] }));
});
after(() => browser?.close());

/** Runs a FeedgateSocket in the page until `until` holds; returns its record. */
async function run(topic, options, until) {
  return page.evaluate(
    async ([topic, options, until]) => {
      const { FeedgateSocket } = await import('/feedgate.js');
      const rec = { seqs: [], transports: [], errors: 0, closed: null, sent: null };
      const s = new FeedgateSocket(location.origin, topic, options);
      s.onmessage = (e) => rec.seqs.push(e.seq);
      s.ontransportchange = (e) => rec.transports.push(e.transport);
      s.onerror = () => (rec.errors += 1);
      const closed = new Promise((resolve) => {
        s.onclose = (e) => resolve((rec.closed = { code: e.code, reason: e.reason }));
      });
      if (until === 'closed') {
        await closed;
      } else if (until === 'sent') {
        await new Promise((r) => (s.onopen = r));
        rec.sent = await s.send({ no: 'publish token' }).then((a) => a.seq, (e) => e.message);
        s.close();
      } else {
        await new Promise((r) => (s.onopen = r));
        rec.sent = await s.send({ hello: 'with the publish token' }).then(
          (a) => a.seq,
          (e) => e.message,
        );
        await new Promise((resolve) => {
          const check = () => rec.seqs.includes(rec.sent) && rec.seqs.length >= until && resolve();
          s.addEventListener('message', check);
          check();
        });
        s.close();
      }
      return rec;
    },
    [topic, options, until],
  );
}

test('a valid token subscribes on every transport; send() uses the publish token', { skip, timeout: 60_000 }, async () => {
  const topic = 'auth-ok';
  for (const t of ['ws', 'sse', 'longpoll', 'poll']) {
    const token = jwt({ exp: inSeconds(60), topics: ['auth-*'] });
    const rec = await run(topic, { transports: [t], token, publishToken: PUBLISH, after: 0, pollInterval: 100 }, 1);
    assert.deepEqual(rec.transports, [t]);
    assert.equal(typeof rec.sent, 'number', `publish: ${rec.sent}`);
    assert.ok(rec.seqs.includes(rec.sent));
    assertExactlyOnce(assert, rec.seqs);
  }
  // The subscriber token is not a publish token.
  const rec = await run(topic, { transports: ['poll'], token: jwt({ exp: inSeconds(60), topics: ['*'] }) }, 'sent');
  assert.match(String(rec.sent), /publish failed: 403/);
});

test('no token: the socket gives up with close 4401 instead of retrying', { skip, timeout: 30_000 }, async () => {
  // remember: false, so that it walks the whole list: ws and SSE fail
  // without a status the page can see, the long poll's 401 is final.
  const rec = await run('auth-none', { probeTimeout: 1500, reconnectDelay: 100, remember: false }, 'closed');
  assert.equal(rec.closed.code, 4401);
  assert.equal(rec.errors, 1);
  assert.deepEqual(rec.seqs, []);
});

test('a token for other topics: close 4403', { skip, timeout: 30_000 }, async () => {
  const token = jwt({ exp: inSeconds(60), topics: ['elsewhere.*'] });
  const rec = await run('auth-denied', { token, probeTimeout: 1500, reconnectDelay: 100, remember: false }, 'closed');
  assert.equal(rec.closed.code, 4403);
});

for (const t of ['ws', 'sse', 'longpoll', 'poll']) {
  test(`${t}: expiring tokens are replaced, and no event is lost or repeated`, { skip, timeout: 60_000 }, async () => {
    const topic = `auth-expiring-${t}`;
    await publish(topic, { warm: true });
    let n = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing && n < 2000) {
        await publish(topic, { n: (n += 1) });
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    try {
      // Each token lives at most 1 s: a stream is cut when it expires, and
      // polls are refused once the server's 5 s leeway has passed. The
      // socket gets a fresh token from the provider each time.
      const rec = await page.evaluate(
        async ([topic, t]) => {
          const { FeedgateSocket } = await import('/feedgate.js');
          const rec = { seqs: [], minted: 0, changes: [], closed: null };
          // A poll keeps its token until refused (after the leeway): one
          // renewal proves it. A stream needs one per reconnect.
          const want = t.endsWith('poll') ? 2 : 3;
          const s = new FeedgateSocket(location.origin, topic, {
            transports: [t],
            token: () => {
              rec.minted += 1;
              return window.mintToken(topic, 1);
            },
            after: 0,
            pollInterval: 100,
            reconnectDelay: 100,
            probeTimeout: 2000,
          });
          s.onclose = (e) => (rec.closed = e.code);
          await new Promise((resolve) => {
            s.onmessage = (e) => {
              rec.seqs.push(e.seq);
              if (rec.minted >= want && rec.seqs.length >= 40) resolve();
            };
            s.addEventListener('close', resolve);
          });
          s.close();
          return rec;
        },
        [topic, t],
      );
      assert.equal(rec.closed, 1000, 'closed by the test, not refused');
      assert.ok(rec.minted >= (t.endsWith('poll') ? 2 : 3), `tokens minted: ${rec.minted}`);
      assert.equal(rec.seqs[0], 1);
      assertExactlyOnce(assert, rec.seqs);
    } finally {
      publishing = false;
      await publisher;
    }
  });
}
