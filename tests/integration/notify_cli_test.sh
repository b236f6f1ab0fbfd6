#!/usr/bin/env bash
# Runs `herald notify`, `herald deliveries` and `herald webhooks` as an operator would, on a real
# SQLite file (and on PostgreSQL when HERALD_TEST_PG_URL is set, as scripts/with_postgres.sh
# does), and checks what they print, their exit codes, and that bad input changes nothing stored.
# Usage: notify_cli_test.sh path/to/herald path/to/herald_notify_cli_fixture
set -euo pipefail

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
  echo "usage: $0 path/to/herald path/to/herald_notify_cli_fixture" >&2
  exit 2
fi
herald=$1
fixture=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$work/stdout
err=$work/stderr
pg_bin=${HERALD_PG_BIN:-/usr/lib/postgresql/15/bin}
unset HERALD_DB HERALD_STORE

fail() {
  echo "FAIL: $*" >&2
  echo "--- stdout (first 40 lines):" >&2
  head -n 40 "$out" >&2 || true
  echo "--- stderr:" >&2
  cat "$err" >&2 || true
  exit 1
}

check() { echo "check: $*"; }

# Runs herald with the given arguments; sets $status. Never fails by itself.
run() {
  set +e
  "$herald" "$@" >"$out" 2>"$err"
  status=$?
  set -e
}

expect_status() {
  [ "$status" -eq "$1" ] || fail "herald ${*:2}: exit status $status, expected $1"
}

expect_stdout() {
  grep -qF -- "$1" "$out" || fail "stdout does not contain '$1'"
}

expect_no_stdout() {
  grep -qF -- "$1" "$out" && fail "stdout contains '$1'"
  return 0
}

# Runs a command that must succeed and print $1.
expect_ok() {
  local text=$1
  shift
  run "$@"
  expect_status 0 "$@"
  expect_stdout "$text"
}

# Runs python code on the last stdout (sys.argv[1]); further arguments follow it.
py() {
  python3 - "$out" "${@:2}" <<<"$1" || fail "$(echo "$1" | head -n 1)..."
}

# The location's whole content, to show that a refused command changed nothing.
snapshot() {
  if [ "$flag" = --db ]; then
    sqlite3 "$location" .dump
  else
    # Without the \restrict lines, whose key pg_dump draws anew on every run.
    "$pg_bin/pg_dump" --data-only --no-owner "$location" | grep -v '^\\\(un\)\?restrict '
  fi
}

# Runs a command that must fail: exit status $1, one line on stderr containing $2, nothing on
# stdout, and nothing stored changed.
expect_error() {
  local code=$1 text=$2
  shift 2
  local before
  before=$(snapshot)
  run "$@"
  expect_status "$code" "$@"
  grep -qF -- "$text" "$err" || fail "herald $*: stderr does not contain '$text'"
  [ "$(wc -l <"$err")" -eq 1 ] || fail "herald $*: stderr should be one line"
  [ ! -s "$out" ] || fail "herald $*: printed to stdout on failure"
  [ "$before" = "$(snapshot)" ] || fail "herald $*: changed what is stored"
}

check "herald --help names the notification commands"
run --help
expect_status 0 --help
for command in notify deliveries webhooks; do expect_stdout "$command"; done

check "notify kinds lists the platform's kinds with critical and default channels"
expect_ok "KIND" notify kinds
expect_stdout "user_permission_changed"
expect_stdout "organization_member_removed"
grep -E '^user_permission_changed +yes' "$out" >/dev/null || fail "user_permission_changed is not critical"
run notify kinds --json
expect_status 0 notify kinds --json
py 'import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["channels"] == ["in_app", "discord", "email", "webhook", "discord_channel"], doc
kinds = {k["name"]: k for k in doc["kinds"]}
assert kinds["user_permission_changed"]["critical"] is True, kinds
assert "in_app" in kinds["race_approved"]["default_channels"], kinds
assert all(set(k) == {"name", "description", "critical", "default_channels"} for k in doc["kinds"])'

