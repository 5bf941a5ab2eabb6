#!/usr/bin/env bash
# The Redis Streams backend's tests against a real redis-server: installs
# the Debian package when missing, then runs tests/redis.rs with
# FEEDGATE_REQUIRE_REDIS=1, so a missing redis-server fails instead of
# skipping. Each test starts its own redis-server on a free 127.0.0.1 port
# and stops it at the end. Usage: ./scripts/redis-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_apt redis-server

log "cargo test --test redis (redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'))"
FEEDGATE_REQUIRE_REDIS=1 cargo test --test redis
