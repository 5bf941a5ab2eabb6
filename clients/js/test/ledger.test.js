// The exactly-once rules, one topic position at a time.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NO_EPOCH } from '../src/cursor.js';
import { Ledger } from '../src/ledger.js';

const E = '9f2c4e01a7b3d5e8';
const F = '0c1d0c1d0c1d0c1d';

test('events pass once, in order; a jump is refused', () => {
  const l = new Ledger();
  l.follow('a', { epoch: null, seq: 0 });
  l.place('a', E, 0);
  assert.equal(l.take('a', 5), 'deliver', 'after 0: the oldest retained, whatever its seq');
  assert.equal(l.take('a', 6), 'deliver');
  assert.equal(l.take('a', 6), 'duplicate');
  assert.equal(l.take('a', 3), 'duplicate');
  assert.equal(l.take('a', 8), 'jump');
  assert.equal(l.cursorOf('a'), `${E}:6`);
  assert.equal(l.take('b', 1), 'unfollowed');
});

test('from now: nothing passes before the server placed it', () => {
  const l = new Ledger();
  l.follow('a', { epoch: null, seq: null });
  assert.equal(l.take('a', 1), 'unfollowed');
  assert.equal(l.cursorOf('a'), null);
  l.place('a', E, 10);
  assert.deepEqual(l.get('a'), { epoch: E, seq: 10 });
  assert.equal(l.take('a', 11), 'deliver');
});

test('a placed position stays; an unpublished topic takes its first epoch', () => {
  const l = new Ledger();
  l.follow('a', { epoch: E, seq: 4 });
  l.place('a', F, 9);
  assert.deepEqual(l.get('a'), { epoch: E, seq: 4 }, 'a mismatch comes as a reset, never here');
  l.follow('b', { epoch: null, seq: null });
  l.place('b', NO_EPOCH, 0);
  l.place('b', E, 0);
  assert.deepEqual(l.get('b'), { epoch: E, seq: 0 });
});

test('a gap is counted once, from what was delivered', () => {
  const l = new Ledger();
  l.follow('a', { epoch: E, seq: 10 });
  assert.equal(l.skip('a', 99, 15), 4);
  assert.equal(l.skip('a', 4, 15), null, 'the same gap from another connection');
  assert.equal(l.take('a', 15), 'deliver');
  l.follow('b', { epoch: null, seq: null });
  assert.equal(l.skip('b', 7, 8), 7, 'unplaced: what the server counted');
  assert.equal(l.skip('c', 1, 2), null);
});

test('a reset starts the topic over in the new epoch', () => {
  const l = new Ledger();
  l.follow('a', { epoch: E, seq: 40 });
  assert.equal(l.restart('a', F), true);
  assert.deepEqual(l.get('a'), { epoch: F, seq: 0 });
  assert.equal(l.take('a', 1), 'deliver');
  assert.equal(l.restart('zz', F), false);
});

test('topics keep their order; the LIST resumes each', () => {
  const l = new Ledger();
  assert.equal(l.follow('b', { epoch: E, seq: 2 }), true);
  assert.equal(l.follow('a', { epoch: null, seq: null }), true);
  assert.equal(l.follow('b', { epoch: null, seq: 0 }), false);
  assert.deepEqual(l.topics(), ['b', 'a']);
  assert.equal(l.list(), `b@${E}:2,a`);
  assert.equal(l.forget('b'), true);
  assert.equal(l.forget('b'), false);
  assert.equal(l.size, 1);
  const copy = l.get('a');
  copy.seq = 99;
  assert.equal(l.get('a').seq, null, 'get returns a copy');
});
