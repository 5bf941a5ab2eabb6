// Cursors, LIST items and LIST building, and the endpoint URLs made of them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NO_EPOCH, checkTopic, cursorText, listText, parseCursor, splitItem, startOf } from '../src/cursor.js';
import { listUrl, topicUrl, wsUrl } from '../src/endpoints.js';

const E = '9f2c4e01a7b3d5e8';

test('parseCursor reads N, EPOCH:N, numbers and nothing', () => {
  assert.deepEqual(parseCursor(undefined), { epoch: null, seq: null });
  assert.deepEqual(parseCursor(null), { epoch: null, seq: null });
  assert.deepEqual(parseCursor(0), { epoch: null, seq: 0 });
  assert.deepEqual(parseCursor('17'), { epoch: null, seq: 17 });
  assert.deepEqual(parseCursor(`${E}:17`), { epoch: E, seq: 17 });
  assert.deepEqual(parseCursor(`${NO_EPOCH}:0`), { epoch: NO_EPOCH, seq: 0 });
});

test('parseCursor refuses anything else with a SyntaxError', () => {
  for (const bad of ['', '-1', '1.5', 'abc', `${E}:`, `${E.toUpperCase()}:1`, `${E.slice(1)}:1`, `${E}:1:2`, ' 1']) {
    assert.throws(() => parseCursor(bad), SyntaxError, JSON.stringify(bad));
  }
});

test('cursorText writes what parseCursor reads', () => {
  assert.equal(cursorText({ epoch: E, seq: 3 }), `${E}:3`);
  assert.equal(cursorText({ epoch: null, seq: 3 }), '3');
  for (const c of ['0', '42', `${E}:9`]) assert.equal(cursorText(parseCursor(c)), c);
});

test('topic names as the server checks them', () => {
  assert.equal(checkTopic('prices.eu:1_a-b'), 'prices.eu:1_a-b');
  assert.equal(checkTopic('x'.repeat(128)).length, 128);
  for (const bad of ['', 'a b', 'a,b', 'a@b', 'é', 'x'.repeat(129), 'a/b']) assert.throws(() => checkTopic(bad), SyntaxError);
});

test('splitItem: TOPIC or TOPIC@CURSOR', () => {
  assert.deepEqual(splitItem('prices'), ['prices', undefined]);
  assert.deepEqual(splitItem('news@0'), ['news', '0']);
  assert.deepEqual(splitItem(`a@${E}:5`), ['a', `${E}:5`]);
  assert.throws(() => splitItem('bad topic@1'), SyntaxError);
});

test('startOf: one cursor for all topics, or one per topic', () => {
  assert.equal(startOf(5, 'a'), 5);
  assert.equal(startOf(undefined, 'a'), undefined);
  assert.equal(startOf(null, 'a'), null);
  assert.equal(startOf({ a: 3, b: `${E}:1` }, 'b'), `${E}:1`);
  assert.equal(startOf({ a: 3 }, 'c'), undefined);
});

test('listText: each topic with its cursor, unplaced ones bare, in order', () => {
  const pos = new Map([
    ['a', { epoch: E, seq: 17 }],
    ['b', { epoch: null, seq: 3 }],
    ['c', { epoch: null, seq: null }],
    ['d', { epoch: null, seq: 0 }],
  ]);
  assert.equal(listText(pos), `a@${E}:17,b@3,c,d@0`);
  assert.equal(listText(new Map()), '');
});

test('topicUrl: after and epoch from the position, then the parameters', () => {
  assert.equal(topicUrl('http://h:1', 'a.b', 'sse', { epoch: E, seq: 4 }, { token: 't k' }), `http://h:1/topics/a.b/sse?after=4&epoch=${E}&token=t+k`);
  assert.equal(topicUrl('http://h:1/base', 'a', 'poll', { epoch: null, seq: null }, {}), 'http://h:1/base/topics/a/poll');
});

test('listUrl: the LIST unescaped, first', () => {
  assert.equal(listUrl('http://h', 'ws', `a@${E}:1,b`, { encoding: 'lean' }), `http://h/ws?topics=a@${E}:1,b&encoding=lean`);
  assert.equal(listUrl('http://h', 'poll', '', { x: '1' }), 'http://h/poll?x=1');
});

test('wsUrl: ws for http, wss for https', () => {
  assert.equal(wsUrl('http://h/ws?topics=a'), 'ws://h/ws?topics=a');
  assert.equal(wsUrl('https://h/x'), 'wss://h/x');
});
