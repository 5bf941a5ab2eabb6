#!/usr/bin/env bash
# Every HTTP endpoint over HTTP/2 with real curl: h2c with prior knowledge
# (`curl --http2-prior-knowledge`) against `feedgate serve` in the clear,
# and h2 over TLS by ALPN (`curl -k --http2`) against `feedgate serve
# --tls-self-signed`, plus one HTTP/1.1 request over TLS.
#
# On each server (both on 127.0.0.1:0, the address read from its log):
#   publish      POST /topics/T/events           201, HTTP/2
#   short poll   GET /topics/T/poll?after=0       the events published, HTTP/2
#   long poll    GET /topics/T/longpoll?after=N   held (the server's longpoll
#                gauge on this link says so), then answered by a publish
#                with that event, HTTP/2
#   SSE          GET /topics/T/sse?after=0 (-N)   the ready event, then every
#                event published, read within a bound, HTTP/2
# then /metrics: deliveries on poll, longpoll and sse and the wire bytes
# were counted under protocol="h2" and this link's tls label.
#
# The binary is FEEDGATE_BIN if set (e.g. target/release/feedgate), else
# the debug build (built if needed). Everything started here is stopped on
# exit. Exit status non-zero on failure.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt curl ca-certificates
curl -V | grep -qw HTTP2 || {
  echo "this curl has no HTTP/2 (nghttp2) support: $(curl -V | head -n1)" >&2
  exit 1
}

