#!/usr/bin/env bash
# A CPU profile of the server under a `feedgate bench` load: feedgate (a
# release `serve`) or, with PROFILE_TARGET=nchan, Nchan (nginx master and
# workers, started by scripts/nchan-bench.sh). Records the server with
# `perf record -g` in the middle of the run, once every subscriber is
# connected and publishing has begun, and prints the top symbols (self
# time) and the split by DSO. The data stays in a temporary directory;
# docs/benchmarks.md records what it showed, not the data.
#
#   [PROFILE_TARGET=feedgate|nchan] bench/profile.sh BENCH_FLAGS…
#   e.g. bench/profile.sh --transports ws --clients 10000 --rate 10 --payload 100 --duration 40s
#   FEEDGATE_SERVE_EXTRA="--encoding …" for serve flags; PERF_SECONDS (default 20).
# Loopback only; bounded by the bench's --duration.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$FEEDGATE_ROOT"
command -v perf >/dev/null || { echo "perf is needed (Debian: linux-perf)" >&2; exit 2; }

target="${PROFILE_TARGET:-feedgate}"
cargo build --release --quiet --bin feedgate
out="$(mktemp -d "${TMPDIR:-/tmp}/feedgate-profile.XXXXXX")"
# The bench runs a copy, so a rebuild during the run changes nothing.
cp target/release/feedgate "$out/feedgate"
fg="$out/feedgate"

# The subscribers the bench opens: recording starts once all are connected.
clients=1
prev=""
for a in "$@"; do
  [ "$prev" = "--clients" ] && clients="$a"
  prev="$a"
done

case "$target" in
feedgate)
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
  port="${url##*:}"
  "$fg" bench --url "$url" --pid "$pid" "$@" --quiet --json "$out/bench.json" >"$out/bench.log" 2>&1 &
  bench=$!
  pids="$pid"
  ;;
nchan)
  NCHAN_INFO_FILE="$out/nchan.info" FEEDGATE_BIN="$fg" scripts/nchan-bench.sh "$@" \
    --quiet --json "$out/bench.json" >"$out/bench.log" 2>&1 &
  bench=$!
  trap 'kill $bench 2>/dev/null || true' EXIT
  for _ in $(seq 1 300); do
    [ -s "$out/nchan.info" ] && break
    sleep 0.1
  done
  [ -s "$out/nchan.info" ] || { cat "$out/bench.log" >&2; exit 1; }
  read -r master port <"$out/nchan.info"
  pids="$master,$(pgrep -d, -P "$master")"
  ;;
*)
  echo "PROFILE_TARGET is feedgate or nchan, not $target" >&2
  exit 2
  ;;
esac

# Wait until every subscriber is connected (the bench publishes only then).
for _ in $(seq 1 1200); do
  n="$(ss -Htn state established "( sport = :$port )" | wc -l)"
  [ "$n" -ge "$clients" ] && break
  sleep 0.1
done
sleep "${PERF_DELAY:-2}" # past the first publishes
perf record -e cpu-clock -F 999 -g -p "$pids" -o "$out/perf.data" -- sleep "${PERF_SECONDS:-20}" 2>/dev/null
wait $bench || { cat "$out/bench.log" >&2; exit 1; }
perf report -i "$out/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
  grep '%' | sed -E 's/ +- +- +$//; s/ +$//' >"$out/symbols.txt" || true
perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
  grep '%' | sed -E 's/ +- +- +$//; s/ +$//' >"$out/dsos.txt" || true
head -"${PERF_TOP:-60}" "$out/symbols.txt"
echo
cat "$out/dsos.txt"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); t=r['transports'][0]; d=sum(x['delivered'] for x in r['transports']); print(f\"bench ({sys.argv[2]}): {t['transport']} p50 {t['latency']['p50_us']/1000:.1f} ms, p99 {t['latency']['p99_us']/1000:.1f} ms, {t['deliveries_per_s']:.0f} deliveries/s, server {r['cpu']['server_s']*1e6/max(d,1):.2f} µs CPU per delivery\")" "$out/bench.json" "$target"
echo "data: $out"
