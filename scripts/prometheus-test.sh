#!/usr/bin/env bash
# Proves the Grafana dashboard and the metrics against a real Prometheus.
#
#   1. feedgate serve --demo on a free loopback port, with subscribers on all
#      four transports (feedgate tail), plus an idle topic that is short-
#      polled (empty and 304 answers) and long-polled (timeouts), and one
#      WebSocket that never answers pings (a pong_timeout limit rejection),
#      so every panel has something to show; and a client's transport
#      switch report (POST /telemetry/switch); and a second one, `serve
#      --demo --tls-self-signed`, followed over HTTP/2 and TLS by curl
#      (short polls, long polls, an SSE stream), so the per-protocol
#      panels have an h2 link to show;
#   2. promtool check metrics on /metrics; promtool check rules / config on
#      the shipped files;
#   3. Debian's Prometheus on 127.0.0.1 (free port, temp storage, 1 s scrape
#      and evaluation interval) running dashboards/prometheus.yml with only
#      the target and the intervals substituted, and its rule files, plus a
#      job for the HTTPS node (its throw-away certificate not verified);
#   4. scripts/check_dashboard.py: every panel target's PromQL evaluated
#      through /api/v1/query, with Grafana's variables substituted, must
#      return data, one series per transport where the panel is per
#      transport (with All selected, and again with only sse,ws selected,
#      and again with protocol=h2, tls=true: the by-protocol panel must
#      show poll, longpoll and sse on that link alone); every recording
#      rule returns data, every rule evaluates.
#
# Everything it starts is stopped on exit. Exit status non-zero on failure.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt prometheus curl

ROOT="$FEEDGATE_ROOT"
# DASHBOARD=path checks another dashboard file (e.g. a deliberately broken
# copy, to see this test fail).
DASHBOARD="${DASHBOARD:-$ROOT/dashboards/feedgate.json}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/feedgate-prom.XXXXXX")"
PIDS=()
OK=0

cleanup() {
  local pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
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

# bg NAME CMD...: starts CMD in the background (stdout to NAME.out, stderr
# to NAME.log, shown on failure), remembering its pid for cleanup.
bg() {
  local name="$1"
  shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
  PIDS+=("$!")
}

log "building feedgate"
BIN="$(feedgate_bin)"

log "promtool check rules / config on the shipped files"
promtool check rules "$ROOT/dashboards/recording-rules.yml" "$ROOT/dashboards/alerts.yml"

FG_PORT="$(free_port)"
FG="http://127.0.0.1:$FG_PORT"
log "feedgate serve --demo --demo-rate 20 on $FG"
# 1 s WebSocket ping and pong timeouts let the silent WebSocket below hit
# the pong_timeout limit in about two seconds. The demo topic is never
# silent for a second, so the real subscribers are never pinged.
bg feedgate "$BIN" serve --demo --demo-rate 20 --listen "127.0.0.1:$FG_PORT" \
  --ws-ping-interval 1s --ws-pong-timeout 1s --drain-timeout 2s
wait_http "$FG/healthz" 30

log "subscribers on ws, sse, longpoll and poll"
for t in ws sse longpoll poll; do
  bg "tail-$t" "$BIN" tail demo --transport "$t" --url "$FG"
done

# An idle topic: short polls come back empty, or 304 when they revalidate
# with the ETag; long polls hold for a second and time out. Bounded loops
# (two minutes at most), stopped by cleanup.
idle_short_polls() {
  local url="$FG/topics/quiet/poll?after=0" etag
  for _ in $(seq 1 240); do
    etag="$(curl -fsS --max-time 5 -o /dev/null -D - "$url" | tr -d '\r' |
      awk 'tolower($1) == "etag:" { print $2 }')"
    curl -sS --max-time 5 -o /dev/null -H "If-None-Match: $etag" "$url"
    sleep 0.5
  done
}
idle_long_polls() {
  for _ in $(seq 1 120); do
    curl -fsS --max-time 5 -o /dev/null "$FG/topics/quiet/longpoll?after=0&timeout=1"
  done
}
bg idle-poll idle_short_polls
bg idle-longpoll idle_long_polls

