// `npm pack`, then the tarball installed into a scratch project, as an
// application would get it from a registry:
//
//   node scripts/pack.mjs [DIR]   packs into DIR (default: a temporary
//       folder), installs into DIR/scratch, imports it in node, and
//       type-checks examples/consumer.ts against the installed types
//
// tests/browser/package.test.mjs imports packAndInstall() and loads the
// installed bundle in Chromium.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** What the tarball must hold, and nothing from outside these. */
const MUST = ['package.json', 'README.md', 'dist/feedgate.js', 'dist/types/feedgate.d.ts', 'dist/types/socket.d.ts'];
const ALLOWED = /^(package\.json|README\.md|dist\/feedgate\.js|dist\/types\/.+\.d\.ts)$/;

const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

/**
 * Packs the package into `dir` and installs the tarball into
 * `dir/scratch`. Returns the tarball and the installed package's folder.
 * @param {string} dir
 */
export function packAndInstall(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], ROOT));
  const files = packed.files.map((f) => f.path).sort();
  const missing = MUST.filter((f) => !files.includes(f));
  const stray = files.filter((f) => !ALLOWED.test(f));
  if (missing.length || stray.length) throw new Error(`the tarball is wrong: missing ${missing}, not meant to be there ${stray}`);
  const tarball = path.join(dir, packed.filename);
  const scratch = path.join(dir, 'scratch');
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(scratch);
  fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  npm(['install', tarball], scratch);
  return { tarball, files, scratch, installed: path.join(scratch, 'node_modules', 'feedgate') };
}

/** Imports the installed package in node, from the scratch project. */
function importInNode(scratch) {
  const check = `
    import assert from 'node:assert/strict';
    import { FeedgateSocket, TRANSPORTS, diagnose, FeedgateMessageEvent } from 'feedgate';
    import pkg from 'feedgate/package.json' with { type: 'json' };
    assert.deepEqual([...TRANSPORTS], ['ws', 'sse', 'longpoll', 'poll']);
    assert.equal(typeof diagnose, 'function');
    assert.ok(FeedgateMessageEvent.prototype instanceof MessageEvent);
    const s = new FeedgateSocket('http://127.0.0.1:9', 't', { transports: ['poll'], telemetry: false });
    assert.equal(s.readyState, FeedgateSocket.CONNECTING);
    s.close();
    console.log('imported feedgate ' + pkg.version + ' in node ' + process.version);
  `;
  fs.writeFileSync(path.join(scratch, 'check.mjs'), check);
  return execFileSync(process.execPath, ['check.mjs'], { cwd: scratch, encoding: 'utf8' }).trim();
}

/** Type-checks the example consumer against the installed declarations. */
function typecheckInstalled(scratch) {
  for (const f of ['consumer.ts', 'tsconfig.json']) fs.copyFileSync(path.join(ROOT, 'examples', f), path.join(scratch, f));
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(scratch, 'tsconfig.json')], { stdio: 'inherit' });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] ? path.resolve(process.argv[2]) : fs.mkdtempSync(path.join(os.tmpdir(), 'feedgate-pack-'));
  const { tarball, files, scratch } = packAndInstall(dir);
  console.log(`${path.basename(tarball)}: ${files.length} files, ${fs.statSync(tarball).size} bytes`);
  console.log(importInNode(scratch));
  typecheckInstalled(scratch);
  console.log('examples/consumer.ts type-checks against the installed types');
  if (!process.argv[2]) fs.rmSync(dir, { recursive: true, force: true });
}
