// The lean decoder: seqs counted from `next`, the topic in front of the
// data on multiplexed streams, poll answers that end at `next`.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONTROL_MARK, LeanSeqs, leanBatch, splitTopic } from '../src/lean.js';

test('seqs count on from each control message, per topic', () => {
  const s = new LeanSeqs();
  s.at('a', 16); // ready: next 16
  assert.equal(s.next('a'), 17);
  assert.equal(s.next('a'), 18);
  s.at('a', 21); // gap: resume after 21
  assert.equal(s.next('a'), 22);
  assert.equal(s.next('b'), 1, 'a topic without a control message yet starts at 1');
  s.at('a', 0); // reset
  assert.equal(s.next('a'), 1);
  s.at('a', undefined); // a v1 message without next changes nothing
  assert.equal(s.next('a'), 2);
});

test('a multiplexed lean event is TOPIC, a space, the data', () => {
  assert.deepEqual(splitTopic('prices {"bid":1.5}'), ['prices', '{"bid":1.5}']);
  assert.deepEqual(splitTopic('t "a b c"'), ['t', '"a b c"']);
  assert.equal(splitTopic('{"bid":1.5}'), null);
  assert.equal(splitTopic(' x'), null);
});

test('control frames are marked, events never are', () => {
  assert.equal(CONTROL_MARK, '#');
  for (const data of ['{}', '[]', '"#"', '1', 'null']) assert.ok(!data.startsWith(CONTROL_MARK));
});

test('a lean poll answer: the events end at next', () => {
  assert.deepEqual(leanBatch(18, [{ bid: 1.5 }, { bid: 1.6 }]), [
    { text: '{"bid":1.5}', seq: 17 },
    { text: '{"bid":1.6}', seq: 18 },
  ]);
  assert.deepEqual(leanBatch(5, []), []);
  assert.deepEqual(leanBatch(3, ['x', 2, null]), [
    { text: '"x"', seq: 1 },
    { text: '2', seq: 2 },
    { text: 'null', seq: 3 },
  ]);
});
