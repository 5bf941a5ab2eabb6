// A feedgate of the test's own over HTTPS (`serve --tls-self-signed`),
// for the browser tests of HTTPS and HTTP/2: the server's printed
// certificate fingerprint is checked against the certificate it presents,
// Chromium is told to trust that key alone (its SPKI hash), and node
// publishes and scrapes through one HTTP/2 session of its own.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http2 from 'node:http2';
import path from 'node:path';

const BIN = process.env.FEEDGATE_BIN || path.resolve('target/debug/feedgate');

/**
 * Starts `feedgate serve --listen 127.0.0.1:0 --tls-self-signed ARGS…` and
 * resolves, once it answers over HTTP/2, to:
 *   url          https://127.0.0.1:PORT
 *   chromiumArgs flags that make Chromium trust this certificate's key only
 *   request(method, path, body?) → {status, text} over node's HTTP/2 session
 *   metrics()    the /metrics text
 *   stop()       closes the session, SIGTERM, waits for the exit
 */
export async function tlsServer(args = []) {
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--tls-self-signed', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const { url, fingerprint } = await new Promise((resolve, reject) => {
    const look = (chunk) => {
      out += chunk;
      const u = /https:\/\/127\.0\.0\.1:\d+/.exec(out);
      const f = /SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/.exec(out);
      if (u && f) resolve({ url: u[0], fingerprint: f[1] });
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => reject(new Error(`feedgate exited ${code} before listening: ${out}`)));
  });

  // The certificate is self-signed: not verified by a CA but pinned to the
  // fingerprint the server printed.
  const session = http2.connect(url, { rejectUnauthorized: false });
  session.on('error', () => {}); // a request on it fails instead
  await new Promise((resolve, reject) => {
    session.once('connect', resolve);
    session.once('error', reject);
  });
  const cert = session.socket.getPeerX509Certificate();
  if (cert.fingerprint256 !== fingerprint) {
    child.kill();
    throw new Error(`presented certificate ${cert.fingerprint256}, printed ${fingerprint}`);
  }
  const spki = crypto.createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');

  const request = (method, p, body) =>
    new Promise((resolve, reject) => {
      const headers = { ':method': method, ':path': p };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const req = session.request(headers);
      let status = 0;
      let text = '';
      req.setEncoding('utf8');
      req.on('response', (h) => (status = h[':status']));
      req.on('data', (c) => (text += c));
      req.on('end', () => resolve({ status, text }));
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });

  return {
    url,
    fingerprint,
    chromiumArgs: [`--ignore-certificate-errors-spki-list=${spki}`],
    request,
    async publish(topic, data) {
      const res = await request('POST', `/topics/${topic}/events`, data);
      if (res.status !== 201) throw new Error(`publish to ${topic}: ${res.status} ${res.text}`);
      return JSON.parse(res.text).seq;
    },
    async metrics() {
      const res = await request('GET', '/metrics');
      if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`);
      return res.text;
    },
    async stop() {
      await new Promise((resolve) => session.close(resolve));
      if (child.exitCode !== null) return;
      await new Promise((resolve) => {
        child.on('exit', resolve);
        child.kill('SIGTERM');
      });
    },
  };
}
