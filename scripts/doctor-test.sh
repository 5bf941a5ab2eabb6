#!/usr/bin/env bash
# Runs `feedgate doctor --json` through Debian's nginx in front of feedgate,
# once through docs/nginx/feedgate.conf and once through each broken
# variant of it, and checks the verdict on every transport:
#
#   variant     what is broken                               expected
#   correct     nothing (the shipped file)                   all four ok
#   buffering   SSE location: nginx's defaults — buffering   sse buffered
#               on, HTTP/1.0 to feedgate — and
#               proxy_ignore_headers X-Accel-Buffering
#   buffer-hdr  the same, but feedgate's X-Accel-Buffering   all four ok
#               header honoured (it turns buffering off)
#   noupgrade   no Upgrade/Connection headers passed         ws blocked
#   timeout5    proxy_read_timeout 5s everywhere             ws, sse, longpoll cut
#   gzip        SSE location: gzip on for text/event-stream  sse compressed (see below)
#
# The variants are built by scripts/nginx-variants.sh (shared with
# scripts/browser-proxy-test.sh).
#
# Each variant is its own nginx master (own prefix, pid, logs, temp dirs
# under a mktemp dir; the system's nginx config is never read) on a free
# loopback port; the doctors run one after another with --idle 10s, so the
# whole test takes about a minute and a half. Everything started here is
# stopped on exit. Exit status non-zero on failure.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt nginx curl

ROOT="$FEEDGATE_ROOT"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/feedgate-doctor.XXXXXX")"
# nginx's workers run as an unprivileged user when started as root.
chmod 755 "$TMP"
PIDS=()
OK=0
FAILS=0
PASSES=0
IDLE="${DOCTOR_IDLE:-10s}"

cleanup() {
  local pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[$i]}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
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

pass() { PASSES=$((PASSES + 1)); echo "ok   $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL $*"; }

log "building feedgate"
BIN="$(feedgate_bin)"

FG_PORT="$(free_port)"
FG="http://127.0.0.1:$FG_PORT"
log "feedgate on $FG"
bg feedgate "$BIN" serve --listen "127.0.0.1:$FG_PORT" --drain-timeout 2s
wait_http "$FG/healthz" 30

# shellcheck source=scripts/nginx-variants.sh
source "$ROOT/scripts/nginx-variants.sh"
declare -A URL
for name in "${NGINX_VARIANTS[@]}"; do
  nginx_variant "$name" "$FG_PORT"
  URL[$name]="${NGINX_URL[$name]}"
done
for name in "${!URL[@]}"; do
  wait_http "${URL[$name]}/healthz" 30
done

# check NAME EXPECTATIONS...: runs the doctor through variant NAME and
# checks each `transport=verdict` (or `transport.fact=value`) given.
check() {
  local name="$1" url="${URL[$1]}"
  shift
  # DOCTOR_ONLY=NAME runs one variant (while working on it).
  if [ -n "${DOCTOR_ONLY:-}" ] && [ "$DOCTOR_ONLY" != "$name" ]; then return 0; fi
  log "doctor through nginx: $name ($url, --idle $IDLE)"
  "$BIN" doctor "$url" --idle "$IDLE" --json "$TMP/$name.json" >"$TMP/$name.txt" 2>&1 || true
  sed 's/^/    /' "$TMP/$name.txt"
  local got
  for want in "$@"; do
    got="$(python3 - "$TMP/$name.json" "$want" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
key = sys.argv[2].split("=", 1)[0]
t, _, fact = key.partition(".")
r = next((r for r in doc["transports"] if r["transport"] == t), None)
if r is None:
    print("missing")
elif fact:
    print(r["facts"].get(fact))
else:
    print(r["verdict"])
PY
)" || got="no JSON"
    if [ "$got" = "${want#*=}" ]; then
      pass "$name: ${want%%=*} is $got"
    else
      fail "$name: ${want%%=*} is $got, expected ${want#*=}"
    fi
  done
}

check correct ws=ok sse=ok longpoll=ok poll=ok
check buffering sse=buffered ws=ok longpoll=ok poll=ok
check buffer-hdr sse=ok ws=ok longpoll=ok poll=ok
check noupgrade ws=blocked sse=ok longpoll=ok poll=ok
check timeout5 ws=cut sse=cut longpoll=cut poll=ok
# nginx's gzip flushes what feedgate flushes when it does not buffer, so
# events still arrive promptly — compressed. The doctor says so and
# advises `gzip off;`; what it must not do is miss the compression.
check gzip sse.content_encoding=gzip sse=ok ws=ok longpoll=ok poll=ok

# The recommendation follows the verdicts.
rec() { python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["recommended"]))' "$TMP/$1.json"; }
for want in "correct=ws,sse,longpoll,poll" "noupgrade=sse,longpoll,poll" "timeout5=poll"; do
  [ -f "$TMP/${want%%=*}.json" ] || [ -z "${DOCTOR_ONLY:-}" ] || continue
  got="$(rec "${want%%=*}" 2>/dev/null || echo none)"
  if [ "$got" = "${want#*=}" ]; then
    pass "${want%%=*}: recommended $got"
  else
    fail "${want%%=*}: recommended $got, expected ${want#*=}"
  fi
done

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ] || exit 1
OK=1
log "doctor test passed"
