// The package's manifest: an ES module without side effects, types and
// code exported, the crate's version.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const cargo = fs.readFileSync(new URL('../../../Cargo.toml', import.meta.url), 'utf8');

test("version is Cargo.toml's package version", () => {
  const m = /^\[package\][^[]*?^version\s*=\s*"([^"]+)"/m.exec(cargo);
  assert.ok(m, 'Cargo.toml has a [package] version');
  assert.equal(pkg.version, m[1]);
});

test('an ES module without side effects, exporting types and code', () => {
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.sideEffects, false);
  const main = pkg.exports['.'];
  assert.deepEqual(Object.keys(main), ['types', 'default'], 'types first, as TypeScript requires');
  for (const file of [main.types, main.default]) assert.ok(fs.existsSync(new URL(`../${file}`, import.meta.url)), file);
});

test('the exports are what the README promises', async () => {
  const m = await import('../src/feedgate.js');
  assert.deepEqual(Object.keys(m).sort(), [
    'FeedgateCloseEvent',
    'FeedgateMessageEvent',
    'FeedgateSocket',
    'GapEvent',
    'ResetEvent',
    'TRANSPORTS',
    'TopicErrorEvent',
    'TransportChangeEvent',
    'diagnose',
  ]);
  const dist = await import('../dist/feedgate.js');
  assert.deepEqual(Object.keys(dist).sort(), Object.keys(m).sort());
});
