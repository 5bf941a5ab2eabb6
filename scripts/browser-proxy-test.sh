#!/usr/bin/env bash
# FeedgateSocket in Chromium through Debian's nginx: once through
# docs/nginx/feedgate.conf and once through each broken variant of it
# (scripts/nginx-variants.sh, the ones scripts/doctor-test.sh diagnoses).
# Through each, the socket must settle on a transport that delivers, and
# the server's feedgate_client_transport_switches_total must show why it
# left the ones that failed (tests/browser/proxy-paths.mjs):
#
#   variant     socket's transports     settles on  reported
#   correct     all                     ws          nothing
#   noupgrade   all                     sse         ws → sse: refused
#   buffering   sse, longpoll, poll     longpoll    sse → longpoll: buffered
#   buffer-hdr  sse, longpoll, poll     sse         nothing
#   gzip        sse, longpoll, poll     sse         nothing
#   timeout5    all                     ws          ws → ws: cut after ~5 s
#
# Each variant has its own feedgate (so the counters are its own) and its
# own nginx, on free loopback ports; the pages run side by side in one
# Chromium, so the whole test takes about half a minute. Everything started
# here is stopped on exit. Runs as root (nginx's workers then drop to an
# unprivileged user; Chromium runs with --no-sandbox, tests/browser/lib.mjs).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FEEDGATE_ROOT"

ensure_apt nginx chromium curl
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  ensure_apt nodejs npm
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  log "npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/feedgate-browser-proxy.XXXXXX")"
chmod 755 "$TMP"
PIDS=()
OK=0
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[$i]}" 2>/dev/null || true
  done
  for i in "${PIDS[@]}"; do
    wait "$i" 2>/dev/null || true
  done
  if [ "$OK" -ne 1 ]; then
    for f in "$TMP"/*.log "$TMP"/*/error.log; do
      [ -s "$f" ] || continue
      echo "---- last lines of ${f#"$TMP"/}" >&2
      tail -n 20 "$f" >&2
    done
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
bg() {
  local name="$1"
  shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
  PIDS+=("$!")
}
# shellcheck source=scripts/nginx-variants.sh
source "$FEEDGATE_ROOT/scripts/nginx-variants.sh"

log "building feedgate"
BIN="$(feedgate_bin)"

paths="{"
for name in "${NGINX_VARIANTS[@]}"; do
  port="$(free_port)"
  bg "feedgate-$name" "$BIN" serve --listen "127.0.0.1:$port" --drain-timeout 1s
  nginx_variant "$name" "$port"
  paths+="\"$name\":{\"url\":\"${NGINX_URL[$name]}\",\"direct\":\"http://127.0.0.1:$port\"},"
done
paths="${paths%,}}"
for name in "${NGINX_VARIANTS[@]}"; do
  wait_http "${NGINX_URL[$name]}/healthz" 30
done

log "FeedgateSocket in Chromium through ${#NGINX_VARIANTS[@]} nginx configurations"
FEEDGATE_URL="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["correct"]["direct"])' "$paths")" \
  FEEDGATE_PATHS="$paths" node --test --test-concurrency=1 tests/browser/proxy-paths.mjs
OK=1
log "browser proxy test passed"
