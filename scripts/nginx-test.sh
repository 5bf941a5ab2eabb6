#!/usr/bin/env bash
# Runs Debian's nginx with docs/nginx/feedgate.conf in front of feedgate and
# checks every transport through it:
#   - poll, longpoll, sse and ws each deliver published events in order
#     (feedgate tail --count through nginx; publishes through nginx too),
#     both retained ones and ones published while the subscriber waits;
#   - an SSE event arrives through nginx promptly (< 1 s after its publish:
#     a buffering proxy holds it), and, as a negative control, is held back
#     by a deliberately buffering location, which proves the probe can tell;
#   - the page's own origin (on a non-default port) may upgrade to WebSocket
#     and publish through nginx, a foreign origin may not;
#   - a ?token= query parameter (subscriber JWT) stays out of the access log;
#   - a long poll is held through nginx until its timeout and answered;
#   - a publish over --max-body gets a JSON 413, and a stopped feedgate a
#     JSON 503 (not nginx's HTML 502);
#   - /metrics is not exposed through the proxy.
# nginx runs as its own master process with everything (config, pid, logs,
# temp dirs) under a mktemp dir; the system's nginx config is never read.
# Everything started here is stopped on exit. Exit status non-zero on failure.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt nginx curl

ROOT="$FEEDGATE_ROOT"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/feedgate-nginx.XXXXXX")"
# nginx's workers run as an unprivileged user when started as root; they
# must be able to reach the temp dirs the master creates in here.
chmod 755 "$TMP"
PIDS=()
OK=0
FAILS=0
PASSES=0

