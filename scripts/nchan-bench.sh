#!/usr/bin/env bash
# Runs `feedgate bench --target nchan` against a local Nchan (nginx +
# libnginx-mod-nchan, installed if missing), started from bench/nchan.conf
# under a temporary prefix on a free loopback port, and stopped afterwards.
#
#   scripts/nchan-bench.sh [bench flags…]     e.g. --transports ws --clients 1000
#
# FEEDGATE_BIN picks the binary (default: a release build of this tree);
# NCHAN_INFO_FILE, if set, receives "MASTER_PID PORT" once nginx is up.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt nginx libnginx-mod-nchan curl
bin="${FEEDGATE_BIN:-}"
if [ -z "$bin" ]; then
  (cd "$FEEDGATE_ROOT" && cargo build --release --quiet --bin feedgate >&2)
  bin="${CARGO_TARGET_DIR:-$FEEDGATE_ROOT/target}/release/feedgate"
fi

prefix="$(mktemp -d "${TMPDIR:-/tmp}/nchan-bench.XXXXXX")"
port="$(free_port)"
mkdir -p "$prefix/tmp"
# Workers drop to `nobody`: they must reach the temp dirs.
chmod 755 "$prefix" "$prefix/tmp"
sed "s/__PORT__/$port/" "$FEEDGATE_ROOT/bench/nchan.conf" > "$prefix/nchan.conf"

stop_nginx() {
  if [ -f "$prefix/nginx.pid" ]; then
    kill "$(cat "$prefix/nginx.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$prefix/nginx.pid" ] || break; sleep 0.1; done
  fi
  rm -rf "$prefix"
}
trap stop_nginx EXIT

ulimit -n 250000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
log "nginx + nchan on 127.0.0.1:$port (prefix $prefix)"
nginx -p "$prefix" -c "$prefix/nchan.conf"
wait_http "http://127.0.0.1:$port/healthz" 10
export NCHAN_PID="$(cat "$prefix/nginx.pid")"
# For bench/profile.sh: where the master's PID and the port are, once up.
[ -z "${NCHAN_INFO_FILE:-}" ] || echo "$NCHAN_PID $port" >"$NCHAN_INFO_FILE"
# --pid is the master; the bench reads CPU time of it and its workers.
"$bin" bench --target nchan --url "http://127.0.0.1:$port" --pid "$NCHAN_PID" "$@"
