#!/usr/bin/env bash
# A small `feedgate bench --target nchan` run against a real Nchan, checked:
# every transport must deliver every event once, in order. Proves the
# bench's Nchan dialect works (the full comparison is docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

out="$(mktemp "${TMPDIR:-/tmp}/nchan-smoke.XXXXXX.json")"
trap 'rm -f "$out"' EXIT
FEEDGATE_BIN="$(feedgate_bin)" ./scripts/nchan-bench.sh \
  --clients 3 --rate 20 --duration 2s --quiet --json "$out"
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = [t for t in r["transports"]
       if (t["lost"], t["dup"], t["reordered"]) != (0, 0, 0) or t["delivered"] != t["expected"]]
for t in r["transports"]:
    print(f'nchan {t["transport"]}: delivered {t["delivered"]}/{t["expected"]}, lost {t["lost"]}, dup {t["dup"]}, reordered {t["reordered"]}')
sys.exit(1 if bad or len(r["transports"]) != 4 else 0)
PY