BIN="${FEEDGATE_BIN:-$(feedgate_bin)}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/feedgate-curl-h2.XXXXXX")"
PIDS=()
OK=0
PASSES=0

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$OK" -ne 1 ]; then
    for f in "$TMP"/*.log; do
      [ -s "$f" ] || continue
      echo "---- last lines of $(basename "$f")" >&2
      tail -n 20 "$f" >&2
    done
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "FAIL $*" >&2
  exit 1
}
pass() {
  PASSES=$((PASSES + 1))
  echo "ok   $*"
}

# start NAME ARGS…: `feedgate serve --listen 127.0.0.1:0 ARGS…`; sets URL
# to the base URL it logs (port 0: no race for a port chosen in advance).
start() {
  local name="$1" logf="$TMP/$1.log"
  shift
  "$BIN" serve --listen 127.0.0.1:0 "$@" >"$logf" 2>&1 &
  PIDS+=("$!")
  URL=""
  for _ in $(seq 1 100); do
    URL="$(grep -oE 'https?://127\.0\.0\.1:[0-9]+' "$logf" | head -n1 || true)"
    [ -n "$URL" ] && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$URL" ] || fail "feedgate ($name) did not start"
  for _ in $(seq 1 300); do
    "${CURL[@]}" -f -o /dev/null "$URL/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "feedgate ($name) never answered $URL/healthz"
}

# metric TEXT NAME LABEL=VALUE…: the sum of NAME's samples in TEXT whose
# labels include every LABEL=VALUE given.
metric() {
  local text="$1" name="$2"
  shift 2
  printf '%s\n' "$text" | awk -v name="$name" -v want="$*" '
    $1 ~ "^" name "\\{" {
      ok = 1
      n = split(want, w, " ")
      for (i = 1; i <= n; i++) {
        split(w[i], kv, "=")
        if (index($1, kv[1] "=\"" kv[2] "\"") == 0) ok = 0
      }
      if (ok) sum += $2
    }
    END { printf "%d\n", sum }'
}

# publish TOPIC N: publishes {"n":N}; prints the seq. Asserts 201 over HTTP/2.
publish() {
  local out
  out="$("${CURL[@]}" -w '\n%{http_code} %{http_version}' -H 'content-type: application/json' \
    -d "{\"n\":$2}" "$URL/topics/$1/events")"
  [ "$(tail -n1 <<<"$out")" = "201 2" ] || fail "$LINK publish: $(tail -n1 <<<"$out") (want 201 over HTTP 2)"
  head -n1 <<<"$out" | grep -oE '"seq":[0-9]+' | cut -d: -f2
}

# check_link NAME: every endpoint over CURL (an HTTP/2 curl) on URL.
check_link() {
  LINK="$1"
  local topic="curl-$1" tls="$2" metrics_before out seq body pid held

  metrics_before="$("${CURL[@]}" "$URL/metrics")"

  # publish + short poll
  for n in 1 2 3; do seq="$(publish "$topic" "$n")"; done
  [ "$seq" = 3 ] || fail "$LINK publish: third seq $seq"
  pass "$LINK publish: 3 × 201 over HTTP/2"
  out="$("${CURL[@]}" -w '\n%{http_code} %{http_version}' "$URL/topics/$topic/poll?after=0")"
  [ "$(tail -n1 <<<"$out")" = "200 2" ] || fail "$LINK short poll: $(tail -n1 <<<"$out")"
  [ "$(head -n1 <<<"$out" | grep -oE '"seq":[0-9]+' | tr '\n' ' ')" = '"seq":1 "seq":2 "seq":3 ' ] ||
    fail "$LINK short poll: $(head -n1 <<<"$out")"
  pass "$LINK short poll: seqs 1 2 3 over HTTP/2"

  # long poll: held until the server counts it, then a publish answers it
  "${CURL[@]}" --max-time 30 -o "$TMP/$LINK-longpoll.body" -w '%{http_code} %{http_version}' \
    "$URL/topics/$topic/longpoll?after=3&timeout=25" >"$TMP/$LINK-longpoll.status" 2>"$TMP/$LINK-longpoll.log" &
  pid=$!
  PIDS+=("$pid")
  held=0
  for _ in $(seq 1 200); do
    if [ "$(metric "$("${CURL[@]}" "$URL/metrics")" feedgate_connections transport=longpoll protocol=h2 tls="$tls")" -ge 1 ]; then
      held=1
      break
    fi
    sleep 0.05
  done
  [ "$held" = 1 ] || fail "$LINK long poll: never held (feedgate_connections{transport=\"longpoll\",protocol=\"h2\",tls=\"$tls\"} stayed 0)"
  kill -0 "$pid" 2>/dev/null || fail "$LINK long poll: answered before the publish"
  seq="$(publish "$topic" 4)"
  wait "$pid" || fail "$LINK long poll: curl failed"
  [ "$(cat "$TMP/$LINK-longpoll.status")" = "200 2" ] || fail "$LINK long poll: $(cat "$TMP/$LINK-longpoll.status")"
  grep -q "\"seq\":$seq," "$TMP/$LINK-longpoll.body" || fail "$LINK long poll: no seq $seq in $(cat "$TMP/$LINK-longpoll.body")"
  pass "$LINK long poll: held, then answered by the publish of seq $seq, over HTTP/2"

  # SSE: the stream from the start, then events published while it is open
  "${CURL[@]}" -N --max-time 30 -D "$TMP/$LINK-sse.head" -o "$TMP/$LINK-sse.body" \
    "$URL/topics/$topic/sse?after=0" 2>"$TMP/$LINK-sse.log" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 200); do
    grep -q '^event: ready' "$TMP/$LINK-sse.body" 2>/dev/null && break
    sleep 0.05
  done
  grep -q '^event: ready' "$TMP/$LINK-sse.body" || fail "$LINK SSE: no ready event"
  for n in 5 6; do seq="$(publish "$topic" "$n")"; done
  for _ in $(seq 1 200); do
    grep -q "\"seq\":$seq," "$TMP/$LINK-sse.body" && break
    sleep 0.05
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  head -n1 "$TMP/$LINK-sse.head" | grep -q '^HTTP/2 200' || fail "$LINK SSE: $(head -n1 "$TMP/$LINK-sse.head")"
  body="$(grep -oE '^data: \{"topic":"[^"]+","seq":[0-9]+' "$TMP/$LINK-sse.body" | grep -oE '[0-9]+$' | tr '\n' ' ')"
  [ "$body" = "1 2 3 4 5 6 " ] || fail "$LINK SSE: seqs $body (want 1 2 3 4 5 6)"
  pass "$LINK SSE: ready, then seqs 1-6 each once, over HTTP/2"

  # The server counted it all on this link.
  local after
  after="$("${CURL[@]}" "$URL/metrics")"
  for t in poll longpoll sse; do
    local was now
    was="$(metric "$metrics_before" feedgate_events_delivered_total transport=$t protocol=h2 tls="$tls")"
    now="$(metric "$after" feedgate_events_delivered_total transport=$t protocol=h2 tls="$tls")"
    [ "$now" -gt "$was" ] || fail "$LINK metrics: feedgate_events_delivered_total{transport=\"$t\",protocol=\"h2\",tls=\"$tls\"} $was → $now"
  done
  for d in in out; do
    local was now
    was="$(metric "$metrics_before" feedgate_wire_bytes_total protocol=h2 tls="$tls" direction=$d)"
    now="$(metric "$after" feedgate_wire_bytes_total protocol=h2 tls="$tls" direction=$d)"
    [ "$now" -gt "$was" ] || fail "$LINK metrics: feedgate_wire_bytes_total{protocol=\"h2\",tls=\"$tls\",direction=\"$d\"} $was → $now"
  done
  pass "$LINK metrics: poll, longpoll and sse deliveries and wire bytes in and out moved under protocol=\"h2\",tls=\"$tls\""
}

log "h2c (prior knowledge) against feedgate serve"
CURL=(curl -sS --http2-prior-knowledge)
start h2c
check_link h2c false

log "h2 over TLS (ALPN) against feedgate serve --tls-self-signed"
CURL=(curl -sSk --http2)
start tls --tls-self-signed
[[ "$URL" == https://* ]] || fail "--tls-self-signed logged $URL"
grep -qE 'SHA-256 fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}' "$TMP/tls.log" || fail "--tls-self-signed printed no fingerprint"
check_link tls true

# HTTP/1.1 over TLS on the same listener: ALPN picks http/1.1.
before="$(curl -sSk "$URL/metrics")"
out="$(curl -sSk --http1.1 -w '\n%{http_code} %{http_version}' "$URL/topics/curl-tls/poll?after=0")"
[ "$(tail -n1 <<<"$out")" = "200 1.1" ] || fail "HTTP/1.1 over TLS: $(tail -n1 <<<"$out")"
grep -q '"seq":1,' <<<"$out" || fail "HTTP/1.1 over TLS: $(head -n1 <<<"$out")"
after="$(curl -sSk "$URL/metrics")"
[ "$(metric "$after" feedgate_events_delivered_total transport=poll protocol=h1 tls=true)" -gt \
  "$(metric "$before" feedgate_events_delivered_total transport=poll protocol=h1 tls=true)" ] ||
  fail "HTTP/1.1 over TLS: no poll delivery counted under protocol=\"h1\",tls=\"true\""
pass "tls HTTP/1.1 short poll: 200 over HTTP/1.1, counted under protocol=\"h1\",tls=\"true\""

OK=1
log "curl HTTP/2 test passed ($PASSES checks)"
