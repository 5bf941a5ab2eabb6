// FeedgateSocket's API without a server: argument checks, send(), the
// handler properties, the typed events, a fatal answer.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeedgateCloseEvent, FeedgateMessageEvent, FeedgateSocket, GapEvent } from '../src/feedgate.js';
import { FakeServer } from './fake-server.js';

const QUIET = { telemetry: false, remember: false, bufferCheck: false, transports: ['poll'], pollInterval: 5 };

test('bad arguments throw SyntaxError at once', () => {
  assert.throws(() => new FeedgateSocket('ws://h', 'a'), SyntaxError);
  assert.throws(() => new FeedgateSocket('http://h', ['a', 'a@1']), /listed twice/);
  assert.throws(() => new FeedgateSocket('http://h', ['bad topic']), SyntaxError);
  assert.throws(() => new FeedgateSocket('http://h', 'a', { after: 'x' }), /bad cursor/);
  assert.throws(() => new FeedgateSocket('http://h', 'a', { transports: ['carrier-pigeon'] }), /no known transport/);
});

test('cursors, topics and closing, as on WebSocket', async () => {
  const s = new FeedgateSocket('http://h/', ['a@5', 'b'], { ...QUIET, after: 0 });
  assert.equal(s.url, 'http://h');
  assert.equal(s.readyState, FeedgateSocket.CONNECTING);
  assert.equal(s.OPEN, 1);
  assert.deepEqual(s.topics, ['a', 'b']);
  assert.equal(s.cursor, 'a@5,b@0');
  assert.equal(s.cursorOf('a'), '5');
  assert.equal(s.lastSeq, null);
  const order = [];
  s.onclose = (e) => order.push(['handler', e instanceof FeedgateCloseEvent, e.code, e.wasClean]);
  s.addEventListener('close', () => order.push(['listener']));
  s.close();
  assert.equal(s.readyState, FeedgateSocket.CLOSING);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(s.readyState, FeedgateSocket.CLOSED);
  assert.deepEqual(order, [['handler', true, 1000, true], ['listener']]);
  assert.throws(() => s.subscribe('c'), { name: 'InvalidStateError' });
  assert.equal(s.unsubscribe('a'), false);
  await assert.rejects(s.send({}), { name: 'InvalidStateError' });
});

test('send: needs a topic when following several; posts JSON with the publish token', async () => {
  const posted = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    if (init?.method === 'POST') {
      posted.push([url, init]);
      return new Response('{"topic":"t","seq":7,"epoch":"e"}', { status: 201 });
    }
    return new Promise(() => {});
  };
  try {
    const many = new FeedgateSocket('http://h', ['a', 'b'], QUIET);
    await assert.rejects(many.send({ x: 1 }), TypeError);
    many.close();
    const one = new FeedgateSocket('http://h', 't', { ...QUIET, publishToken: async () => 'secret' });
    assert.deepEqual(await one.send({ bid: 1.5 }), { topic: 't', seq: 7, epoch: 'e' });
    await one.send('"as is"', 'other.topic');
    one.close();
    assert.equal(posted[0][0], 'http://h/topics/t/events');
    assert.equal(posted[0][1].body, '{"bid":1.5}');
    assert.equal(posted[0][1].headers.authorization, 'Bearer secret');
    assert.equal(posted[1][0], 'http://h/topics/other.topic/events');
    assert.equal(posted[1][1].body, '"as is"');
  } finally {
    globalThis.fetch = realFetch;
  }
});

test('a 403 is fatal: error, then close 4403', async () => {
  const realFetch = globalThis.fetch;
  globalThis.fetch = async () => new Response('{"error":{"code":"forbidden"}}', { status: 403 });
  try {
    const s = new FeedgateSocket('http://h', 't', QUIET);
    const seen = [];
    s.onerror = () => seen.push('error');
    const closed = new Promise((r) => (s.onclose = r));
    const e = await closed;
    assert.deepEqual(seen, ['error']);
    assert.equal(e.code, 4403);
    assert.equal(e.wasClean, false);
  } finally {
    globalThis.fetch = realFetch;
  }
});

test('message events carry topic, seq, the parsed event and the cursor', async () => {
  const server = new FakeServer();
  const restore = server.install();
  try {
    server.publish('t', { bid: 1.5 });
    const s = new FeedgateSocket('http://h', 't', { ...QUIET, after: 0 });
    const e = await new Promise((r) => (s.onmessage = r));
    s.close();
    assert.ok(e instanceof FeedgateMessageEvent);
    assert.ok(e instanceof MessageEvent);
    assert.equal(e.type, 'message');
    assert.equal(e.topic, 't');
    assert.equal(e.seq, 1);
    assert.deepEqual(e.event.data, { bid: 1.5 });
    assert.equal(e.data, '{"topic":"t","seq":1,"time":0,"data":{"bid":1.5}}');
    assert.equal(e.lastEventId, '5eed5eed5eed5eed:1');
    assert.equal(e.origin, 'http://h');
    assert.equal(s.lastSeq, 1);
  } finally {
    restore();
  }
});

test('event classes have their fields', () => {
  const g = new GapEvent('t', 3, 22);
  assert.equal(g.type, 'gap');
  assert.deepEqual([g.topic, g.missed, g.resumeSeq], ['t', 3, 22]);
});
