#!/usr/bin/env bash
# Measures the issue's targets with a release build and writes each run's
# table (.txt), JSON and chart (.svg) under docs/bench/. Every command below
# is the exact reproducing command quoted in docs/benchmarks.md.
#
#   bench/targets.sh [NAME…]    (default: all; names are the case labels below)
#
# Runs are bounded (seconds to a few minutes each), loopback only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$FEEDGATE_ROOT"
cargo build --release --quiet --bin feedgate
fg="$FEEDGATE_ROOT/target/release/feedgate"
out="$FEEDGATE_ROOT/docs/bench"
mkdir -p "$out"
export RUST_LOG=warn

run() {
  local name="$1"
  shift
  log "$name: feedgate $*"
  {
    echo "\$ feedgate $*"
    echo "# $(date -u +%FT%TZ) · nproc $(nproc) · $(lscpu | sed -n 's/^Model name: *//p') · load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$fg" "$@" --quiet
  } 2>&1 | tee "$out/$name.txt"
}

nchan() {
  local name="$1"
  shift
  log "$name: nchan-bench.sh $*"
  {
    echo "\$ scripts/nchan-bench.sh $*"
    echo "# $(date -u +%FT%TZ) · nproc $(nproc) · $(lscpu | sed -n 's/^Model name: *//p') · load $(cut -d' ' -f1-3 /proc/loadavg)"
    FEEDGATE_BIN="$fg" scripts/nchan-bench.sh "$@" --quiet
  } 2>&1 | tee "$out/$name.txt"
}