# One pass over a store: $flag is --db or --store, $location the file or URL.
suite() {
  flag=$1
  location=$2
  local db=("$flag" "$location")
  local where=$3

  check "$where: a herald database with events, deliveries and inbox items"
  run demo --seed 7 --quiet "${db[@]}"
  expect_status 0 demo
  local ids
  ids=$("$fixture" "$location") || fail "the fixture failed"
  local dead failed sent retrying
  eval "$ids"
  [ -n "$dead" ] && [ -n "$failed" ] && [ -n "$sent" ] && [ -n "$retrying" ] ||
    fail "the fixture printed '$ids'"

  check "$where: prefs get for a user with no preferences says the defaults apply"
  expect_ok "user 42 has set no preferences" notify prefs get 42 "${db[@]}"
  run notify prefs get 42 --json "${db[@]}"
  expect_status 0 prefs get --json
  py 'import json, sys
assert json.load(open(sys.argv[1])) == {"user_id": 42, "rules": [], "muted": []}'

  check "$where: prefs set adds a rule, and setting it again replaces it"
  expect_ok "user 42: tournament_started on discord for organization 7: on" \
    notify prefs set 42 --kind tournament_started --channel discord --org 7 --on "${db[@]}"
  check "$where: prefs get shows what the user is told, for one organization or all"
  expect_ok "what user 42 is told, for organization 7:" notify prefs get 42 --org 7 "${db[@]}"
  grep -E '^tournament_started +- +on +-$' "$out" >/dev/null || fail "not told on Discord in org 7"
  grep -E '^user_permission_changed +on +- +-$' "$out" >/dev/null || fail "critical not in_app"
  expect_stdout "note: user 42 has no email address: no email reaches them"
  expect_no_stdout "has no Discord id"
  expect_ok "what user 42 is told, for every organization:" notify prefs get 42 "${db[@]}"
  grep -E '^tournament_started +- +- +-$' "$out" >/dev/null || fail "told outside org 7"
  expect_ok "note: no event has created user 4242 yet" notify prefs get 4242 "${db[@]}"
  expect_ok "user 42: race_approved on email for every organization: off" \
    notify prefs set 42 --kind race_approved --channel email --off "${db[@]}"
  expect_ok "tournament_started on discord for organization 7: off" \
    notify prefs set 42 --kind tournament_started --channel discord --org 7 --off "${db[@]}"
  run notify prefs get 42 --json "${db[@]}"
  py 'import json, sys
doc = json.load(open(sys.argv[1]))
rules = sorted((r["kind"], r["channel"], r["organization_id"], r["enabled"]) for r in doc["rules"])
assert rules == [("race_approved", "email", None, False),
                 ("tournament_started", "discord", 7, False)], rules'
  expect_ok "race_approved" notify prefs get 42 "${db[@]}"
  grep -E '^tournament_started +discord +7 +off' "$out" >/dev/null || fail "no tournament_started row"
  grep -E '^race_approved +email +all +off' "$out" >/dev/null || fail "no race_approved row"
  expect_stdout "muted: nothing"

  check "$where: mute and unmute a channel"
  expect_ok "user 42 muted email" notify mute 42 email "${db[@]}"
  expect_ok "has muted email already; nothing changed" notify mute 42 email "${db[@]}"
  run notify prefs get 42 --json "${db[@]}"
  py 'import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["muted"] == ["email"] and len(doc["rules"]) == 2, doc'
  expect_ok "critical kinds still reach the inbox" notify mute 42 in_app "${db[@]}"
  expect_ok "user 42 unmuted in_app" notify unmute 42 in_app "${db[@]}"
  expect_ok "user 42 unmuted email" notify unmute 42 email "${db[@]}"
  run notify prefs get 42 --json "${db[@]}"
  py 'import json, sys
assert json.load(open(sys.argv[1]))["muted"] == []'

  check "$where: email sets and clears a user's address"
  expect_ok "user 43's email address is racer@example.org" \
    notify email 43 racer@example.org "${db[@]}"
  expect_ok "user 43 has no email address now" notify email 43 --clear "${db[@]}"

  check "$where: inbox lists a user's items newest first with the unread count, and pages"
  expect_ok "4 unread" notify inbox 42 "${db[@]}"
  expect_stdout "Your race 4 was approved"
  expect_stdout "race_approved"
  [ "$(grep -c '  unread  ' "$out")" -eq 4 ] || fail "the items are not shown unread"
  run notify inbox 42 --json "${db[@]}"
  expect_status 0 inbox --json
  py 'import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["unread"] == 4 and doc["next_before"] is None, doc
titles = [i["title"] for i in doc["items"]]
assert titles == ["Your race 4 was approved", "Your race 3 was approved",
                  "Your race 2 was approved", "Your race 1 was approved"], titles
item = doc["items"][0]
assert set(item) == {"id", "kind", "title", "body", "link", "event_id", "organization_id",
                     "created_at", "seen_at", "read_at", "archived_at"}, item
assert item["organization_id"] == 7 and item["read_at"] is None and item["link"] == "/races/4"
assert item["created_at"].endswith("Z") and len(item["created_at"]) == 27, item'
  run notify inbox 42 --limit 3 --json "${db[@]}"
  local next
  next=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["next_before"])' "$out")
  expect_ok "more: herald notify inbox 42 --before $next" notify inbox 42 --limit 3 "${db[@]}"
  run notify inbox 42 --before "$next" --json "${db[@]}"
  py 'import json, sys
