// The size of the client as an application ships it: the bundle minified
// by esbuild, then gzipped (level 9). Fails past BUDGET bytes.
//
//   node scripts/size.mjs              feedgate's size, checked
//   node scripts/size.mjs --compare    also socket.io-client's and
//       centrifuge's, installed from npm into a temporary folder and
//       minified the same way (the figures in clients/js/README.md)

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as esbuild from 'esbuild';
import { BUNDLE } from './build.mjs';

/** The budget, min+gz bytes (README.md, "Size"). */
const BUDGET = 11 * 1024;

/** The clients compared, at the versions measured. */
const OTHERS = [
  { name: 'socket.io-client', version: '4.8.4', entry: "export { io } from 'socket.io-client';" },
  { name: 'centrifuge', version: '5.8.0', entry: "export { Centrifuge } from 'centrifuge';" },
];

/** Minified and gzipped sizes of an esbuild build. */
async function measure(options) {
  const common = { ...options, bundle: true, format: 'esm', target: 'es2022', platform: 'browser', write: false, legalComments: 'none' };
  const plain = (await esbuild.build(common)).outputFiles[0].contents;
  const min = (await esbuild.build({ ...common, minify: true })).outputFiles[0].contents;
  const gz = zlib.gzipSync(min, { level: 9 }).length;
  return { bundle: plain.length, min: min.length, gz };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const line = (name, s) => console.log(`${name.padEnd(28)} bundle ${kb(s.bundle).padStart(9)}  min ${kb(s.min).padStart(9)}  min+gz ${kb(s.gz).padStart(8)} (${s.gz} B)`);

const mine = await measure(BUNDLE);
line('feedgate (clients/js)', mine);

if (process.argv.includes('--compare')) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'feedgate-size-'));
  try {
    fs.writeFileSync(path.join(tmp, 'package.json'), '{"private":true,"type":"module"}');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...OTHERS.map((o) => `${o.name}@${o.version}`)], {
      cwd: tmp,
      stdio: 'inherit',
    });
    for (const o of OTHERS) {
      line(`${o.name} ${o.version}`, await measure({ stdin: { contents: o.entry, resolveDir: tmp }, define: { 'process.env.NODE_ENV': '"production"' } }));
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (mine.gz > BUDGET) {
  console.error(`feedgate's client is ${mine.gz} B min+gz, over its budget of ${BUDGET} B: make it smaller, or raise BUDGET in scripts/size.mjs and say why in README.md`);
  process.exit(1);
}
console.log(`within the budget of ${BUDGET} B min+gz`);
