#!/usr/bin/env bash
# The Redis-at-scale measurements of docs/redis.md, docs/benchmarks.md and
# docs/scaling.md: starts the Redis it needs (one redis-server, or a 3+3
# cluster through scripts/redis-cluster.sh) and, for fan-out, NODES
# `feedgate serve` processes (release build), all on free loopback ports,
# runs examples/redis_scale.rs against them, and stops everything.
#
#   bench/redis-scale.sh connections single|cluster TOPICS,…
#   bench/redis-scale.sh fanout memory|single|cluster NODES TOPICS SUBS SECS
#   bench/redis-scale.sh publish single|replica|cluster PUBLISHERS SECS [WAIT]
#
# `replica` is one redis-server with one replica (for --redis-wait 1).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

mode="${1:?usage: see the header}"
redis="${2:?usage: see the header}"
shift 2

cargo build --quiet --release --bin feedgate --example redis_scale
bin=target/release/feedgate
driver=target/release/examples/redis_scale

work="$(mktemp -d "${TMPDIR:-/tmp}/feedgate-redis-scale.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -d "$work/cluster" ] && ./scripts/redis-cluster.sh stop "$work/cluster"
  rm -rf "$work"
}
trap cleanup EXIT

redis_server() { # PORT [ARGS…]: a throw-away redis-server, its pid in pids
  local port="$1"
  shift
  mkdir -p "$work/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work/$port" "$@" >"$work/$port/log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-server on $port did not start" >&2
  return 1
}

url=memory
case "$redis" in
memory) ;;
single | replica)
  port=$(free_port)
  redis_server "$port"
  url="redis://127.0.0.1:$port/0"
  if [ "$redis" = replica ]; then
    rport=$(free_port)
    redis_server "$rport" --replicaof 127.0.0.1 "$port"
    until redis-cli -p "$rport" info replication | grep -q master_link_status:up; do sleep 0.1; done
  fi
  ;;
cluster)
  env_lines="$(./scripts/redis-cluster.sh start "$work/cluster")"
  url="$(echo "$env_lines" | sed -n 's/^FEEDGATE_REDIS_CLUSTER=//p')"
  ;;
*)
  echo "unknown Redis $redis" >&2
  exit 2
  ;;
esac

echo "# $(date -u +%FT%TZ) $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# bench/redis-scale.sh $mode $redis $*"
case "$mode" in
connections)
  "$driver" connections "$url" "$1"
  ;;
publish)
  "$driver" publish "$url" "$1" "$2" "${3:-0}"
  ;;
fanout)
  nodes="$1" topics="$2" subs="$3" secs="$4"
  gateways=() gpids=()
  for _ in $(seq "$nodes"); do
    port=$(free_port)
    "$bin" serve --listen "127.0.0.1:$port" --log "$url" --max-connections 20000 \
      --max-topics 1000000 >"$work/gateway-$port.log" 2>&1 &
    pids+=("$!")
    gpids+=("$!")
    gateways+=("http://127.0.0.1:$port")
    wait_http "http://127.0.0.1:$port/healthz" 30
  done
  list="$(IFS=,; echo "${gateways[*]}")"
  plist="$(IFS=,; echo "${gpids[*]}")"
  redis_url=-
  [ "$url" != memory ] && redis_url="$url"
  "$driver" fanout "$list" "$topics" "$subs" "$secs" "$redis_url" "$plist"
  ;;
*)
  echo "unknown mode $mode" >&2
  exit 2
  ;;
esac
