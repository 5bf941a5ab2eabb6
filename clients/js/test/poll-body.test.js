// Poll answers: the events' texts as the server wrote them, and where a
// "from now" reader is placed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventTexts, placedAt } from '../src/conn/poll-body.js';

test('event texts keep the server bytes (99.90 stays 99.90)', () => {
  const a = '{"topic":"t","seq":1,"time":5,"data":{"p":99.90}}';
  const b = '{"topic":"t","seq":2,"time":6,"data":{"s":"}{\\"]","n":[1,{"x":[]}]}}';
  const body = `{"epoch":"e","events":[${a},${b}],"next":2}`;
  assert.deepEqual(eventTexts(body, 2), [a, b]);
  assert.deepEqual(eventTexts('{"events":[],"next":0}', 0), []);
});

test('a body not as expected gives null, never a wrong slice', () => {
  assert.equal(eventTexts('{"next":1}', 1), null);
  assert.equal(eventTexts('{"events":[1,2]}', 2), null);
  assert.equal(eventTexts('{"events":[{"a":1', 1), null);
  assert.equal(eventTexts('{"events":[{"a":1}]}', 2), null);
});

test('a reader without a position stands before the first event, else at next', () => {
  assert.equal(placedAt([{ seq: 7 }, { seq: 8 }], 8), 6);
  assert.equal(placedAt([], 12), 12);
});
