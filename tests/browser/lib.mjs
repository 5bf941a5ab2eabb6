// Shared helpers for the browser tests: a headless Debian chromium driven
// by playwright-core, against the feedgate server in FEEDGATE_URL (started
// by scripts/browser-test.sh with --demo).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const BASE = (process.env.FEEDGATE_URL || '').replace(/\/+$/, '');
if (!BASE) {
  throw new Error('FEEDGATE_URL is not set: run scripts/browser-test.sh, or start `feedgate serve --demo` and set it');
}

/** The repository root, for output files. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Short intervals, so that a whole fallback ladder runs in seconds. */
export const FAST = Object.freeze({
  probeTimeout: 1500,
  probeInterval: 1500,
  pollInterval: 200,
  reconnectDelay: 100,
  maxReconnectDelay: 1000,
});

/** Closes the page's socket and returns what its recorder saw. */
export async function closeAndTake(page) {
  return page.evaluate(() => {
    window.sock.close();
    return window.rec;
  });
}

/**
 * Launches chromium with a fresh profile; `close()` also removes it.
 * `args`: more command-line flags (e.g. the certificate a test trusts).
 */
export async function launch({ args = [] } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'feedgate-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      ...args,
    ],
  });
  context.setDefaultTimeout(20_000);
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Records a page's console errors and uncaught exceptions. */
export function watchErrors(page) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/** Sets the server's injected faults (`{}` clears them). */
export async function setFaults(faults) {
  const res = await fetch(`${BASE}/demo/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  if (!res.ok) throw new Error(`POST /demo/faults: ${res.status} ${await res.text()}`);
  return res.json();
}

export async function getJson(p) {
  const res = await fetch(`${BASE}${p}`);
  if (!res.ok) throw new Error(`GET ${p}: ${res.status}`);
  return res.json();
}

/**
 * Opens a same-origin page (so `/feedgate.js` imports and ws://127.0.0.1
 * connects) that runs a FeedgateSocket and records, in `window.rec`, every
 * event, transport change, gap, reset and close.
 */
export async function recordingPage(context, topic, options) {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${BASE}/healthz`);
  await startRecorder(page, topic, options);
  return { page, errors };
}

export async function startRecorder(page, topic, options) {
  await page.evaluate(
    async ([topic, options]) => {
      const { FeedgateSocket } = await import('/feedgate.js');
      const rec = (window.rec = {
        seqs: [],
        texts: [],
        by: {},
        changes: [],
        gaps: [],
        resets: [],
        errors: 0,
        opened: false,
        closed: null,
      });
      const s = (window.sock = new FeedgateSocket(location.origin, topic, options));
      s.onopen = () => (rec.opened = true);
      s.onmessage = (e) => {
        rec.seqs.push(e.seq);
        rec.texts.push(e.data);
        rec.by[s.transport] = (rec.by[s.transport] || 0) + 1;
        if (JSON.parse(e.data).seq !== e.seq || e.event.seq !== e.seq) rec.mismatch = true;
      };
      s.ontransportchange = (e) =>
        rec.changes.push({ transport: e.transport, previous: e.previous, reason: e.reason, failures: e.failures, cause: e.cause });
      s.ongap = (e) => rec.gaps.push({ missed: e.missed, resumeSeq: e.resumeSeq });
      s.onreset = (e) => rec.resets.push({ reason: e.reason, epoch: e.epoch });
      s.onerror = () => (rec.errors += 1);
      s.onclose = (e) => (rec.closed = { code: e.code, wasClean: e.wasClean });
    },
    [topic, options],
  );
}

/** Waits until the socket is on `transport` and has delivered `n` events there. */
export async function waitOn(page, transport, n = 10, timeout = 20_000) {
  await page.waitForFunction(
    ([t, n]) => window.sock.transport === t && (window.rec.by[t] || 0) >= n,
    [transport, n],
    { timeout },
  );
}

/** Asserts that seqs are consecutive: each seen exactly once, in order. */
export function assertExactlyOnce(assert, seqs) {
  assert.ok(seqs.length > 0, 'no event was delivered');
  const bad = seqs.findIndex((s, i) => s !== seqs[0] + i);
  assert.equal(bad, -1, `seq ${seqs[bad]} at index ${bad} (expected ${seqs[0] + bad}); around it: ${seqs.slice(Math.max(0, bad - 3), bad + 3)}`);
}