doc = json.load(open(sys.argv[1]))
assert [i["title"] for i in doc["items"]] == ["Your race 1 was approved"], doc'
  expect_ok "4 unread" notify inbox 42 --unread "${db[@]}"
  expect_ok "user 42 has no archived inbox items" notify inbox 42 --archived "${db[@]}"
  expect_ok "user 99 has no inbox items" notify inbox 99 "${db[@]}"
  expect_stdout "0 unread"

  check "$where: deliveries list shows the queue, newest first, with filters"
  expect_ok "STATUS" deliveries list "${db[@]}"
  for status in dead failed sent retrying; do expect_stdout "$status"; done
  expect_stdout "Discord answered 503"
  expect_stdout "email:invited@example.org"
  run deliveries list --json "${db[@]}"
  expect_status 0 deliveries list --json
  py 'import json, sys
doc = json.load(open(sys.argv[1]))
items = doc["items"]
assert len(items) == 4 and doc["next_before"] is None, doc
ids = [i["id"] for i in items]
assert ids == sorted(ids, reverse=True), ids
fields = {"id", "event_id", "position", "channel", "recipient", "user_id", "organization_id",
          "kind", "status", "attempts", "next_attempt_at", "last_error", "last_status_code",
          "created_at", "updated_at"}
assert all(set(i) == fields for i in items), items[0]
assert all(i["attempts"] == 1 for i in items), items'
  run deliveries list --status dead --json "${db[@]}"
  py 'import json, sys
items = json.load(open(sys.argv[1]))["items"]
assert [(i["id"], i["channel"], i["last_status_code"]) for i in items] == [(int(sys.argv[2]), "discord", 503)], items' "$dead"
  run deliveries list --channel email --json "${db[@]}"
  py 'import json, sys
items = json.load(open(sys.argv[1]))["items"]
assert sorted(i["status"] for i in items) == ["failed", "sent"], items'
  run deliveries list --user 42 --org 7 --json "${db[@]}"
  py 'import json, sys
items = json.load(open(sys.argv[1]))["items"]
assert sorted(i["channel"] for i in items) == ["discord", "email"], items'
  run deliveries list --limit 3 --json "${db[@]}"
  py 'import json, sys
doc = json.load(open(sys.argv[1]))
assert len(doc["items"]) == 3 and doc["next_before"] == doc["items"][-1]["id"], doc'
  expect_ok "no deliveries in" deliveries list --status sending "${db[@]}"

  check "$where: deliveries show prints a delivery and its attempts"
  expect_ok "delivery $dead" deliveries show "$dead" "${db[@]}"
  expect_stdout "status:        dead"
  expect_stdout "recipient:     user:42"
  expect_stdout "last status:   503"
  grep -E '^ +1 .* dead +503 +Discord answered 503' "$out" >/dev/null || fail "no attempt row"
  expect_no_stdout "80351110224678912"
  run deliveries show "$retrying" --json "${db[@]}"
  py 'import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["status"] == "retrying" and doc["channel"] == "discord_channel", doc
