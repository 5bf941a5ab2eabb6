#!/usr/bin/env bash
# Soak test: ./scripts/soak.sh [SECONDS] (default 30; the 10-minute figure in
# docs/security.md came from `./scripts/soak.sh 600`).
# Starts feedgate on a free loopback port, pre-fills the log to its
# retention (so the log's own growth does not count as a leak), runs
# examples/soak.rs against it, and stops it. Bounded and loopback-only.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

seconds="${1:-30}"
port="$(free_port)"
bin="$(feedgate_bin)"
cargo build --quiet --example soak
soak="${CARGO_TARGET_DIR:-target}/debug/examples/soak"

"$bin" serve --listen "127.0.0.1:$port" --retention-events 20000 --publish-rate 0 \
  >"${TMPDIR:-/tmp}/feedgate-soak.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
wait_http "http://127.0.0.1:$port/healthz" 30

log "pre-filling the log to its retention"
python3 - "$port" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(20000):
    c.request("POST", "/topics/soak/events", body=b'{"fill":%d}' % i)
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
PY

log "soak for ${seconds}s"
"$soak" --url "http://127.0.0.1:$port" --pid "$pid" --seconds "$seconds"
