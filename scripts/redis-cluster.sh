#!/usr/bin/env bash
# A throw-away Redis Cluster on loopback: 3 masters + 3 replicas of the
# Debian redis-server, each on a free 127.0.0.1 port, joined with
# `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`.
#
#   ./scripts/redis-cluster.sh start DIR   # prints FEEDGATE_REDIS_CLUSTER=redis+cluster://…
#                                          # and FEEDGATE_REDIS_CLUSTER_DIR=DIR
#   ./scripts/redis-cluster.sh stop DIR    # kills the six servers, removes DIR
#
# Everything lives in DIR (DIR/PORT/redis.conf, nodes.conf, logs, pids). No
# persistence: a killed master's data is gone, its replica takes over.
# cluster-node-timeout is 2 s, so a failover takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

case "$cmd" in
start)
  mkdir -p "$dir"
  ports=()
  for i in 1 2 3 4 5 6; do
    for _try in 1 2 3 4 5; do
      port=$(free_port)
      mkdir -p "$dir/$port"
      # A config file, so that a test can start a node it killed again
      # (`redis-server DIR/PORT/redis.conf`): it rejoins as a replica.
      cat >"$dir/$port/redis.conf" <<EOF
port $port
bind 127.0.0.1
dir $dir/$port
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
save ""
appendonly no
daemonize yes
pidfile $dir/$port/redis.pid
logfile $dir/$port/redis.log
EOF
      if redis-server "$dir/$port/redis.conf" >/dev/null; then
        # Up when it answers; gone when the port was taken meanwhile.
        for _ in $(seq 50); do
          redis-cli -p "$port" ping >/dev/null 2>&1 && break
          sleep 0.1
        done
        if redis-cli -p "$port" ping >/dev/null 2>&1; then
          ports+=("$port")
          echo "$port" >>"$dir/ports"
          break
        fi
      fi
      rm -rf "${dir:?}/$port"
    done
    [ "${#ports[@]}" -eq "$i" ] || {
      echo "redis-cluster: could not start node $i" >&2
      exit 1
    }
  done
  addrs=()
  for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log"
  # Every node must agree the cluster is whole before a client starts.
  for p in "${ports[@]}"; do
    for _ in $(seq 100); do
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
      sleep 0.1
    done
    redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || {
      echo "redis-cluster: node $p never reached cluster_state:ok" >&2
      exit 1
    }
  done
  # Replicas must have synced before a failover can be told from data loss.
  for p in "${ports[@]}"; do
    for _ in $(seq 100); do
      info=$(redis-cli -p "$p" info replication)
      if echo "$info" | grep -q 'role:master' || echo "$info" | grep -q 'master_link_status:up'; then
        break
      fi
      sleep 0.1
    done
  done
  (
    IFS=,
    echo "FEEDGATE_REDIS_CLUSTER=redis+cluster://${addrs[*]}"
  )
  echo "FEEDGATE_REDIS_CLUSTER_DIR=$(cd "$dir" && pwd)"
  ;;
stop)
  if [ -f "$dir/ports" ]; then
    while read -r p; do
      [ -f "$dir/$p/redis.pid" ] && kill -9 "$(cat "$dir/$p/redis.pid")" 2>/dev/null || true
    done <"$dir/ports"
  fi
  rm -rf "${dir:?}"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