assert "payload" not in doc, doc
assert [(a["attempt"], a["outcome"], a["status_code"], a["duration_us"]) for a in doc["attempts"]] == [(1, "retrying", 429, 1500)], doc'

  check "$where: deliveries resend makes a dead or failed delivery pending, keeping its attempts"
  expect_ok "delivery $dead (discord to user:42) is pending again, due now, after 1 attempt" \
    deliveries resend "$dead" "${db[@]}"
  run deliveries show "$dead" --json "${db[@]}"
  py 'import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["status"] == "pending" and doc["attempts"] != [] and len(doc["attempts"]) == 1, doc'
  expect_ok "is pending again" deliveries resend "$failed" "${db[@]}"
  expect_error 1 "delivery $sent is sent; only a dead or failed delivery is re-sent" \
    deliveries resend "$sent" "${db[@]}"
  expect_error 1 "delivery $dead is pending; only a dead or failed" \
    deliveries resend "$dead" "${db[@]}"

  check "$where: webhooks add registers an endpoint and shows its secret once"
  expect_ok "created webhook endpoint" webhooks add --org 7 --url https://example.org/hooks/herald \
    --types TournamentStartedEvent,TournamentEndedEvent "${db[@]}"
  expect_stdout "(TournamentStartedEvent,TournamentEndedEvent)"
  local secret endpoint
  secret=$(sed -nE 's/^secret: (whsec_[A-Za-z0-9+\/=]+)$/\1/p' "$out")
  [ -n "$secret" ] || fail "webhooks add printed no secret"
  endpoint=$(sed -nE 's/^created webhook endpoint ([0-9]+) .*/\1/p' "$out")
  run webhooks add --org 8 --url http://hooks.example.net/all --json "${db[@]}"
  expect_status 0 webhooks add --json
  py 'import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["organization_id"] == 8 and doc["event_types"] == [] and doc["active"] is True, doc
assert doc["secret"].startswith("whsec_") and doc["secret_hint"] == doc["secret"][:10] + "…", doc'

  check "$where: webhooks list shows endpoints with a secret hint, never the secret"
  expect_ok "https://example.org/hooks/herald" webhooks list "${db[@]}"
  expect_stdout "${secret:0:10}…"
  expect_no_stdout "$secret"
  expect_stdout "http://hooks.example.net/all"
  run webhooks list --org 7 --json "${db[@]}"
  py 'import json, sys
items = json.load(open(sys.argv[1]))["items"]
assert [(i["id"], i["url"], i["event_types"]) for i in items] == [(int(sys.argv[2]), "https://example.org/hooks/herald", ["TournamentStartedEvent", "TournamentEndedEvent"])], items
assert "secret" not in items[0], items' "$endpoint"
  expect_ok "no webhook endpoints for organization 9" webhooks list --org 9 "${db[@]}"

  check "$where: webhooks disable and enable"
  expect_ok "webhook endpoint $endpoint (https://example.org/hooks/herald) is disabled: receiver retired" \
    webhooks disable "$endpoint" --reason "receiver retired" "${db[@]}"
  expect_ok "no: receiver retired" webhooks list --org 7 "${db[@]}"
  run webhooks list --org 7 --json "${db[@]}"
  py 'import json, sys
item = json.load(open(sys.argv[1]))["items"][0]
assert item["active"] is False and item["disabled_reason"] == "receiver retired", item'
  expect_ok "is active again" webhooks enable "$endpoint" "${db[@]}"
  run webhooks list --org 7 --json "${db[@]}"
  py 'import json, sys
item = json.load(open(sys.argv[1]))["items"][0]
assert item["active"] is True and item["consecutive_failures"] == 0, item'

  check "$where: webhooks rotate prints a new secret; the listing hints at the new one"
  expect_ok "has a new secret; the previous one also signs until" webhooks rotate "$endpoint" "${db[@]}"
  local rotated
  rotated=$(sed -nE 's/^secret: (whsec_[A-Za-z0-9+\/=]+)$/\1/p' "$out")
  [ -n "$rotated" ] && [ "$rotated" != "$secret" ] || fail "rotate printed no new secret"
  run webhooks list --org 7 --json "${db[@]}"
  py 'import json, sys
