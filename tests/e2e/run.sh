#!/usr/bin/env bash
# The dashboard's browser tests: starts `herald serve` on a free loopback port over a temporary
# database with a fresh admin token, waits for /readyz, runs dashboard.test.mjs (node:test driving
# Debian's chromium through playwright-core), and stops the server by its pid.
# Usage: run.sh path/to/herald [screenshot-dir]   (screenshots default to build/e2e/)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 path/to/herald [screenshot-dir]" >&2
  exit 2
fi
herald=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shots=${2:-$root/build/e2e}
chromium=${HERALD_CHROMIUM:-/usr/bin/chromium}

# Missing tools fail at once with what to install, never as a hang or a timeout.
if ! command -v node >/dev/null 2>&1; then
  echo "e2e: FAIL: node is not on PATH; install it (scripts/deps.sh installs Debian's nodejs)" >&2
  exit 1
fi
if [ ! -x "$chromium" ]; then
  echo "e2e: FAIL: no chromium at $chromium; install Debian's chromium (scripts/deps.sh) or set HERALD_CHROMIUM" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "e2e: FAIL: tests/e2e/node_modules is missing and npm is not on PATH to install it" >&2
    exit 1
  fi
  echo "e2e: installing playwright-core (npm ci in tests/e2e)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) ||
    { echo "e2e: FAIL: npm ci in tests/e2e failed" >&2; exit 1; }
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "e2e: FAIL: $*" >&2
  for f in "$work"/server.out "$work"/server.err; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}

# Polls `cmd` until it succeeds, for up to $1 seconds.
await() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

"$herald" serve --db "$work/herald.db" --listen 127.0.0.1:0 --bootstrap-admin-token --webhook-allow-private \
  ${HERALD_E2E_SERVE_ARGS:-} >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
await 15 grep -q "listening on http://" "$work/server.out" || fail "herald serve did not start"
base=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/server.out" | head -n 1)
base=${base#listening on }
token=$(grep -o 'hrld_[A-Za-z0-9_-]*' "$work/server.out" | head -n 1)
[ -n "$token" ] || fail "herald serve printed no admin token"
await 15 curl -sf "$base/readyz" || fail "$base/readyz did not answer 200"

mkdir -p "$shots"
export HERALD_URL=$base HERALD_TOKEN=$token HERALD_CHROMIUM=$chromium HERALD_E2E_SHOTS=$shots
export HERALD_BIN=$herald HERALD_DB=$work/herald.db
echo "e2e: server at $base (pid $server_pid); screenshots in $shots"
node --test --test-reporter=spec --test-timeout=120000 "$here/dashboard.test.mjs"
