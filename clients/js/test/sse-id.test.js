// The `id:` of a one-topic SSE stream: `SEQ` (lean) or `EPOCH:SEQ` (json).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { idSeq } from '../src/conn/sse.js';

test('a lean id is the seq', () => {
  assert.equal(idSeq('17'), 17);
  assert.equal(idSeq('0'), 0);
});

test('a json id carries the epoch before the seq', () => {
  assert.equal(idSeq('9f2c4e01a7b3d5e8:17'), 17);
});

test('anything else is no seq (the connection fails rather than guess)', () => {
  for (const id of ['', 'x', '17a', 'a@1,b@2', '~AAAA', '9f2c:17']) assert.equal(idSeq(id), null, id);
});
