#!/usr/bin/env bash
# Runs the Autobahn WebSocket fuzzingclient cases (through kosoku, a Python 3
# runner of the Autobahn case files) against `feedgate serve --echo`, and
# fails on any case whose verdict is not OK, NON-STRICT or INFORMATIONAL.
#
#   scripts/autobahn-test.sh            # cases 1-7, 9, 10, 12 and 13
#   CASES="1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.*" scripts/autobahn-test.sh  # no deflate (about 15 s)
#   CASES="6.4.* 7.*" scripts/autobahn-test.sh
#   SERVE_ARGS="--echo-max-message 65536" scripts/autobahn-test.sh  # extra serve flags
#
# The HTML/JSON report lands in target/autobahn/report/ (index.html).
# Results and the reasons for each NON-STRICT/INFORMATIONAL: docs/autobahn.md.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KOSOKU_VERSION="0.1.0"
# 1-7: framing, pings, reserved bits, opcodes, fragmentation, UTF-8, close;
# 9: limits and performance (messages up to 16 MiB, inside --echo-max-message);
# 10: auto-fragmentation; 12 and 13: permessage-deflate (RFC 7692), every
# offer and window size, thousands of compressed messages each way (the
# slow part: several minutes on a debug build).
CASES="${CASES:-1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.* 12.* 13.*}"
# Seconds the whole kosoku run may take.
AUTOBAHN_TIMEOUT="${AUTOBAHN_TIMEOUT:-3600}"
OUT="$FEEDGATE_ROOT/target/autobahn"
VENV="$OUT/venv"
REPORT="$OUT/report"

# The cases whose NON-STRICT / INFORMATIONAL verdict is known and explained in
# docs/autobahn.md. Another case landing there passes but is flagged, so the
# doc can be kept true.
KNOWN_NOT_OK="6.4.3 6.4.4 7.1.6 7.13.1 7.13.2"

kosoku_bin() {
  if [ -x "$VENV/bin/kosoku" ] && "$VENV/bin/pip" show kosoku 2>/dev/null | grep -q "^Version: $KOSOKU_VERSION$"; then
    echo "$VENV/bin/kosoku"
    return
  fi
  mkdir -p "$OUT"
  if python3 -m venv "$VENV" >/dev/null 2>&1; then
    log "pip install kosoku==$KOSOKU_VERSION (venv in $VENV)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "kosoku==$KOSOKU_VERSION" >&2
    echo "$VENV/bin/kosoku"
  else
    # No venv module (a bare Debian python3): a user install instead.
    log "pip install --user kosoku==$KOSOKU_VERSION"
    python3 -m pip install -q --user --disable-pip-version-check "kosoku==$KOSOKU_VERSION" >&2
    echo "$(python3 -m site --user-base)/bin/kosoku"
  fi
}

KOSOKU="$(kosoku_bin)"
# FEEDGATE_BIN: another build (a release build runs the 12.x/13.x cases faster).
BIN="${FEEDGATE_BIN:-$(feedgate_bin)}"
PORT="$(free_port)"
SERVER_LOG="$OUT/server.log"
mkdir -p "$OUT"

read -r -a serve_args <<<"${SERVE_ARGS:-}"
log "feedgate serve --echo ${serve_args[*]} on 127.0.0.1:$PORT"
"$BIN" serve --echo --listen "127.0.0.1:$PORT" "${serve_args[@]}" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
stop_server() {
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap stop_server EXIT
wait_http "http://127.0.0.1:$PORT/healthz" 30

includes=()
for c in $CASES; do includes+=(-i "$c"); done
rm -rf "$REPORT"
log "kosoku fuzzingclient: $CASES"
# kosoku exits 1 when a case fails; the report below is the judge either way.
# `timeout` bounds the run on CI whatever a case does.
set +e
timeout "$AUTOBAHN_TIMEOUT" "$KOSOKU" -m fuzzingclient "${includes[@]}" -o "$REPORT" \
  "ws://127.0.0.1:$PORT/echo" >"$OUT/kosoku.log" 2>&1
KOSOKU_RC=$?
set -e
tail -n 3 "$OUT/kosoku.log" >&2

if [ ! -f "$REPORT/index.json" ]; then
  echo "autobahn: no report (kosoku exit $KOSOKU_RC); see $OUT/kosoku.log" >&2
  exit 1
fi

stop_server
trap - EXIT

python3 - "$REPORT/index.json" "$KNOWN_NOT_OK" <<'EOF'
import collections, json, sys

index = json.load(open(sys.argv[1]))
known = set(sys.argv[2].split())
ALLOWED = {"OK", "NON-STRICT", "INFORMATIONAL"}
ALLOWED_CLOSE = {"OK", "INFORMATIONAL"}

def key(case_id):
    return tuple(int(p) for p in case_id.split("."))

cases = {cid: r for agent in index.values() for cid, r in agent.items()}
by_group = collections.defaultdict(collections.Counter)
bad, flagged = [], []
for cid in sorted(cases, key=key):
    r = cases[cid]
    b, bc = r["behavior"], r["behaviorClose"]
    by_group[cid.split(".")[0]][b] += 1
    if b not in ALLOWED or bc not in ALLOWED_CLOSE:
        bad.append(f"{cid}: behavior={b} close={bc} code={r.get('remoteCloseCode')}")
    elif (b != "OK" or bc != "OK") and cid not in known:
        flagged.append(f"{cid}: behavior={b} close={bc}")

print(f"autobahn: {len(cases)} cases")
for g in sorted(by_group, key=int):
    counts = ", ".join(f"{k} {v}" for k, v in sorted(by_group[g].items()))
    print(f"  {g}.x: {counts}")
total = collections.Counter(r["behavior"] for r in cases.values())
print("  total: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
for f in flagged:
    print(f"  note: not OK and not explained in docs/autobahn.md: {f}")
if bad:
    print("autobahn: FAILED cases:")
    for line in bad:
        print("  " + line)
    sys.exit(1)
print("autobahn: all cases OK, NON-STRICT or INFORMATIONAL")
EOF
