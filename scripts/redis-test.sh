#!/usr/bin/env bash
# The Redis backend's tests against real Redis: installs the Debian package
# redis-server when missing, starts a Redis Cluster (3 masters + 3
# replicas on free 127.0.0.1 ports, scripts/redis-cluster.sh; stopped on
# exit), then runs tests/redis/ with FEEDGATE_REQUIRE_REDIS=1, so a missing
# redis-server or cluster fails instead of skipping. Single-Redis tests
# start their own redis-server on a free port each; the cluster tests take
# turns on the one cluster (one of them kills a master and starts it
# again). Usage: ./scripts/redis-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_apt redis-server

cluster_dir="$(mktemp -d "${TMPDIR:-/tmp}/feedgate-redis-cluster.XXXXXX")"
trap './scripts/redis-cluster.sh stop "$cluster_dir"' EXIT
log "Redis Cluster: 3 masters + 3 replicas"
env_lines="$(./scripts/redis-cluster.sh start "$cluster_dir")"
export ${env_lines?}

log "cargo test --test redis (redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), single and cluster)"
FEEDGATE_REQUIRE_REDIS=1 cargo test --test redis
