// The exactly-once logic across forced transport switches, without a
// browser or a server: a FeedgateSocket with its real connections, over
// the in-memory server of fake-server.js. Each transport is refused (its
// open connection cut) in turn, ws → sse → longpoll → poll, then all heal
// and it climbs back to ws; events are published throughout, and every
// one must arrive exactly once, in order, per topic.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { FeedgateSocket } from '../src/feedgate.js';
import { FakeServer } from './fake-server.js';

const FAST = {
  probeTimeout: 500,
  probeInterval: 50,
  pollInterval: 5,
  reconnectDelay: 1,
  maxReconnectDelay: 10,
  longpollTimeout: 1,
  bufferCheck: false,
  telemetry: false,
  remember: false,
};

/** The transports a ladder goes through (ws is refused from the start). */
const LADDER = ['sse', 'longpoll', 'poll', 'ws'];

let restore = () => {};
afterEach(() => restore());

/** Resolves when `socket` fires `type` with an event that passes `ok`. */
function next(socket, type, ok = () => true) {
  return new Promise((resolve) => {
    const on = (e) => {
      if (!ok(e)) return;
      socket.removeEventListener(type, on);
      resolve(e);
    };
    socket.addEventListener(type, on);
  });
}

/** Publishes to every topic every few ms until stop(), which resolves to
 *  {topic: last seq}. */
function publishing(server, topics) {
  let n = 0;
  const timer = setInterval(() => {
    n += 1;
    for (const t of topics) server.publish(t, { n, t });
  }, 2);
  return () => {
    clearInterval(timer);
    return Object.fromEntries(topics.map((t) => [t, server.log(t).length]));
  };
}

/**
 * Runs the ladder on a socket over `topics` (a string: one topic) and
 * returns what it delivered per topic and the transports it went through.
 */
async function ladder(topics, options) {
  const server = new FakeServer();
  restore = server.install();
  const names = Array.isArray(topics) ? topics : [topics];
  const seqs = Object.fromEntries(names.map((t) => [t, []]));
  const texts = [];
  const socket = new FeedgateSocket('http://fake.test', topics, { ...FAST, after: 0, ...options });
  const path = [];
  const by = {};
  socket.addEventListener('message', (e) => {
    by[socket.transport] = (by[socket.transport] ?? 0) + 1;
    seqs[e.topic].push(e.seq);
    texts.push(e.data);
    assert.equal(e.lastEventId, socket.cursorOf(e.topic));
  });
  socket.addEventListener('transportchange', (e) => path.push(e.transport));
  const stop = publishing(server, names);
  // Each transport delivers a few events before the next is refused.
  const on = (t) => next(socket, 'message', () => socket.transport === t && by[t] >= 3 * names.length);

  server.refuse('ws');
  await on('sse');
  server.refuse('sse');
  await on('longpoll');
  server.refuse('longpoll');
  await on('poll');
  server.heal();
  await on('ws');

  const last = stop();
  await Promise.all(
    names.map((t) => (seqs[t].at(-1) === last[t] ? null : next(socket, 'message', (e) => e.topic === t && e.seq === last[t]))),
  );
  socket.close();
  await next(socket, 'close');
  return { seqs, last, path, texts, server, by };
}

function assertAll(seqs, last) {
  for (const [t, n] of Object.entries(last)) {
    assert.deepEqual(seqs[t], Array.from({ length: n }, (_, i) => i + 1), `${t}: delivered ${seqs[t].length} of ${n}`);
  }
}

test('one topic, json: every event once through ws → sse → longpoll → poll → ws', async () => {
  const { seqs, last, path, texts, server } = await ladder('prices', {});
  assertAll(seqs, last);
  assert.deepEqual(path, LADDER);
  assert.equal(JSON.parse(texts[0]).seq, 1);
  assert.ok(server.opened.ws >= 2);
});

test('one topic, lean: the seqs counted from the control messages', async () => {
  const { seqs, last, path, texts } = await ladder('prices', { encoding: 'lean' });
  assertAll(seqs, last);
  assert.deepEqual(path, LADDER);
  // Lean data is the published value alone.
  assert.deepEqual(JSON.parse(texts[0]), { n: 1, t: 'prices' });
});

test('three topics over one connection, json', async () => {
  const { seqs, last, path } = await ladder(['a', 'b', 'c'], {});
  assertAll(seqs, last);
  assert.deepEqual(path, LADDER);
});

test('three topics over one connection, lean', async () => {
  const { seqs, last, path, texts } = await ladder(['a', 'b', 'c'], { encoding: 'lean' });
  assertAll(seqs, last);
  assert.deepEqual(path, LADDER);
  assert.ok(texts.every((x) => !x.startsWith('a ') && typeof JSON.parse(x).n === 'number'), 'the topic is taken off the data');
});

test('subscribe and unsubscribe during the ladder: the topics that stay lose nothing', async () => {
  const server = new FakeServer();
  restore = server.install();
  const socket = new FeedgateSocket('http://fake.test', ['a', 'b'], { ...FAST, after: 0 });
  const seqs = { a: [], b: [], c: [] };
  socket.onmessage = (e) => seqs[e.topic].push(e.seq);
  const stop = publishing(server, ['a', 'b', 'c']);
  await next(socket, 'message', (e) => e.topic === 'a' && e.seq > 5);
  assert.equal(socket.subscribe('c', 0), true);
  assert.equal(socket.subscribe('c'), false);
  await next(socket, 'message', (e) => e.topic === 'c');
  server.refuse('ws');
  await next(socket, 'message', () => socket.transport === 'sse');
  assert.equal(socket.unsubscribe('b'), true);
  const bAt = seqs.b.length;
  server.refuse('sse');
  await next(socket, 'message', (e) => socket.transport === 'longpoll' && e.topic === 'c');
  const last = stop();
  for (const t of ['a', 'c']) {
    if (seqs[t].at(-1) !== last[t]) await next(socket, 'message', (e) => e.topic === t && e.seq === last[t]);
  }
  socket.close();
  assert.deepEqual(seqs.a, Array.from({ length: last.a }, (_, i) => i + 1));
  assert.deepEqual(seqs.c, Array.from({ length: last.c }, (_, i) => i + 1));
  assert.deepEqual(seqs.b, Array.from({ length: bAt }, (_, i) => i + 1), 'no event of b after unsubscribe');
  assert.deepEqual(socket.topics, ['a', 'c']);
});
