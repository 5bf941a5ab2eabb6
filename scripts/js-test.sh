#!/usr/bin/env bash
# The browser client as a package (clients/js), without a browser or a
# server: npm ci, the type checks (the sources with // @ts-check, and the
# example consumer against the exported declarations), the unit tests
# (node --test), the checked-in bundle and declarations not stale
# against src/, the size budget, and `npm pack` installed into a scratch
# project, imported in node and type-checked there.
# Usage: ./scripts/js-test.sh
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FEEDGATE_ROOT/clients/js"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  ensure_apt nodejs npm
fi

log "npm ci (clients/js)"
npm ci --no-audit --no-fund --loglevel=error

log "tsc: src/ (checkJs) and examples/consumer.ts"
npm run --silent typecheck

log "node --test clients/js/test"
node --test test/

log "dist/ built from src/"
node scripts/build.mjs --check

log "size (esbuild --minify, gzip -9)"
node scripts/size.mjs

log "npm pack, installed into a scratch project"
out="$FEEDGATE_ROOT/target/js-pack"
rm -rf "$out"
node scripts/pack.mjs "$out"
