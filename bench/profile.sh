#!/usr/bin/env bash
# A CPU profile of the feedgate server under a `feedgate bench` load:
# starts a release server, runs the bench against it, records the server
# with `perf record -g` in the middle of the run, and prints the top
# symbols (self time) by DSO. The data stays in a temporary directory;
# docs/benchmarks.md records what it showed, not the data.
#
#   bench/profile.sh BENCH_FLAGS…
#   e.g. bench/profile.sh --transports ws --clients 10000 --rate 10 --payload 100 --duration 40s
#   FEEDGATE_SERVE_EXTRA="--encoding …" for serve flags; PERF_SECONDS (default 20).
# Loopback only; bounded by the bench's --duration.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$FEEDGATE_ROOT"
command -v perf >/dev/null || { echo "perf is needed (Debian: linux-perf)" >&2; exit 2; }

cargo build --release --quiet --bin feedgate
fg="$FEEDGATE_ROOT/target/release/feedgate"
out="$(mktemp -d "${TMPDIR:-/tmp}/feedgate-profile.XXXXXX")"
# shellcheck disable=SC2086
RUST_LOG=warn,feedgate::cli=info "$fg" serve --listen 127.0.0.1:0 --max-connections 30000 \
  ${FEEDGATE_SERVE_EXTRA:-} >"$out/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 100); do
  url="$(grep -o 'http://127.0.0.1:[0-9]*' "$out/serve.log" | head -1 || true)"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$out/serve.log" >&2; exit 1; }

"$fg" bench --url "$url" --pid "$pid" "$@" --quiet --json "$out/bench.json" >"$out/bench.log" 2>&1 &
bench=$!
# Start recording once every subscriber is connected and publishing has begun.
for _ in $(seq 1 600); do
  grep -q 'feedgate_events_published_total [1-9]' <(curl -s "$url/metrics") && break
  sleep 0.1
done
perf record -e cpu-clock -F 999 -g -p "$pid" -o "$out/perf.data" -- sleep "${PERF_SECONDS:-20}" 2>/dev/null
wait $bench || { cat "$out/bench.log" >&2; exit 1; }
perf report -i "$out/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
  grep '%' | sed -E 's/ +- +- +$//; s/ +$//' >"$out/symbols.txt" || true
perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
  grep '%' | sed -E 's/ +- +- +$//; s/ +$//' >"$out/dsos.txt" || true
head -"${PERF_TOP:-60}" "$out/symbols.txt"
echo
cat "$out/dsos.txt"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); t=r['transports'][0]; d=sum(x['delivered'] for x in r['transports']); print(f\"bench: {t['transport']} p50 {t['latency']['p50_us']/1000:.1f} ms, p99 {t['latency']['p99_us']/1000:.1f} ms, {t['deliveries_per_s']:.0f} deliveries/s, server {r['cpu']['server_s']*1e6/max(d,1):.2f} µs CPU per delivery\")" "$out/bench.json"
echo "data: $out"
