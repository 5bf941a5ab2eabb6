#!/usr/bin/env bash
# A small `feedgate bench --target nchan` run against a real Nchan, checked:
# every transport must deliver every event once, in order, in the clear and
# over TLS with HTTP/2. Proves the bench's Nchan dialect works (the full
# comparison is docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

out="$(mktemp "${TMPDIR:-/tmp}/nchan-smoke.XXXXXX.json")"
trap 'rm -f "$out"' EXIT
bin="$(feedgate_bin)"
# In the clear, then over TLS with HTTP/2 (nginx `listen … ssl http2`;
# the WebSocket goes over HTTP/1.1, nginx not taking RFC 8441).
for mode in h1 h2+tls; do
  flags=()
  tls=""
  if [ "$mode" = h2+tls ]; then flags=(--http2); tls=1; fi
  NCHAN_TLS="$tls" FEEDGATE_BIN="$bin" ./scripts/nchan-bench.sh \
    --clients 3 --rate 20 --duration 2s --quiet --json "$out" "${flags[@]}"
  python3 - "$out" "$mode" <<'PY'
import json, sys
r, mode = json.load(open(sys.argv[1])), sys.argv[2]
want = {t: mode for t in ("poll", "longpoll", "sse", "ws")}
if mode == "h2+tls":
    want["ws"] = "h1+tls"
bad = [t for t in r["transports"]
       if (t["lost"], t["dup"], t["reordered"]) != (0, 0, 0) or t["delivered"] != t["expected"]
       or list(t.get("links", {})) != [want[t["transport"]]]]
for t in r["transports"]:
    print(f'nchan {mode} {t["transport"]}: delivered {t["delivered"]}/{t["expected"]}, lost {t["lost"]}, dup {t["dup"]}, reordered {t["reordered"]}, links {t.get("links")}')
sys.exit(1 if bad or len(r["transports"]) != 4 else 0)
PY
done
