// Reconnect backoff: doubling, capped, full jitter, Retry-After honoured.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoff, restartDelay } from '../src/backoff.js';

const top = () => 0.999999;
const bottom = () => 0;

test('the delay doubles per round up to the cap', () => {
  const d = [1, 2, 3, 4, 5, 6, 7, 8].map((r) => Math.round(backoff(r, 500, 15000, 0, top)));
  assert.deepEqual(d, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  assert.equal(Math.round(backoff(0, 500, 15000, 0, top)), 500, 'round 0 waits like round 1');
});

test('full jitter: anywhere from 0 to the delay', () => {
  assert.equal(backoff(3, 500, 15000, 0, bottom), 0);
  assert.equal(backoff(3, 500, 15000, 0, () => 0.5), 1000);
  const waits = Array.from({ length: 200 }, () => backoff(4, 500, 15000, 0));
  assert.ok(waits.every((w) => w >= 0 && w < 4000));
  assert.ok(new Set(waits).size > 150, 'random waits spread out');
});

test('a Retry-After is the least wait, within the cap', () => {
  assert.equal(backoff(1, 500, 15000, 3000, bottom), 3000);
  assert.equal(backoff(1, 500, 15000, 3000, top), 3000);
  assert.equal(backoff(1, 500, 15000, 60000, bottom), 15000);
});

test("after a restart: the server's delay, or a random one within the spread", () => {
  assert.equal(restartDelay(1234, 5000, top), 1234);
  assert.equal(restartDelay(0, 5000, top), 0);
  assert.equal(restartDelay(null, 5000, () => 0.5), 2500);
});