/**
 * Publishes to every topic, one event each per tick, until stop(): each
 * topic's publishes are sequential, so its seqs are what it acknowledged.
 * `data(topic, n)` is the n-th tick's value. stop() resolves to {topic:
 * last seq published}.
 */
export function publisher(topics, everyMs = 100, base = BASE, data = (topic, n) => ({ n })) {
  const last = Object.fromEntries(topics.map((t) => [t, 0]));
  let running = true;
  let failures = 0;
  const loop = (async () => {
    for (let n = 1; running; n += 1) {
      const tick = Date.now();
      await Promise.all(
        topics.map(async (t) => {
          try {
            const res = await fetch(`${base}/topics/${t}/events`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(data(t, n)),
            });
            if (res.status !== 201) throw new Error(`${res.status}`);
            last[t] = Math.max(last[t], (await res.json()).seq);
          } catch {
            failures += 1;
          }
        }),
      );
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - tick))));
    }
  })();
  return {
    last,
    async stop() {
      running = false;
      await loop;
      if (failures > 0) throw new Error(`${failures} publishes failed`);
      return { ...last };
    },
  };
}

/**
 * Runs a multi-topic FeedgateSocket in `page` (already on the server's
 * origin) and records in `window.rec`, per topic, every seq delivered,
 * plus gaps, resets, topic errors, transport changes and close.
 */
export async function startMultiRecorder(page, topics, options) {
  await page.evaluate(
    async ([topics, options]) => {
      const { FeedgateSocket } = await import('/feedgate.js');
      const rec = (window.rec = {
        seqs: {},
        count: 0,
        by: {},
        changes: [],
        gaps: [],
        resets: [],
        topicErrors: [],
        errors: 0,
        opened: false,
        closed: null,
        bad: [],
      });
      const s = (window.sock = new FeedgateSocket(location.origin, topics, options));
      s.onopen = () => (rec.opened = true);
      s.onmessage = (e) => {
        const ev = JSON.parse(e.data);
        if (ev.seq !== e.seq || ev.topic !== e.topic || e.event.seq !== e.seq) rec.bad.push(e.data);
        if (!s.topics.includes(e.topic)) rec.bad.push(`not followed: ${e.data}`);
        (rec.seqs[e.topic] ??= []).push(e.seq);
        rec.count += 1;
        rec.by[s.transport] = (rec.by[s.transport] || 0) + 1;
      };
      s.ontransportchange = (e) =>
        rec.changes.push({ transport: e.transport, previous: e.previous, reason: e.reason, failures: e.failures });
      s.ongap = (e) => rec.gaps.push({ topic: e.topic, missed: e.missed, resumeSeq: e.resumeSeq });
      s.onreset = (e) => rec.resets.push({ topic: e.topic, reason: e.reason, epoch: e.epoch });
      s.ontopicerror = (e) => rec.topicErrors.push({ topic: e.topic, code: e.code });
      s.onerror = () => (rec.errors += 1);
      s.onclose = (e) => (rec.closed = { code: e.code, wasClean: e.wasClean });
    },
    [topics, options],
  );
}

/** Waits until every topic in `last` ({topic: seq}) was delivered up to its seq. */
export async function waitCaughtUp(page, last, timeout = 20_000) {
  await page.waitForFunction(
    (last) => Object.entries(last).every(([t, n]) => (window.rec.seqs[t] || []).at(-1) === n),
    last,
    { timeout },
  );
}

/** Asserts each topic got `from[topic]`..`last[topic]`, each once, in order. */
export function assertEveryTopic(assert, seqs, last, from = {}) {
  for (const [t, n] of Object.entries(last)) {
    const got = seqs[t] || [];
    const first = from[t] ?? 1;
    const want = Array.from({ length: n - first + 1 }, (_, i) => first + i);
    if (got.length !== want.length || got.some((s, i) => s !== want[i])) {
      const bad = got.findIndex((s, i) => s !== want[i]);
      assert.fail(`${t}: got ${got.length} events, want ${first}..${n}; first difference at ${bad}: ${got.slice(Math.max(0, bad - 3), bad + 3)}`);
    }
  }
}

/**
 * Sums the samples of metric `name` in a Prometheus text exposition whose
 * labels include every one of `labels` ({label: value}).
 */
export function metricSum(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** The server's /metrics as text (`base`: a server that serves them). */
export async function metricsText(base = BASE) {
  const res = await fetch(`${base}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  return res.text();
}
