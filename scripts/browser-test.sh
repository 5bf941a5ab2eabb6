#!/usr/bin/env bash
# Browser tests: the demo page and clients/js/feedgate.js in a real browser
# (Debian's chromium, driven by npm's playwright-core; no browser download).
#
# Installs what is missing, builds feedgate, starts `feedgate serve --demo`
# on a free 127.0.0.1 port, runs tests/browser/*.test.mjs with node's test
# runner, and always stops the server. Exits non-zero when a test fails.
# Leaves target/e2e/demo.png (the README screenshot; copy it to docs/demo.png
# when the page changes) and target/e2e/server.log.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FEEDGATE_ROOT"

ensure_apt chromium
command -v node >/dev/null && command -v npm >/dev/null || ensure_apt nodejs npm

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  log "npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

bin="$(feedgate_bin)"
out="$FEEDGATE_ROOT/target/e2e"
mkdir -p "$out"
: >"$out/server.log"

# Port 0: the server picks a free port and logs its address, so no race
# with other processes for a port chosen in advance.
log "feedgate serve --demo"
"$bin" serve --demo --demo-rate 20 --retention-events 300 --listen 127.0.0.1:0 >"$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT

url=""
for _ in $(seq 1 100); do
  url="$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$out/server.log" | head -n1 || true)"
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$out/server.log" >&2; echo "feedgate exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$out/server.log" >&2; echo "feedgate did not report its address" >&2; exit 1; }
wait_http "$url/healthz" 30

log "browser tests against $url"
FEEDGATE_URL="$url" node --test --test-concurrency=1 ${BROWSER_TESTS:-tests/browser/*.test.mjs}