want() { [ $# -eq 0 ] || [[ " ${SELECTED[*]} " == *" $1 "* ]]; }
SELECTED=("$@")

# Fan-out: 10k subscribers, 100 B payload. p99 at 10 publishes/s, then the
# delivery rate at higher publish rates; each followed at once by the same
# run against Nchan (same machine, same minute).
for t in ws sse; do
  if want "$t-10k"; then
    run "$t-10k" bench --transports "$t" --clients 10000 --rate 10 --payload 100 --duration 30s \
      --child-server --json "$out/$t-10k.json" --svg "$out/$t-10k.svg"
  fi
  if want "nchan-$t-10k"; then
    nchan "nchan-$t-10k" --transports "$t" --clients 10000 --rate 10 --payload 100 --duration 30s \
      --json "$out/nchan-$t-10k.json" --svg "$out/nchan-$t-10k.svg"
  fi
  if want "$t-10k-throughput"; then
    run "$t-10k-throughput" bench --transports "$t" --clients 10000 --payload 100 --duration 15s \
      --child-server --sweep rate=10,20,30,40 --json "$out/$t-10k-throughput.json"
  fi
  if want "nchan-$t-10k-throughput"; then
    nchan "nchan-$t-10k-throughput" --transports "$t" --clients 10000 --payload 100 --duration 15s \
      --sweep rate=10,20,30,40 --json "$out/nchan-$t-10k-throughput.json"
  fi
done

# Long poll: 10k subscribers, 1 publish/s.
if want longpoll-10k; then
  run longpoll-10k bench --transports longpoll --clients 10000 --rate 1 --payload 100 --duration 30s \
    --child-server --json "$out/longpoll-10k.json" --svg "$out/longpoll-10k.svg"
fi
if want nchan-longpoll-10k; then
  nchan nchan-longpoll-10k --transports longpoll --clients 10000 --rate 1 --payload 100 --duration 30s \
    --json "$out/nchan-longpoll-10k.json" --svg "$out/nchan-longpoll-10k.svg"
fi

# Short poll against the model: interval T = 1 s, 1000 pollers.
if want poll-model; then
  run poll-model bench --transports poll --clients 1000 --rate 10 --payload 100 --duration 30s \
    --poll-interval 1s --json "$out/poll-model.json" --svg "$out/poll-model.svg"
fi

# Wire bytes vs the protocol model, all four transports together.
if want all-transports; then
  run all-transports bench --clients 100 --rate 20 --payload 100 --duration 30s \
    --poll-interval 1s --json "$out/all-transports.json" --svg "$out/all-transports.svg"
fi

# The crossover chart: bytes per event against the event rate.
if want crossover; then
  run crossover bench --clients 100 --payload 100 --duration 20s --poll-interval 1s \
    --sweep rate=0.2,0.5,1,2,5,10,100,1000 --json "$out/crossover.json" --svg "$out/crossover.svg"
fi

# Idle memory per connection (the server as a child process, RSS from /proc).
# 19000 is what fits under this machine's hard open-file limit (20000 per process).
for t in ws sse longpoll; do
  if want "idle-$t"; then
    run "idle-$t" bench --idle 19000 --transport "$t" --duration 10s --json "$out/idle-$t.json"
  fi
done
if want idle-ws-hold; then
  run idle-ws-hold bench --idle 19000 --transport ws --duration 5m --json "$out/idle-ws-hold.json"
fi

if want nchan-poll-model; then
  nchan nchan-poll-model --transports poll --clients 1000 --rate 10 --payload 100 --duration 30s \
    --poll-interval 1s --json "$out/nchan-poll-model.json" --svg "$out/nchan-poll-model.svg"
fi

# Multiplexed subscriptions: each subscriber follows K topics, events spread
# over them; one connection for all (topics=LIST), or one per topic.
for k in 1 10 100; do
  if want "topics-$k"; then
    run "topics-$k" bench --clients 20 --rate 20 --payload 100 --duration 20s --poll-interval 1s \
      --topics "$k" --json "$out/topics-$k.json"
  fi
  if [ "$k" -gt 1 ] && want "topics-$k-split"; then
    run "topics-$k-split" bench --clients 20 --rate 20 --payload 100 --duration 20s --poll-interval 1s \
      --topics "$k" --split-topics --json "$out/topics-$k-split.json"
  fi
  if want "idle-ws-topics-$k"; then
    run "idle-ws-topics-$k" bench --idle 5000 --transport ws --topics "$k" --duration 5s \
      --json "$out/idle-ws-topics-$k.json"
  fi
done

# HTTPS and HTTP/2 (issue 22): each transport alone on each link (h1, h2c,
# HTTP/1.1 over TLS, h2 over TLS), the bench's own server with a
# self-signed certificate. Long-duration runs amortize the TLS handshake.
if want links-5; then
  run links-5 bench --links all --clients 5 --rate 10 --payload 100 --duration 20s \
    --json "$out/links-5.json" --svg "$out/links-5.svg"
fi
if want links-longpoll-60s; then
  run links-longpoll-60s bench --links all --transports longpoll --clients 5 --rate 10 --payload 100 \
    --duration 60s --json "$out/links-longpoll-60s.json"
fi
if want links-ws-lean-60s; then
  run links-ws-lean-60s bench --links all --transports ws --encoding lean --clients 5 --rate 10 \
    --payload 100 --duration 60s --json "$out/links-ws-lean-60s.json"
fi
if want links-ws-1k; then
  run links-ws-1k bench --links all --transports ws --clients 1000 --rate 10 --payload 100 \
    --duration 20s --json "$out/links-ws-1k.json"
fi
for t in ws sse; do
  if want "links-$t-10k"; then
    run "links-$t-10k" bench --links h1,h1+tls,h2+tls --transports "$t" --clients 10000 --rate 10 --payload 100 \
      --duration 20s --child-server --json "$out/links-$t-10k.json"
  fi
done
for l in h1 h1+tls; do
  flags=()
  [ "$l" = h1 ] || flags=(--tls)
  if want "idle-ws-$l"; then
    run "idle-ws-$l" bench --idle 5000 --transport ws "${flags[@]}" --duration 5s \
      --json "$out/idle-ws-$l.json"
  fi
done
if want idle-sse-h1; then
  run idle-sse-h1 bench --idle 5000 --transport sse --duration 5s --json "$out/idle-sse-h1.json"
fi
if want idle-sse-h2-x10; then
  run idle-sse-h2-x10 bench --idle 2000 --transport sse --http2 --topics 10 --split-topics \
    --duration 5s --json "$out/idle-sse-h2-x10.json"
fi