TLS_PORT="$(free_port)"
TLS="https://127.0.0.1:$TLS_PORT"
log "feedgate serve --demo --tls-self-signed on $TLS, followed over HTTP/2 by curl"
bg feedgate-tls "$BIN" serve --demo --demo-rate 20 --tls-self-signed --listen "127.0.0.1:$TLS_PORT" \
  --drain-timeout 2s
for i in $(seq 1 300); do
  curl -fsSk -o /dev/null "$TLS/healthz" 2>/dev/null && break
  [ "$i" -lt 300 ] || { echo "feedgate --tls-self-signed never answered (30 s)" >&2; exit 1; }
  sleep 0.1
done
# Bounded like the idle loops: each request a stream of a new TLS
# connection, ALPN h2 (curl -k: the certificate is made at start).
h2_tls_polls() {
  local kind="$1" pause="$2" next="" body n
  for _ in $(seq 1 300); do
    body="$(curl -sSk --http2 --max-time 10 "$TLS/topics/demo/$kind?timeout=5${next:+&after=$next}" || true)"
    n="$(grep -oE '"next":[0-9]+' <<<"$body" | head -n1 | cut -d: -f2 || true)"
    [ -n "$n" ] && next="$n"
    sleep "$pause"
  done
}
bg h2-tls-poll h2_tls_polls poll 0.5
bg h2-tls-longpoll h2_tls_polls longpoll 0.25
bg h2-tls-sse curl -sSkN --http2 --max-time 180 "$TLS/topics/demo/sse"

log "a WebSocket that never answers pings (expects close 1008)"
python3 "$ROOT/scripts/ops_probe.py" silent-ws "$FG" quiet --hold 10

PROM_PORT="$(free_port)"
PROM="http://127.0.0.1:$PROM_PORT"
log "prometheus on $PROM (dashboards/prometheus.yml, 1 s scrape interval)"
mkdir -p "$TMP/prom" "$TMP/data"
cp "$ROOT/dashboards/recording-rules.yml" "$ROOT/dashboards/alerts.yml" "$TMP/prom/"
sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$FG_PORT/" \
  -e 's/scrape_interval: 15s/scrape_interval: 1s/' \
  -e 's/evaluation_interval: 15s/evaluation_interval: 1s/' \
  "$ROOT/dashboards/prometheus.yml" >"$TMP/prom/prometheus.yml"
# The HTTPS node: a job of its own (a real deployment scrapes it with its
# CA in tls_config.ca_file).
cat >>"$TMP/prom/prometheus.yml" <<EOF
  - job_name: feedgate-https
    scheme: https
    tls_config:
      insecure_skip_verify: true
    static_configs:
      - targets:
          - 127.0.0.1:$TLS_PORT
EOF
for want in "127.0.0.1:$FG_PORT" "scrape_interval: 1s" "evaluation_interval: 1s"; do
  grep -qF "$want" "$TMP/prom/prometheus.yml" || {
    echo "dashboards/prometheus.yml no longer has what this test substitutes ($want)" >&2
    exit 1
  }
done
promtool check config "$TMP/prom/prometheus.yml" >/dev/null
bg prometheus prometheus --config.file="$TMP/prom/prometheus.yml" \
  --storage.tsdb.path="$TMP/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
  --log.level=warn
wait_http "$PROM/-/ready" 30
# A second silent WebSocket once Prometheus has scraped the first
# rejection, so the rejection panel sees an increase and not only a series.
for i in $(seq 1 300); do
  # The series exists at 0 from start: wait for the rejection itself.
  curl -fsSG "$PROM/api/v1/query" \
    --data-urlencode 'query=feedgate_limit_rejections_total{limit="pong_timeout"} > 0' 2>/dev/null |
    grep -q pong_timeout && break
  [ "$i" -lt 300 ] || { echo "prometheus never scraped feedgate (30 s)" >&2; exit 1; }
  sleep 0.1
