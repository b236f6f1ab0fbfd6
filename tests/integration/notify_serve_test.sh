#!/usr/bin/env bash
# Notifications from `herald serve` as processes: events POSTed through the API reach the fake
# Discord API (a process, herald_fake_discord) as a direct message; a server killed with SIGKILL
# while Discord has not answered leaves the claim, which the restarted server takes over once the
# lease runs out and sends; a replay of the notification consumer sends nothing new; the user's
# inbox through the API; SIGTERM stops the worker cleanly.
# Usage: notify_serve_test.sh path/to/herald path/to/herald_fake_discord
set -euo pipefail

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
  echo "usage: $0 path/to/herald path/to/herald_fake_discord" >&2
  exit 2
fi
herald=$1
fake_discord=$2
work=$(mktemp -d)
server_pid=
fake_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  if [ -n "$fake_pid" ]; then kill -TERM "$fake_pid" 2>/dev/null || true; fi
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

"$fake_discord" --port 0 >"$work/fake.out" 2>"$work/fake.err" &
fake_pid=$!
await 10 grep -q '^[0-9]' "$work/fake.out" || fail "the fake Discord did not start"
discord="http://127.0.0.1:$(head -n 1 "$work/fake.out")"

# Starts the server on a free port with the fake Discord and a 2 s lease; sets server_pid, base.
start_server() {
  local name=$1
  shift
  "$herald" serve --db "$work/herald.db" --listen 127.0.0.1:0 \
    --discord-api-base "$discord/api/v10" --delivery-lease-s 2 "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  server_pid=$!
  await 10 grep -q "listening on http://" "$work/$name.out" || fail "$name did not start"
  base=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/$name.out" | head -n 1)
  base=${base#listening on }
  await 10 curl -sf "$base/healthz" || fail "$name does not answer /healthz"
}

delivery_json() { "$herald" deliveries list --channel discord --json --db "$work/herald.db"; }

check "the server says which channels it delivers"
export HERALD_DISCORD_BOT_TOKEN=fake-bot-token
start_server first --bootstrap-admin-token
grep -q 'delivering discord' "$work/first.out" || fail "no delivering line: $(cat "$work/first.out")"
token=$(grep -o 'hrld_[A-Za-z0-9_-]*' "$work/first.out" | head -n 1)
[ -n "$token" ] || fail "no token printed"
auth=(-H "Authorization: Bearer $token")
post() {
  local code
  code=$(curl -s -o "$work/post.out" -w '%{http_code}' "${auth[@]}" \
    -H 'Content-Type: application/json' -d "$1" "$base/api/v1/events")
  [ "$code" = 201 ] || fail "POST gave $code: $(cat "$work/post.out")"
}

check "a Discord direct message for a match, through the API"
curl -sf "${auth[@]}" -X PUT -H 'Content-Type: application/json' \
  -d '{"rules":[{"kind":"match_scheduled","channel":"discord","organization_id":null,"enabled":true}],"muted":[]}' \
  "$base/api/v1/users/42/preferences" >/dev/null || fail "PUT preferences failed"
post '{"event_type":"UserCreatedEvent","entity_type":"User","entity_id":42,"user_id":-1,"discord_id":1042,"discord_username":"swift_runner"}'
post '{"event_type":"MatchScheduledEvent","entity_type":"MatchSchedule","entity_id":9,"user_id":5,"organization_id":7,"tournament_id":3,"scheduled_time":"2026-12-01T19:00:00Z","participant_ids":[42]}'
await 20 bash -c "curl -sf '$discord/_fake/messages' | grep -q 'Your match #9'" ||
  fail "the fake Discord got no message: $(curl -s "$discord/_fake/messages")"
await 10 bash -c "'$herald' deliveries list --status sent --json --db '$work/herald.db' | grep -q '\"attempts\":1'" ||
  fail "the delivery is not recorded as sent: $(delivery_json)"

check "the user's inbox through the API"
curl -sf "${auth[@]}" "$base/api/v1/users/42/inbox" >"$work/inbox.out" || fail "GET inbox failed"
grep -q '"kind":"match_scheduled"' "$work/inbox.out" || fail "no inbox item: $(cat "$work/inbox.out")"

check "SIGKILL while Discord does not answer: the restarted server sends it once the lease ran out"
curl -sf -X POST -d '{"hang":true,"path_contains":"messages"}' "$discord/_fake/script" >/dev/null
post '{"event_type":"MatchScheduledEvent","entity_type":"MatchSchedule","entity_id":10,"user_id":5,"organization_id":7,"tournament_id":3,"scheduled_time":"2026-12-02T19:00:00Z","participant_ids":[42]}'
await 20 bash -c "'$herald' deliveries list --status sending --json --db '$work/herald.db' | grep -q '\"attempts\":1'" ||
  fail "the second delivery was never claimed: $(delivery_json)"
kill -KILL "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=
start_server second
await 30 bash -c "curl -sf '$discord/_fake/messages' | grep -q 'Your match #10'" ||
  fail "the restarted server did not send the held message: $(delivery_json)"
await 10 bash -c "'$herald' deliveries list --status sent --json --db '$work/herald.db' | grep -q '\"attempts\":2'" ||
  fail "the taken-over delivery is not sent after 2 attempts: $(delivery_json)"
count=$(curl -sf "$discord/_fake/messages" | grep -o '"kind":"dm"' | wc -l)
[ "$count" -eq 2 ] || fail "Discord accepted $count direct messages, expected 2"

check "replaying the notification consumer sends nothing new"
before=$(delivery_json | grep -o '"id":' | wc -l)
curl -sf "${auth[@]}" -X POST -H 'Content-Type: application/json' -d '{"from":0}' \
  "$base/api/v1/consumers/notifications/replay" >"$work/replay.out" || fail "replay request failed"
grep -q '"name":"notifications","checkpoint":0,' "$work/replay.out" ||
  fail "the replay did not move the consumer back: $(cat "$work/replay.out")"
head=$(grep -o '"head":[0-9]*' "$work/replay.out")
head=${head#\"head\":}
await 20 bash -c "'$herald' consumers --db '$work/herald.db' --json | grep -q '\"name\":\"notifications\",\"checkpoint\":$head,'" ||
  fail "the notification consumer did not catch up to $head: $("$herald" consumers --db "$work/herald.db" --json)"
after=$(delivery_json | grep -o '"id":' | wc -l)
[ "$after" -eq "$before" ] || fail "the replay created deliveries: $before before, $after after"
count=$(curl -sf "$discord/_fake/messages" | grep -o '"kind":"dm"' | wc -l)
[ "$count" -eq 2 ] || fail "the replay sent messages: $count direct messages"

check "/metrics counts the attempts by channel and outcome"
curl -sf "${auth[@]}" "$base/metrics" >"$work/metrics.out" || fail "GET /metrics failed"
grep -q '^herald_notify_deliveries_total{channel="discord",outcome="sent"} 1$' "$work/metrics.out" ||
  fail "no sent Discord attempt counted: $(grep herald_notify_deliveries_total "$work/metrics.out")"
grep -q '^herald_notify_queue_depth{channel="discord",status="pending"} 0$' "$work/metrics.out" ||
  fail "no queue depth: $(grep herald_notify_queue_depth "$work/metrics.out")"

check "SIGTERM stops the server and its worker cleanly"
kill -TERM "$server_pid"
set +e
wait "$server_pid"
status=$?
set -e
server_pid=
[ "$status" -eq 0 ] || fail "herald serve exited $status after SIGTERM"

check "--smtp-url without --smtp-from is refused with a message"
set +e
"$herald" serve --db "$work/herald.db" --listen 127.0.0.1:0 --smtp-url smtp://127.0.0.1:1 \
  >"$work/smtp.out" 2>"$work/smtp.err"
status=$?
set -e
[ "$status" -eq 2 ] || fail "exit $status, expected 2"
grep -q -- '--smtp-from' "$work/smtp.err" || fail "the message does not name --smtp-from"

echo "notify_serve_test: all checks passed"
