#!/usr/bin/env bash
# Shared helpers for the test scripts: sourced, never run.
# - ensure_apt PKG... : apt-get install what is missing (apt-get update once per run)
# - free_port         : a free TCP port on 127.0.0.1 (for services that cannot take port 0)
# - wait_http URL [SECONDS] : wait until URL answers 2xx
# - feedgate_bin      : path of the release-less debug binary, built if needed

FEEDGATE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FEEDGATE_ROOT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  local stamp="${TMPDIR:-/tmp}/feedgate-apt-updated"
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +60 2>/dev/null)" ]; then
    log "apt-get update"
    $sudo apt-get update -qq && touch "$stamp"
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {
  local url="$1" secs="${2:-30}" i=0
  while [ "$i" -lt $((secs * 10)) ]; do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
    i=$((i + 1))
  done
  echo "timed out waiting for $url" >&2
  return 1
}

feedgate_bin() {
  (cd "$FEEDGATE_ROOT" && cargo build --quiet --bin feedgate >&2)
  echo "${CARGO_TARGET_DIR:-$FEEDGATE_ROOT/target}/debug/feedgate"
}
