// Builds dist/ from src/: dist/feedgate.js, the one ES module the server
// embeds (src/assets.rs) and the package exports, bundled by esbuild; and
// dist/types/, the declarations tsc generates from the JSDoc types.
//
//   node scripts/build.mjs            writes dist/
//   node scripts/build.mjs --check    builds into a temporary folder and
//                                     fails when dist/ differs (stale)

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

/** The first line of the bundle; src/assets.rs checks its version. */
export const BANNER = `// feedgate.js ${version}: built from clients/js/src by clients/js/scripts/build.mjs (do not edit; see clients/js/README.md)`;

/**
 * The doctor's fixture holds the verdict rules and the test cases both
 * suites run: only the rules go into the bundle.
 * @type {esbuild.Plugin}
 */
const rulesOnly = {
  name: 'verdict-rules-only',
  setup(build) {
    build.onLoad({ filter: /verdicts\.json$/ }, async (args) => {
      const { rules } = JSON.parse(await fs.promises.readFile(args.path, 'utf8'));
      return { contents: JSON.stringify({ rules }), loader: 'json' };
    });
  },
};

/** esbuild's options for the bundle; scripts/size.mjs minifies the same. */
export const BUNDLE = {
  entryPoints: [path.join(ROOT, 'src/feedgate.js')],
  bundle: true,
  format: /** @type {const} */ ('esm'),
  target: 'es2022',
  platform: /** @type {const} */ ('browser'),
  plugins: [rulesOnly],
  legalComments: /** @type {const} */ ('none'),
  charset: /** @type {const} */ ('utf8'),
};

/** Builds into `out`: feedgate.js and types/. */
async function build(out) {
  fs.rmSync(out, { recursive: true, force: true });
  await esbuild.build({ ...BUNDLE, outfile: path.join(out, 'feedgate.js'), banner: { js: BANNER } });
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.json'), '--declarationDir', path.join(out, 'types')], {
    stdio: 'inherit',
  });
}

/** Every file under `dir`, relative, sorted. */
function files(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
    .sort();
}

async function main() {
  const dist = path.join(ROOT, 'dist');
  if (!process.argv.includes('--check')) {
    await build(dist);
    console.log(`built ${files(dist).length} files into ${path.relative(process.cwd(), dist) || '.'}`);
    return;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'feedgate-js-build-'));
  try {
    await build(tmp);
    const want = files(tmp);
    const have = files(dist);
    const stale = [...new Set([...want, ...have])].filter((f) => {
      const a = path.join(tmp, f);
      const b = path.join(dist, f);
      return !fs.existsSync(a) || !fs.existsSync(b) || !fs.readFileSync(a).equals(fs.readFileSync(b));
    });
    if (stale.length > 0) {
      console.error(`clients/js/dist is stale (${stale.join(', ')}): run \`npm run build\` in clients/js and commit dist/`);
      process.exit(1);
    }
    console.log(`clients/js/dist matches src/ (${want.length} files)`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
