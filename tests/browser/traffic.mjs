// Subscribers from node on a protocol the browser does not use there —
// HTTP/2 in the clear (h2c, prior knowledge), or HTTP/1.1 over TLS — so a
// page that shows figures per protocol has the other one to show.

import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';

/**
 * Follows `topic` at `base` with an SSE stream, a long-poll loop and a
 * short-poll loop (every 200 ms), all on HTTP/2 (`h2: true`; h2c when
 * `base` is http://) or all on HTTP/1.1. The certificate of an https://
 * base is not checked: the tests' own self-signed server. `stop()` ends
 * them and resolves to the events each received ({sse, longpoll, poll}).
 */
export function subscribers(base, topic, { h2 }) {
  const tls = base.startsWith('https:');
  const session = h2 ? http2.connect(base, { rejectUnauthorized: false }) : null;
  session?.on('error', () => {});
  const agent = h2 ? null : new (tls ? https : http).Agent({ keepAlive: true, rejectUnauthorized: false });
  const open = new Set();
  let running = true;
  const got = { sse: 0, longpoll: 0, poll: 0 };

  // GET `path`; `onData` sees each chunk; resolves to the status at the end.
  const get = (path, onData) =>
    new Promise((resolve, reject) => {
      const done = (req, status) => {
        open.delete(req);
        resolve(status);
      };
      if (session) {
        const req = session.request({ ':path': path });
        let status = 0;
        open.add(req);
        req.setEncoding('utf8');
        req.on('response', (h) => (status = h[':status']));
        req.on('data', onData);
        req.on('end', () => done(req, status));
        req.on('close', () => done(req, status));
        req.on('error', (e) => (running ? reject(e) : done(req, status)));
        req.end();
        return;
      }
      const req = (tls ? https : http).get(new URL(path, base), { agent }, (res) => {
        res.setEncoding('utf8');
        res.on('data', onData);
        res.on('end', () => done(req, res.statusCode));
        res.on('close', () => done(req, res.statusCode));
      });
      open.add(req);
      req.on('error', (e) => (running ? reject(e) : done(req, 0)));
    });

  const count = (kind) => (text) => (got[kind] += (text.match(/"seq":/g) || []).length);
  const loop = async (kind, pause) => {
    let after = null;
    while (running) {
      let body = '';
      const q = new URLSearchParams(kind === 'longpoll' ? { timeout: '5' } : {});
      if (after !== null) q.set('after', String(after));
      const status = await get(`/topics/${topic}/${kind}?${q}`, (t) => (body += t));
      if (!running) break;
      if (status !== 200) throw new Error(`${kind}: ${status} ${body}`);
      const answer = JSON.parse(body);
      got[kind] += answer.events.length;
      after = answer.next;
      if (pause) await new Promise((r) => setTimeout(r, pause));
    }
  };
  const sse = get(`/topics/${topic}/sse`, count('sse'));
  const loops = [loop('longpoll', 0), loop('poll', 200)];
  return {
    got,
    async stop() {
      running = false;
      for (const req of open) (req.close ?? req.destroy).call(req);
      await Promise.all([sse, ...loops]);
      agent?.destroy();
      if (session) await new Promise((r) => session.close(r));
      return { ...got };
    },
  };
}
