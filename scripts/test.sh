#!/usr/bin/env bash
# The whole test suite: installs what the tests need (Debian/npm/PyPI
# packages, when missing), then runs the Rust tests and the tests against
# real components. Everything binds 127.0.0.1 on free ports and is stopped
# on exit. Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_apt curl ca-certificates

log "cargo test (unit + integration)"
cargo test --all-targets

log "browser client package: types, unit tests, bundle, size, npm pack"
./scripts/js-test.sh

log "loom model tests of the concurrency primitives (src/sync/)"
./scripts/loom-test.sh

log "Autobahn WebSocket conformance cases (kosoku)"
./scripts/autobahn-test.sh

log "every endpoint over h2c and over TLS (HTTP/2, HTTP/1.1) with real curl"
./scripts/curl-h2-test.sh

log "Redis Streams backend against a real redis-server"
./scripts/redis-test.sh

log "dashboard against a live Prometheus, promtool lint"
./scripts/prometheus-test.sh

log "all four transports through nginx"
./scripts/nginx-test.sh
./scripts/doctor-test.sh
./scripts/browser-proxy-test.sh

log "feedgate bench against a real Nchan (smoke)"
./scripts/nchan-smoke.sh

log "browser client and demo page in real Chromium"
./scripts/browser-test.sh

log "soak (30 s, all four transports, random churn)"
./scripts/soak.sh 30

log "all tests passed"