item = json.load(open(sys.argv[1]))["items"][0]
assert item["secret_hint"] == sys.argv[2][:10] + "…", item' "$rotated"

  check "$where: notify announce sets and clears an organization's Discord channel, token masked"
  expect_ok "organization 7 announces its tournaments in Discord through https://discord.com/api/webhooks/123/…" \
    notify announce 7 https://discord.com/api/webhooks/123/secret-token "${db[@]}"
  expect_no_stdout "secret-token"
  expect_ok "organization 7 has no Discord announcement channel now" \
    notify announce 7 --clear "${db[@]}"

  check "$where: bad kinds, channels, ids and flags are refused, naming them, changing nothing"
  expect_error 2 "--kind 'nope': expected a notification kind" \
    notify prefs set 42 --kind nope --channel email --on "${db[@]}"
  expect_error 2 "--channel 'sms': expected a channel: in_app, discord, email" \
    notify prefs set 42 --kind race_approved --channel sms --on "${db[@]}"
  expect_error 2 "a user's notifications go to in_app, discord or email" \
    notify prefs set 42 --kind race_approved --channel webhook --on "${db[@]}"
  expect_error 2 "'user_permission_changed' is a critical kind" \
    notify prefs set 42 --kind user_permission_changed --channel in_app --off "${db[@]}"
  expect_error 2 "give either --on or --off" \
    notify prefs set 42 --kind race_approved --channel email "${db[@]}"
  expect_error 2 "give either --on or --off" \
    notify prefs set 42 --kind race_approved --channel email --on --off "${db[@]}"
  expect_error 2 "USER 'abc': expected a user id" \
    notify prefs set abc --kind race_approved --channel email --on "${db[@]}"
  expect_error 2 "--org '-3': expected an organization id" \
    notify prefs set 42 --kind race_approved --channel email --org -3 --on "${db[@]}"
  expect_error 2 "USER '99999999999999999999': expected a user id" \
    notify prefs get 99999999999999999999 "${db[@]}"
  expect_error 2 "--org '7x': expected an organization id" notify prefs get 42 --org 7x "${db[@]}"
  expect_error 2 "CHANNEL 'pager': expected a channel" notify mute 42 pager "${db[@]}"
  expect_error 2 "USER '0': expected a user id" notify unmute 0 email "${db[@]}"
  expect_error 2 "--limit '0': expected a whole number from 1 to 1000" \
    notify inbox 42 --limit 0 "${db[@]}"
  expect_error 2 "--limit '1001'" notify inbox 42 --limit 1001 "${db[@]}"
  expect_error 2 "--before 'x': expected an inbox item id" notify inbox 42 --before x "${db[@]}"
  expect_error 2 "--status 'lost': expected a delivery status" \
    deliveries list --status lost "${db[@]}"
  expect_error 2 "--channel 'sms': expected a channel" deliveries list --channel sms "${db[@]}"
  expect_error 2 "--channel 'in_app': in-app notifications are inbox items, not deliveries" \
    deliveries list --channel in_app "${db[@]}"
  expect_error 2 "--event 'not-a-uuid': expected an event id" \
    deliveries list --event not-a-uuid "${db[@]}"
  expect_error 2 "ID 'abc': expected a delivery id" deliveries show abc "${db[@]}"
  expect_error 2 "ID is required" deliveries show "${db[@]}"
  expect_error 1 "no delivery 999999 in" deliveries show 999999 "${db[@]}"
  expect_error 1 "no delivery 999999 in" deliveries resend 999999 "${db[@]}"
  expect_error 1 "no webhook endpoint 999999 in" webhooks disable 999999 "${db[@]}"
  expect_error 1 "no webhook endpoint 999999 in" webhooks enable 999999 "${db[@]}"
  expect_error 1 "no webhook endpoint 999999 in" webhooks rotate 999999 "${db[@]}"
  expect_error 2 "ID 'x': expected a webhook endpoint id" webhooks rotate x "${db[@]}"
  expect_error 2 "--reason '': expected 1 to 200 bytes" \
    webhooks disable "$endpoint" --reason "" "${db[@]}"
  expect_error 2 "--reason 'a?b': expected 1 to 200 bytes" \
    webhooks disable "$endpoint" --reason $'a\nb' "${db[@]}"

  check "$where: malformed, oversized and hostile addresses and URLs are refused"
  expect_error 2 "ADDRESS 'not an address'" notify email 42 "not an address" "${db[@]}"
  expect_error 2 "ADDRESS 'a@b.example?Bcc: x@evil.example'" \
    notify email 42 $'a@b.example\nBcc: x@evil.example' "${db[@]}"
  expect_error 2 "ADDRESS 'aaaa" notify email 42 "$(printf 'a%.0s' {1..300})@example.org" "${db[@]}"
  expect_error 2 "give either an ADDRESS (a@example.org) or --clear" notify email 42 "${db[@]}"
  expect_error 2 "give either an ADDRESS" notify email 42 a@example.org --clear "${db[@]}"
  expect_error 2 "--url 'ftp://example.org/x': expected an http:// or https:// URL" \
    webhooks add --org 7 --url ftp://example.org/x "${db[@]}"
  expect_error 2 "--url 'https://exa mple.org/': a URL cannot hold spaces" \
    webhooks add --org 7 --url "https://exa mple.org/" "${db[@]}"
  expect_error 2 "--url 'https:///path': the URL has no host" \
    webhooks add --org 7 --url "https:///path" "${db[@]}"
  expect_error 2 "--url: the URL has 3020 bytes; at most 2048" \
    webhooks add --org 7 --url "https://example.org/$(printf 'a%.0s' {1..3000})" "${db[@]}"
  expect_error 2 "--types: 'BogusEvent' is not an event type" \
    webhooks add --org 7 --url https://example.org/h --types TournamentStartedEvent,BogusEvent "${db[@]}"
  expect_error 2 "--types 'TournamentStartedEvent,,TournamentEndedEvent': expected event types" \
    webhooks add --org 7 --url https://example.org/h \
    --types TournamentStartedEvent,,TournamentEndedEvent "${db[@]}"
  expect_error 2 "--types '': expected event types separated by commas" \
    webhooks add --org 7 --url https://example.org/h --types "" "${db[@]}"
  expect_error 2 "--org 'seven': expected an organization id" \
    webhooks add --org seven --url https://example.org/h "${db[@]}"
  expect_error 2 "--url is required" webhooks add --org 7 "${db[@]}"
  expect_error 2 "URL 'javascript:alert(1)': expected an http:// or https:// URL" \
    notify announce 7 'javascript:alert(1)' "${db[@]}"
  expect_error 2 "give either a Discord channel webhook URL" notify announce 7 "${db[@]}"
}

