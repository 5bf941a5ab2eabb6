#!/usr/bin/env bash
# Runs `feedgate bench --target nchan` against a local Nchan (nginx +
# libnginx-mod-nchan, installed if missing), started from bench/nchan.conf
# under a temporary prefix on a free loopback port, and stopped afterwards.
#
#   scripts/nchan-bench.sh [bench flags…]     e.g. --transports ws --clients 1000
#
# FEEDGATE_BIN picks the binary (default: a release build of this tree);
# NCHAN_INFO_FILE, if set, receives "MASTER_PID PORT" once nginx is up.
# NCHAN_TLS=1 puts nginx on `listen … ssl http2` with a throwaway
# self-signed P-256 certificate (openssl) and benches https:// with
# --tls-insecure; add --http2 to the flags for HTTP/2 (ALPN h2).
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
scheme=http
tls_flags=()
if [ "${NCHAN_TLS:-}" = 1 ]; then
  # ECDSA P-256, as `feedgate serve --tls-self-signed` makes (rcgen).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$prefix/key.pem" -out "$prefix/cert.pem" 2>/dev/null
  sed -i "s|listen 127.0.0.1:$port backlog=4096;|listen 127.0.0.1:$port ssl http2 backlog=4096;\n        ssl_certificate $prefix/cert.pem;\n        ssl_certificate_key $prefix/key.pem;\n        ssl_protocols TLSv1.2 TLSv1.3;|" "$prefix/nchan.conf"
  grep -q "ssl http2" "$prefix/nchan.conf" || { echo "NCHAN_TLS: could not set the listen line" >&2; exit 1; }
  scheme=https
  tls_flags=(--tls-insecure)
fi

ulimit -n 250000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
log "nginx + nchan on 127.0.0.1:$port (prefix $prefix)"
nginx -p "$prefix" -c "$prefix/nchan.conf"
for _ in $(seq 100); do
  curl -kfsS -o /dev/null "$scheme://127.0.0.1:$port/healthz" 2>/dev/null && break
  sleep 0.1
done
curl -kfsS -o /dev/null "$scheme://127.0.0.1:$port/healthz" || { echo "nginx did not answer" >&2; exit 1; }
export NCHAN_PID="$(cat "$prefix/nginx.pid")"
# For bench/profile.sh: where the master's PID and the port are, once up.
[ -z "${NCHAN_INFO_FILE:-}" ] || echo "$NCHAN_PID $port" >"$NCHAN_INFO_FILE"
# --pid is the master; the bench reads CPU time of it and its workers.
"$bin" bench --target nchan --url "$scheme://127.0.0.1:$port" --pid "$NCHAN_PID" "${tls_flags[@]}" "$@"
