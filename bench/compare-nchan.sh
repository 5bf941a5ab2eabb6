#!/usr/bin/env bash
# feedgate against Nchan, ABBA: runs the same `feedgate bench` load against
# feedgate (a `serve` child process) and Nchan (scripts/nchan-bench.sh),
# alternated feedgate, Nchan, Nchan, feedgate for ROUNDS rounds (default 2,
# so 4 runs each), then prints per metric the median of feedgate/Nchan
# ratios and their spread (min–max), with the machine and its load.
# Every "vs Nchan" line in docs/benchmarks.md comes from this script.
#
#   bench/compare-nchan.sh [--rounds N] BENCH_FLAGS…
#   e.g. bench/compare-nchan.sh --transports ws --clients 5000 --rate 20 --duration 15s
#   FEEDGATE_EXTRA="--encoding lean" bench/compare-nchan.sh …   (feedgate side only)
#   COMPARE_B=fanout-off bench/compare-nchan.sh …   (B is feedgate itself with
#     `--ws-fanout false --sse-fanout false --longpoll-fanout false`, its fast
#     paths off, instead of Nchan)
#
# Metrics: p50 and p99 publish → delivery latency, server CPU per delivery
# (server CPU seconds / deliveries of every transport of the run: compare
# one transport at a time for a per-transport figure), deliveries per second, and bytes per
# event down. Ratios below 1 favour feedgate for all but deliveries/s.
# Runs are bounded by the bench flags; loopback only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$FEEDGATE_ROOT"

rounds=2
if [ "${1:-}" = "--rounds" ]; then
  rounds="$2"
  shift 2
fi
[ $# -gt 0 ] || { echo "usage: bench/compare-nchan.sh [--rounds N] BENCH_FLAGS…" >&2; exit 2; }

cargo build --release --quiet --bin feedgate
out="$(mktemp -d "${TMPDIR:-/tmp}/compare-nchan.XXXXXX")"
# A copy: a rebuild during the runs must not change what they measure.
cp "$FEEDGATE_ROOT/target/release/feedgate" "$out/feedgate"
fg="$out/feedgate"
export RUST_LOG=warn

# FEEDGATE_EXTRA: flags for the feedgate side only (e.g. "--encoding lean").
feedgate_run() {
  # shellcheck disable=SC2086
  "$fg" bench --child-server "$@" ${FEEDGATE_EXTRA:-} --quiet --json "$out/feedgate-$n.json" >/dev/null
}
nchan_run() {
  if [ "${COMPARE_B:-}" = fanout-off ]; then
    # The child server reads the --*-fanout flags from the environment.
    FEEDGATE_WS_FANOUT=false FEEDGATE_SSE_FANOUT=false FEEDGATE_LONGPOLL_FANOUT=false "$fg" bench --child-server "$@" ${FEEDGATE_EXTRA:-} --quiet --json "$out/nchan-$n.json" >/dev/null
  else
    FEEDGATE_BIN="$fg" scripts/nchan-bench.sh "$@" --quiet --json "$out/nchan-$n.json" >/dev/null
  fi
}

n=0
for r in $(seq 1 "$rounds"); do
  for side in feedgate nchan nchan feedgate; do
    n=$((n + 1))
    label="$side"
    [ "$side" = nchan ] && label="${COMPARE_B:-nchan}"
    log "round $r, run $n: $label (load $(cut -d' ' -f1-3 /proc/loadavg))"
    if [ "$side" = feedgate ]; then feedgate_run "$@"; else nchan_run "$@"; fi
  done
done

python3 - "$out" "$rounds" "$*" "${COMPARE_B:-}" <<'EOF'
import glob, json, os, statistics, subprocess, sys

out, rounds, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3]
b_name = "fast path off" if sys.argv[4] == "fanout-off" else "Nchan"

def load(side):
    runs = []
    for path in sorted(glob.glob(f"{out}/{side}-*.json"), key=lambda p: int(p.rsplit("-", 1)[1][:-5])):
        runs.append(json.load(open(path)))
    return runs

def metrics(run):
    rows = {}
    server_s = run["cpu"].get("server_s")
    # The server's CPU is shared by every transport of the run.
    d = max(sum(t["delivered"] for t in run["transports"]), 1)
    for t in run["transports"]:
        rows[t["transport"]] = {
            "p50 ms": t["latency"]["p50_us"] / 1000,
            "p99 ms": t["latency"]["p99_us"] / 1000,
            "deliveries/s": t["deliveries_per_s"],
            "B/event down": t["bytes_per_event_down"],
            "server µs/delivery": (server_s * 1e6 / d) if server_s is not None else None,
        }
    return rows

fg, nc = load("feedgate"), load("nchan")
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print(f"feedgate vs {b_name}, ABBA × {rounds} ({len(fg)} runs each) · bench {flags}")
print(f"machine: {os.cpu_count()} × {cpu} · load now {open('/proc/loadavg').read().split()[:3]}")
print()
print(f"transport | metric | feedgate (median) | {b_name} (median) | ratio median | ratio spread")
print("----------|--------|-------------------|----------------|--------------|-------------")
for t in metrics(fg[0]):
    for m in metrics(fg[0])[t]:
        a = [metrics(r)[t][m] for r in fg if t in metrics(r)]
        b = [metrics(r)[t][m] for r in nc if t in metrics(r)]
        if None in a or None in b or not a or not b:
            continue
        # Pair runs by position (run k of feedgate with run k of Nchan, the
        # same round and the same minutes).
        ratios = [x / y for x, y in zip(a, b) if y]
        if not ratios:
            continue
        print(f"{t} | {m} | {statistics.median(a):.2f} | {statistics.median(b):.2f} | "
              f"{statistics.median(ratios):.2f} | {min(ratios):.2f}–{max(ratios):.2f}")
print()
print(f"runs: {out}")
EOF
