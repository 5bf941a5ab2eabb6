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

# variant NAME SED-SCRIPT: docs/nginx/feedgate.conf with the addresses
# substituted and SED-SCRIPT applied, run by its own nginx at URL[NAME].
declare -A URL
variant() {
  local name="$1" edit="$2" port dir
  port="$(free_port)"
  dir="$TMP/$name"
  mkdir -p "$dir"
  sed -e "s/server 127\.0\.0\.1:8080;/server 127.0.0.1:$FG_PORT;/" \
    -e "s/listen 80;/listen 127.0.0.1:$port;/" \
    -e "s|/var/log/nginx/feedgate-access.log|$dir/access.log|" \
    -e "$edit" \
    "$ROOT/docs/nginx/feedgate.conf" >"$dir/feedgate.conf"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log notice;
events { worker_connections 256; }
http {
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/feedgate.conf;
}
EOF
  nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" -t -q
  bg "nginx-$name" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
  URL[$name]="http://127.0.0.1:$port"
}

# Each edit must change the file, or the variant would silently test the
# correct config: check that the broken directive is really there.
# must_have NAME TEXT
must_have() {
  grep -qF -- "$2" "$TMP/$1/feedgate.conf" || {
    echo "variant $1: docs/nginx/feedgate.conf no longer has what this test edits ($2)" >&2
    exit 1
  }
}

# The SSE location is the block that starts at its regex and ends at the
# first closing brace; the other edits apply to the whole file.
SSE_BLOCK='/location ~ \^\/(topics\/\[\^\/\]+|probe)\/sse\$ {/,/}/'
variant correct ''
# Buffering needs nginx's default HTTP/1.0 to the upstream: over HTTP/1.1
# nginx hands each chunk of feedgate's chunked stream on as it parses it,
# buffering on or not (nginx 1.22), so events are not held.
variant buffering \
  "${SSE_BLOCK}s/proxy_buffering off;/proxy_buffering on; proxy_http_version 1.0; proxy_ignore_headers X-Accel-Buffering;/"
must_have buffering 'proxy_ignore_headers X-Accel-Buffering;'
variant buffer-hdr "${SSE_BLOCK}s/proxy_buffering off;/proxy_buffering on; proxy_http_version 1.0;/"
must_have buffer-hdr 'proxy_buffering on; proxy_http_version 1.0;'
variant noupgrade \
  '/proxy_set_header Upgrade \$http_upgrade;/d; /proxy_set_header Connection \$connection_upgrade;/d'
if grep -q 'proxy_set_header Upgrade' "$TMP/noupgrade/feedgate.conf"; then
  echo "variant noupgrade still passes Upgrade" >&2
  exit 1
fi
variant timeout5 's/proxy_read_timeout [0-9]*s;/proxy_read_timeout 5s;/'
must_have timeout5 'proxy_read_timeout 5s;'
variant gzip "${SSE_BLOCK}s/gzip off;/gzip on; gzip_types text\/event-stream;/"
must_have gzip 'gzip_types text/event-stream;'
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