cleanup() {
  local pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[$i]}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$OK" -ne 1 ]; then
    for f in "$TMP"/*.log "$TMP"/nginx/error.log; do
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

# Waits (bounded) until FILE has at least N lines.
wait_lines() {
  local file="$1" n="$2" secs="$3" i=0
  while [ "$(wc -l <"$file" 2>/dev/null || echo 0)" -lt "$n" ]; do
    [ "$i" -ge $((secs * 10)) ] && return 1
    sleep 0.1
    i=$((i + 1))
  done
}

log "building feedgate"
BIN="$(feedgate_bin)"

FG_PORT="$(free_port)"
FG="http://127.0.0.1:$FG_PORT"
log "feedgate on $FG"
bg feedgate "$BIN" serve --listen "127.0.0.1:$FG_PORT" --drain-timeout 2s
wait_http "$FG/healthz" 30

NG_PORT="$(free_port)"
BAD_PORT="$(free_port)"
NG="http://127.0.0.1:$NG_PORT"
BAD="http://127.0.0.1:$BAD_PORT"
log "nginx on $NG (docs/nginx/feedgate.conf); a buffering control on $BAD"
mkdir -p "$TMP/nginx"
sed -e "s/server 127\.0\.0\.1:8080;/server 127.0.0.1:$FG_PORT;/" \
  -e "s/listen 80;/listen 127.0.0.1:$NG_PORT;/" \
  -e "s|/var/log/nginx/feedgate-access.log|$TMP/nginx/feedgate-access.log|" \
  "$ROOT/docs/nginx/feedgate.conf" >"$TMP/nginx/feedgate.conf"
for want in "server 127.0.0.1:$FG_PORT;" "listen 127.0.0.1:$NG_PORT;" "$TMP/nginx/feedgate-access.log"; do
  grep -qF "$want" "$TMP/nginx/feedgate.conf" || {
    echo "docs/nginx/feedgate.conf no longer has what this test substitutes ($want)" >&2
    exit 1
  }
done
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log notice;
events { worker_connections 512; }
http {
    access_log $TMP/nginx/access.log;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;

    include $TMP/nginx/feedgate.conf;

    # Negative control, not part of the shipped config: a bare proxy_pass
    # with nginx's defaults (HTTP/1.0 to the upstream, buffering on) that
    # ignores feedgate's X-Accel-Buffering header, as some proxies and CDNs
    # do. It holds an SSE stream back; the probe must notice.
    server {
        listen 127.0.0.1:$BAD_PORT;
        location / {
            proxy_pass http://feedgate;
            proxy_ignore_headers X-Accel-Buffering;
        }
    }
}
EOF
NGINX=(nginx -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log")
"${NGINX[@]}" -t -q
bg nginx "${NGINX[@]}"
wait_http "$NG/healthz" 30
wait_http "$BAD/healthz" 30

log "each transport delivers published events in order through nginx"
# Two events are published before the subscribers start (delivered from
# retention with --after 0), three while they wait (delivered live).
for t in poll longpoll sse ws; do
  for n in 1 2; do "$BIN" publish "smoke-$t" "{\"n\":$n}" --url "$NG" >/dev/null; done
  bg "tail-$t" timeout 20 "$BIN" tail "smoke-$t" --transport "$t" --after 0 --count 5 \
    --poll-interval 200ms --url "$NG"
done
for t in poll longpoll sse ws; do
  wait_lines "$TMP/tail-$t.out" 2 10 || fail "$t: retained events not delivered through nginx"
  for n in 3 4 5; do "$BIN" publish "smoke-$t" "{\"n\":$n}" --url "$NG" >/dev/null; done
done
for t in poll longpoll sse ws; do
  wait_lines "$TMP/tail-$t.out" 5 15 || true
  got="$(grep -o '"seq":[0-9]*,.*"data":{"n":[0-9]*}' "$TMP/tail-$t.out" |
    sed -E 's/"seq":([0-9]+),.*"n":([0-9]+)\}/\1=\2/' | tr '\n' ' ')"
  if [ "$got" = "1=1 2=2 3=3 4=4 5=5 " ]; then
    pass "$t through nginx: seq=data 1..5 in order"
  else
    fail "$t through nginx: got [${got}], expected [1=1 2=2 3=3 4=4 5=5 ]"
  fi
done

# The requests really went through nginx, on each transport's own path
# (the WebSocket one upgraded: 101).
for t in poll longpoll sse ws; do
  want=200
  [ "$t" = ws ] && want=101
  if grep -qF "\"GET /topics/smoke-$t/$t HTTP/1.1\" $want " "$TMP/nginx/feedgate-access.log"; then
    pass "$t: nginx access log shows GET /topics/smoke-$t/$t answered $want"
  else
    fail "$t: no GET /topics/smoke-$t/$t answered $want in nginx's access log"
  fi
done

log "an SSE event arrives through nginx promptly"
if out="$(python3 "$ROOT/scripts/ops_probe.py" sse-latency "$FG" prompt-direct --max 1.0)"; then
  pass "direct to feedgate (baseline): ${out#ok   }"
else
  fail "direct to feedgate: $out"
fi
if out="$(python3 "$ROOT/scripts/ops_probe.py" sse-latency "$NG" prompt --max 1.0)"; then
  pass "through nginx: ${out#ok   }"
else
  fail "through nginx: $out"
fi
if out="$(python3 "$ROOT/scripts/ops_probe.py" sse-latency "$BAD" prompt-bad --max 1.0 --expect-late)"; then
  pass "negative control, buffering location: ${out#ok   }"
else
  fail "negative control: the probe did not see a buffering proxy hold the stream: $out"
fi

log "browser origins through nginx (Host passed with its port)"
ws_upgrade() { # ws_upgrade ORIGIN: the status of a WebSocket upgrade through nginx
  curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H 'Connection: Upgrade' \
    -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H "Origin: $1" "$NG/topics/origin/ws" || true
}
publish_from() { # publish_from ORIGIN: the status of a publish through nginx
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Origin: $1" \
    -H 'content-type: application/json' -d '{"o":1}' "$NG/topics/origin/events" || true
}
# The page's own origin, on a non-default port, as a browser sends it.
if [ "$(ws_upgrade "$NG")" = 101 ] && [ "$(publish_from "$NG")" = 201 ]; then
  pass "same origin ($NG): WebSocket upgrade 101, publish 201"
else
  fail "same origin ($NG): upgrade $(ws_upgrade "$NG"), publish $(publish_from "$NG"), expected 101, 201"
fi
if [ "$(ws_upgrade http://evil.example)" = 403 ] && [ "$(publish_from http://evil.example)" = 403 ]; then
  pass "foreign origin: WebSocket upgrade and publish refused 403"
else
  fail "foreign origin: expected 403 for upgrade and publish"
fi

log "a ?token= query parameter stays out of nginx's access log"
curl -fsS -o /dev/null --max-time 5 "$NG/topics/tok/poll?after=0&token=secret-jwt-d41d8cd9"
if grep -q 'secret-jwt-d41d8cd9' "$TMP/nginx/feedgate-access.log"; then
  fail "the token was written to nginx's access log"
elif grep -qF '"GET /topics/tok/poll HTTP/1.1" 200' "$TMP/nginx/feedgate-access.log"; then
  pass "request logged as GET /topics/tok/poll, without its query string"
else
  fail "the poll is missing from nginx's access log"
fi

log "a long poll is held through nginx until its timeout"
read -r code secs < <(curl -sS -o "$TMP/longpoll.json" -w '%{http_code} %{time_total}\n' \
  --max-time 10 "$NG/topics/idle/longpoll?after=0&timeout=2")
if [ "$code" = 200 ] && grep -q '"events":\[\]' "$TMP/longpoll.json" &&
  awk -v s="$secs" 'BEGIN { exit !(s >= 1.9 && s < 5) }'; then
  pass "long poll held ${secs}s and answered 200 with no events"
else
  fail "long poll: status $code after ${secs}s: $(head -c 200 "$TMP/longpoll.json")"
fi

log "an over-size publish gets a JSON 413"
python3 -c 'import sys; sys.stdout.write("\"" + "x" * (1536 * 1024) + "\"")' >"$TMP/big.json"
code="$(curl -sS -o "$TMP/big.out" -w '%{http_code}' --max-time 10 \
  -H 'content-type: application/json' --data-binary "@$TMP/big.json" "$NG/topics/big/events")"
if [ "$code" = 413 ] && grep -q '"code":"body_too_large"' "$TMP/big.out"; then
  pass "1.5 MiB publish: 413 with a JSON body_too_large error"
else
  fail "1.5 MiB publish: status $code: $(head -c 200 "$TMP/big.out")"
fi

code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$NG/metrics")"
if [ "$code" = 404 ]; then pass "/metrics not exposed through nginx (404)"; else fail "/metrics through nginx: $code"; fi

if grep -E '\[(alert|crit|emerg)\]' "$TMP/nginx/error.log"; then
  fail "nginx logged errors (above)"
fi

log "feedgate down: nginx answers a JSON 503"
kill "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
code="$(curl -sS -o "$TMP/down.out" -w '%{http_code}' --max-time 5 "$NG/topics/x/poll")"
if [ "$code" = 503 ] && grep -q '"code":"unavailable"' "$TMP/down.out"; then
  pass "upstream down: 503 with a JSON unavailable error"
else
  fail "upstream down: status $code: $(head -c 200 "$TMP/down.out")"
fi

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ] || exit 1
OK=1
log "nginx test passed"
