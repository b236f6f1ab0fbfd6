#!/usr/bin/env bash
# Runs `herald serve` as a process, as an operator would: the first-start token, curl against the
# API, a live stream ended cleanly by SIGTERM, checkpoints saved, configuration by environment,
# bad flags, and `herald demo --to` posting through the API.
# Usage: serve_test.sh path/to/herald
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 path/to/herald" >&2
  exit 2
fi
herald=$1
work=$(mktemp -d)
server_pid=
stream_pid=
cleanup() {
  if [ -n "$stream_pid" ]; then kill "$stream_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.out "$work"/*.err; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}
check() { echo "check: $*"; }

# Polls until `cmd` succeeds, for up to $1 seconds.
await() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# Starts the server on a free port; sets server_pid and base.
start_server() {
  local name=$1
  shift
  "$herald" serve --db "$work/herald.db" --listen 127.0.0.1:0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  server_pid=$!
  await 10 grep -q "listening on http://" "$work/$name.out" || fail "$name did not start"
  base=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/$name.out" | head -n 1)
  base=${base#listening on }
  await 10 curl -sf "$base/healthz" || fail "$name does not answer /healthz"
}

check "the first start creates an admin token and prints it with a curl example"
start_server first --bootstrap-admin-token
token=$(grep -o 'hrld_[A-Za-z0-9_-]*' "$work/first.out" | head -n 1)
[ -n "$token" ] || fail "no token printed"
grep -qF "curl -s -H 'Authorization: Bearer $token' '$base/api/v1/events?limit=5'" "$work/first.out" ||
  fail "no curl example with the address"
auth=(-H "Authorization: Bearer $token")

check "curl: one POST, one list"
event='{"event_type":"UserCreatedEvent","entity_type":"User","entity_id":1,"user_id":1,"organization_id":7}'
code=$(curl -s -o "$work/post.out" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
  -d "$event" "$base/api/v1/events")
[ "$code" = 201 ] || fail "POST gave $code: $(cat "$work/post.out")"
curl -sf "${auth[@]}" "$base/api/v1/events" | grep -q '"position":1' || fail "list misses the event"

check "a live stream receives an event and ends cleanly on SIGTERM"
curl -sN "$base/api/v1/events/stream?after=0&access_token=$token" >"$work/stream.out" 2>"$work/stream.err" &
stream_pid=$!
await 10 grep -q '^id: 1$' "$work/stream.out" || fail "the stream did not replay position 1"
curl -sf "${auth[@]}" -H 'Content-Type: application/json' \
  -d '{"event_type":"UserCreatedEvent","entity_type":"User","entity_id":2,"user_id":2}' \
  "$base/api/v1/events" >/dev/null
await 10 grep -q '^id: 2$' "$work/stream.out" || fail "the stream did not deliver position 2 live"
await 10 bash -c "'$herald' consumers --db '$work/herald.db' --json | grep -q '\"checkpoint\":2'" ||
  fail "the audit consumer did not reach position 2"
kill -TERM "$server_pid"
set +e
wait "$server_pid"
server_status=$?
wait "$stream_pid"
stream_status=$?
set -e
server_pid=
stream_pid=
[ "$server_status" -eq 0 ] || fail "herald serve exited $server_status after SIGTERM"
[ "$stream_status" -eq 0 ] || fail "curl's stream ended with status $stream_status (not a clean end)"
grep -q "herald serve: stopped" "$work/first.out" || fail "no stop message"
"$herald" audit verify --db "$work/herald.db" >"$work/verify.out" 2>&1 || fail "audit verify failed"

check "a second start prints no new token; the environment configures the server"
HERALD_RATE_LIMIT=0 HERALD_ACCESS_LOG=1 start_server second --bootstrap-admin-token
grep -q 'hrld_' "$work/second.out" && fail "a second token was printed"
curl -sf "${auth[@]}" "$base/api/v1/catalog" >/dev/null || fail "the first token stopped working"
grep -q 'request .* GET /api/v1/catalog 200' "$work/second.err" || fail "HERALD_ACCESS_LOG had no effect"

check "herald demo --to posts a day through the API"
"$herald" demo --to "$base" --token "$token" --quiet >"$work/demo.out" 2>"$work/demo.err" ||
  fail "demo --to failed"
grep -q "Posted" "$work/demo.out" || fail "demo did not say what it posted"
count=$(curl -sf "${auth[@]}" "$base/api/v1/events?limit=1000" | grep -o '"position":' | wc -l)
[ "$count" -gt 28 ] || fail "only $count events stored after the demo"
kill -INT "$server_pid"
wait "$server_pid" || fail "herald serve exited non-zero after SIGINT"
server_pid=

check "bad flags and a taken address give clear errors"
set +e
"$herald" serve --db "$work/herald.db" --listen nonsense >"$work/bad.out" 2>"$work/bad.err"
status=$?
set -e
[ "$status" -ne 0 ] || fail "--listen nonsense was accepted"
grep -q "listen" "$work/bad.err" || fail "the --listen error does not name it"
set +e
"$herald" serve --db "$work/herald.db" --max-body-bytes 0 >"$work/bad.out" 2>"$work/bad.err"
status=$?
set -e
[ "$status" -eq 2 ] || fail "--max-body-bytes 0 gave status $status, expected 2"
start_server third
port=${base##*:}
set +e
"$herald" serve --db "$work/herald.db" --listen "127.0.0.1:$port" >"$work/taken.out" 2>"$work/taken.err"
status=$?
set -e
[ "$status" -eq 1 ] || fail "a taken port gave status $status, expected 1"
grep -q "cannot listen on 127.0.0.1:$port" "$work/taken.err" || fail "the bind error does not name the address"
set +e
"$herald" demo --to "http://127.0.0.1:$port" --token hrld_wrong --quiet >"$work/demo2.out" 2>"$work/demo2.err"
status=$?
set -e
[ "$status" -ne 0 ] || fail "demo with a wrong token succeeded"
grep -q "401" "$work/demo2.err" || fail "demo with a wrong token does not say 401"
kill -TERM "$server_pid"
wait "$server_pid" || fail "herald serve exited non-zero"
server_pid=

echo "serve: all checks passed"
