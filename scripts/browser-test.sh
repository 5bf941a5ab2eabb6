#!/usr/bin/env bash
# Browser tests: the demo page and the browser client (clients/js, served as
# /feedgate.js; its npm pack tarball too) in a real browser (Debian's chromium,
# driven by npm's playwright-core; no browser download).
#
# Installs what is missing, builds feedgate, starts two servers on free
# 127.0.0.1 ports — `serve --demo` (fast publisher, short retention so gaps
# can be provoked) and one that requires tokens (--jwt-secret,
# --publish-token) — runs tests/browser/*.test.mjs with node's test runner,
# and always stops the servers. Exits non-zero when a test fails.
# Leaves target/e2e/demo.png (the README screenshot; copy it to
# docs/demo.png when the page changes) and the servers' logs there.
#
# BROWSER_TESTS="tests/browser/x.test.mjs …" runs only those files.
# restart.test.mjs starts (and restarts) its own server on the file log,
# from FEEDGATE_BIN; https-h2.test.mjs and demo-https.test.mjs start their
# own `serve --tls-self-signed` (tls.mjs), the latter leaving
# target/e2e/demo-https.png.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FEEDGATE_ROOT"

ensure_apt chromium
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  ensure_apt nodejs npm
fi

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  log "npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

bin="$(feedgate_bin)"
out="$FEEDGATE_ROOT/target/e2e"
mkdir -p "$out"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# start_server VAR NAME [K=V…] -- ARGS…: runs `feedgate serve --listen
# 127.0.0.1:0 ARGS…` with K=V in its environment and sets VAR to its base
# URL. Port 0 and the logged address: no race for a port chosen in advance.
start_server() {
  local var="$1" name="$2" logf="$out/server-$2.log" url="" envs=()
  shift 2
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$bin" serve --listen 127.0.0.1:0 "$@" >"$logf" 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 100); do
    url="$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$logf" | head -n1 || true)"
    [ -n "$url" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    cat "$logf" >&2
    echo "feedgate ($name) did not start" >&2
    return 1
  fi
  wait_http "$url/healthz" 30
  printf -v "$var" '%s' "$url"
}

demo_url="" auth_url=""
log "feedgate serve --demo"
start_server demo_url demo -- --demo --demo-rate 20 --retention-events 300

# Secrets for the throw-away auth server only, passed in its environment
# (as docs/security.md recommends) and to the tests.
jwt_secret="browser-test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
publish_token="publish-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
log "feedgate serve (tokens required)"
start_server auth_url auth FEEDGATE_JWT_SECRET="$jwt_secret" FEEDGATE_PUBLISH_TOKEN="$publish_token" --

log "browser tests against $demo_url and $auth_url"
# shellcheck disable=SC2086 # BROWSER_TESTS is a list of files
FEEDGATE_URL="$demo_url" FEEDGATE_AUTH_URL="$auth_url" FEEDGATE_BIN="$bin" \
  FEEDGATE_TEST_JWT_SECRET="$jwt_secret" FEEDGATE_TEST_PUBLISH_TOKEN="$publish_token" \
  node --test --test-concurrency=1 ${BROWSER_TESTS:-tests/browser/*.test.mjs}