done
bg silent-ws python3 "$ROOT/scripts/ops_probe.py" silent-ws "$FG" quiet --hold 10

# Before any client has reported a switch: every panel must show data (a
# fresh, healthy gateway has no "No data" panel; the switch series exist at
# 0 from the start).
log "every dashboard query before the first client report"
python3 "$ROOT/scripts/check_dashboard.py" "$DASHBOARD" \
  --prometheus "$PROM" --wait 60 --min-samples 18 \
  --wait-for 'transport:feedgate_wire_bytes_per_event:ratio_rate1m' \
  --rate-interval 15s --interval 5s --range 15s
curl -fsSG "$PROM/api/v1/query" \
  --data-urlencode 'query=sum(feedgate_client_transport_switches_total) == 0' |
  grep -q '"result":\[{' || { echo "a switch was reported before this pass: it checked nothing" >&2; exit 1; }

# A client's transport switch report, twice: the second once Prometheus has
# the first, so "why clients fall back" sees an increase.
report_switch() {
  curl -fsS -o /dev/null --max-time 5 -H 'content-type: application/json' \
    -d '{"from":"ws","to":"sse","reason":"cut","code":1006,"after_s":60}' "$FG/telemetry/switch"
}
report_switch
for i in $(seq 1 300); do
  curl -fsSG "$PROM/api/v1/query" \
    --data-urlencode 'query=feedgate_client_transport_switches_total > 0' 2>/dev/null |
    grep -q '"reason":"cut"' && break
  [ "$i" -lt 300 ] || { echo "prometheus never scraped the switch report (30 s)" >&2; exit 1; }
  sleep 0.1
done
report_switch

log "evaluating every dashboard query through $PROM/api/v1/query"
# --wait: targets up, 18 scrapes in (so the 15 s rate windows are full and
# the figures printed are true rates), and the rarer events counted (the
# rejection, 304s and long-poll timeouts; their series exist at 0 from
# start) before judging the panels.
python3 "$ROOT/scripts/check_dashboard.py" "$DASHBOARD" \
  --prometheus "$PROM" --wait 60 --min-samples 18 \
  --wait-for 'increase(feedgate_limit_rejections_total{limit="pong_timeout"}[1m]) > 0' \
  --wait-for 'increase(feedgate_requests_total{result="not_modified"}[1m]) > 0' \
  --wait-for 'increase(feedgate_requests_total{result="timeout"}[1m]) > 0' \
  --wait-for 'increase(feedgate_client_transport_switches_total[1m]) > 0' \
  --wait-for 'transport:feedgate_wire_bytes_per_event:ratio_rate1m' \
  --wait-for 'count(sum by (transport) (increase(feedgate_events_delivered_total{protocol="h2", tls="true", transport=~"poll|longpoll|sse"}[15s])) > 0) == 3' \
  --rate-interval 15s --interval 5s --range 15s \
  --narrow sse,ws --link h2:true:poll,longpoll,sse --rules

log "promtool check metrics on $FG/metrics"
curl -fsS "$FG/metrics" >"$TMP/metrics.txt"
promtool check metrics <"$TMP/metrics.txt"
echo "promtool check metrics: no problems in $(grep -c '^feedgate_' "$TMP/metrics.txt") samples"

n="$(grep -c '^data: {"topic"' "$TMP/h2-tls-sse.out" || true)"
[ "$n" -gt 0 ] || { echo "the SSE stream over TLS and HTTP/2 (curl) received no event" >&2; exit 1; }
echo "curl --http2 SSE over TLS: $n events"

for t in ws sse longpoll poll; do
  n="$(grep -c '"seq"' "$TMP/tail-$t.out" || true)"
  [ "$n" -gt 0 ] || { echo "feedgate tail --transport $t printed no event" >&2; exit 1; }
  echo "feedgate tail --transport $t: $n events"
done

OK=1
log "prometheus test passed"