suite --db "$work/herald.db" SQLite

check "a missing, unreadable or non-herald database is reported, never created"
missing=$work/missing.db
run deliveries list --db "$missing"
expect_status 1 deliveries list --db missing
grep -qF "no herald database at '$missing': the file does not exist" "$err" || fail "missing db"
[ ! -e "$missing" ] || fail "deliveries list created $missing"
printf 'this is not a database\n%.0s' {1..200} >"$work/garbage.db"
run notify prefs get 42 --db "$work/garbage.db"
expect_status 1 prefs get --db garbage
[ "$(wc -l <"$err")" -eq 1 ] || fail "garbage db: expected one line on stderr"
grep -qF "it is corrupt or not a database" "$err" || fail "garbage db: no clear message"
mkdir "$work/dir.db"
run webhooks list --db "$work/dir.db"
expect_status 1 webhooks list --db dir
grep -qF "is a directory, not a herald database file" "$err" || fail "directory db"
: >"$work/empty.db"
run notify inbox 42 --db "$work/empty.db"
expect_status 1 inbox --db empty
grep -qF "is an empty file, not a herald database" "$err" || fail "empty db"
run deliveries list --db "$work/herald.db" --store postgresql://x@127.0.0.1/y
expect_status 2 deliveries list --db --store
grep -qF "not both" "$err" || fail "--db and --store together"

check "HERALD_DB names the database when no flag does"
set +e
HERALD_DB=$work/herald.db "$herald" webhooks list --org 7 >"$out" 2>"$err"
status=$?
set -e
expect_status 0 HERALD_DB=... webhooks list
expect_stdout "https://example.org/hooks/herald"

if [ -n "${HERALD_TEST_PG_URL:-}" ]; then
  suite --store "$HERALD_TEST_PG_URL" PostgreSQL
fi

echo "notify_cli_test: all checks passed"
