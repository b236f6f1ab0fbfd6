#!/usr/bin/env bash
# Runs the herald executable as a user would and checks what it prints and its exit codes.
# Usage: cli_test.sh path/to/herald
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 path/to/herald (an executable herald binary)" >&2
  exit 2
fi
herald=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$work/stdout
err=$work/stderr

# The 28 types of the platform catalog (ORIGINAL.md).
types=(
  UserCreatedEvent UserUpdatedEvent UserDeletedEvent UserPermissionChangedEvent
  OrganizationCreatedEvent OrganizationUpdatedEvent OrganizationDeletedEvent
  OrganizationMemberAddedEvent OrganizationMemberRemovedEvent
  OrganizationMemberPermissionChangedEvent
  TournamentCreatedEvent TournamentUpdatedEvent TournamentDeletedEvent TournamentStartedEvent
  TournamentEndedEvent
  RaceSubmittedEvent RaceApprovedEvent RaceRejectedEvent MatchScheduledEvent MatchCompletedEvent
  InviteCreatedEvent InviteAcceptedEvent InviteRejectedEvent InviteExpiredEvent
  DiscordGuildLinkedEvent DiscordGuildUnlinkedEvent PresetCreatedEvent PresetUpdatedEvent
)

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

expect_stderr() {
  grep -qF -- "$1" "$err" || fail "stderr does not contain '$1'"
}

expect_one_line_stderr() {
  [ "$(wc -l <"$err")" -eq 1 ] || fail "stderr should be one line, it has $(wc -l <"$err")"
}

store_commands=(events audit consumers replay parked)

check "herald --help prints the usage and every command, exit 0"
run --help
expect_status 0 --help
expect_stdout "Usage: herald"
for command in demo catalog schema "${store_commands[@]}"; do expect_stdout "$command"; done

check "herald --version prints the version, exit 0"
run --version
expect_status 0 --version
grep -qE '^herald [0-9]+\.[0-9]+\.[0-9]+' "$out" || fail "--version printed no 'herald X.Y.Z'"

check "herald with no command prints the usage, exit 0"
run
expect_status 0 "(no arguments)"
expect_stdout "Usage: herald"

for command in demo catalog schema; do
  check "herald $command --help prints its usage, exit 0"
  run "$command" --help
  expect_status 0 "$command" --help
  expect_stdout "Usage: herald $command"
done

check "herald demo emits every one of the 28 types and prints the stats"
run demo --seed 7
expect_status 0 demo --seed 7
for type in "${types[@]}"; do expect_stdout "$type"; done
expect_stdout "28 of 28 catalog types"
expect_stdout "Handler stats"
for handler in audit-log notifier statistics; do expect_stdout "$handler"; done
expect_stdout "events dispatched"
grep -qE '^[0-9]{2}:[0-9]{2}:[0-9]{2} audit  user_created' "$out" || fail "demo printed no audit line"
expect_stdout "notify "

check "herald demo is deterministic for a seed (ids, dates and durations aside)"
strip_variable() { sed -E 's/[0-9.]+ (ns|µs|ms|s)//g; s/[0-9]{4}-[0-9]{2}-[0-9]{2}//g; s/ +$//' "$1"; }
cp "$out" "$work/first"
run demo --seed 7
expect_status 0 demo --seed 7
diff <(strip_variable "$work/first") <(strip_variable "$out") >/dev/null ||
  fail "two runs of 'herald demo --seed 7' differ"

check "herald demo --quiet prints the summary but no audit lines"
run demo --quiet
expect_status 0 demo --quiet
expect_stdout "Handler stats"
if grep -q ' audit  ' "$out"; then fail "demo --quiet printed audit lines"; fi

check "herald catalog lists the 28 types"
run catalog
expect_status 0 catalog
for type in "${types[@]}"; do expect_stdout "$type"; done
expect_stdout "28 event types"

check "herald catalog --json is JSON with the 28 types"
run catalog --json
expect_status 0 catalog --json
python3 -c '
import json, sys
catalog = json.load(open(sys.argv[1]))
names = {t["name"] for t in catalog["types"]}
assert catalog["count"] == 28 and len(names) == 28, f"{len(names)} types"
missing = set(sys.argv[2:]) - names
assert not missing, f"missing {missing}"
' "$out" "${types[@]}" || fail "catalog --json is not the expected JSON"

check "herald schema UserCreatedEvent is a JSON Schema"
run schema UserCreatedEvent
expect_status 0 schema UserCreatedEvent
python3 -c '
import json, sys
schema = json.load(open(sys.argv[1]))
assert "$schema" in schema, "no $schema"
assert schema["properties"]["event_type"]["const"] == "UserCreatedEvent"
assert "discord_id" in schema["properties"]
' "$out" || fail "schema UserCreatedEvent is not the expected JSON Schema"

check "herald schema (no type) is one JSON Schema of the whole catalog"
run schema
expect_status 0 schema
python3 -c '
import json, sys
schema = json.load(open(sys.argv[1]))
assert "$schema" in schema and len(schema["$defs"]) == 28
' "$out" || fail "schema of the catalog is not the expected JSON Schema"

check "herald schema of an unknown type exits 2 and names the type and close matches"
run schema UserCreated
expect_status 2 schema UserCreated
expect_stderr "UserCreated"
expect_stderr "did you mean UserCreatedEvent"
expect_one_line_stderr
[ ! -s "$out" ] || fail "schema of an unknown type printed to stdout"

check "herald with an unknown command exits 2 with one line naming it"
run frobnicate
expect_status 2 frobnicate
expect_stderr "unknown command 'frobnicate'"
expect_one_line_stderr

check "herald demo --seed abc exits 2 with one line naming the option and the value"
run demo --seed abc
expect_status 2 demo --seed abc
expect_stderr "--seed"
expect_stderr "abc"
expect_one_line_stderr

check "herald demo with an unknown option exits 2"
run demo --bogus
expect_status 2 demo --bogus
expect_stderr "--bogus"
expect_one_line_stderr

# ---------------------------------------------------------------------------------------------
# The store commands: events, audit, consumers, replay, parked (docs/store.md, docs/audit.md,
# docs/consumers.md), against a SQLite file the demo fills.

db=$work/herald.db
day=$(date -u +%F)

# Runs Python code on the last stdout (sys.argv[1]); a failed assertion fails the check.
py() {
  python3 - "$out" "${@:2}" <<<"$1" || fail "$(echo "$1" | head -n 1)..."
}

# Runs a command that must fail: exit status $1, one line on stderr containing $2, nothing on
# stdout.
expect_error() {
  local code=$1 text=$2
  shift 2
  run "$@"
  expect_status "$code" "$@"
  expect_stderr "$text"
  expect_one_line_stderr
  [ ! -s "$out" ] || fail "herald $*: printed to stdout on failure"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

for command in "${store_commands[@]}"; do
  check "herald $command --help prints its usage, exit 0"
  run "$command" --help
  expect_status 0 "$command" --help
  expect_stdout "Usage: herald $command"
done
# shellcheck disable=SC2086 # $command is two words on purpose
for command in "events list" "events get" "audit list" "audit verify" "audit head" \
  "audit export" "parked list" "parked retry" "parked discard"; do
  check "herald $command --help names --db and --store, exit 0"
  run $command --help
  expect_status 0 $command --help
  expect_stdout "Usage: herald $command"
  expect_stdout "--db"
  expect_stdout "--store"
done

check "every store command on a missing --db fails with one line and creates no file"
# shellcheck disable=SC2086 # $args is several words on purpose
for args in "events list" "events get 01890f3c-4d5e-7abc-8def-0123456789ab" "audit list" \
  "audit verify" "audit head" "audit export --format csv" "consumers" "replay audit --from 0" \
  "parked list" "parked retry audit 1" "parked discard audit 1"; do
  expect_error 1 "does not exist" $args --db "$work/missing.db"
  [ ! -e "$work/missing.db" ] || fail "herald $args created $work/missing.db"
done

check "herald demo --db records the day, runs the audit log and the role sync, and says so"
run demo --seed 7 --db "$db"
expect_status 0 demo --seed 7 --db "$db"
expect_stdout "28 of 28 catalog types"
expect_stdout "History in '$db': this day added"
expect_stdout "hash chain verified"
expect_stdout "audit at"
expect_stdout "discord-roles at"
expect_stdout "1 parked"
expect_stdout "audit verify --db $db"
first_day=$(sed -nE 's/.*this day added ([0-9]+) events.*/\1/p' "$out")
[ "${first_day:-0}" -ge 28 ] || fail "the demo day stored ${first_day:-no} events"

check "herald demo --db a second time adds a second day to the same history"
run demo --seed 8 --quiet --db "$db"
expect_status 0 demo --seed 8 --quiet --db "$db"
expect_stdout "in all"
total=$(sed -nE 's/.*it holds ([0-9]+) in all.*/\1/p' "$out")
second_day=$(sed -nE 's/.*this day added ([0-9]+) events.*/\1/p' "$out")
[ "$total" -eq $((first_day + second_day)) ] || fail "history holds $total events, not $first_day + $second_day"

check "herald events list prints a table, oldest first, with a next-page hint"
run events list --db "$db" --limit 5
expect_status 0 events list
expect_stdout "POSITION"
expect_stdout "EVENT ID"
expect_stdout "5 of $total events matching, oldest first; next page: --after 5"

check "herald events list --json returns every event in position order"
run events list --db "$db" --json --limit 100000
expect_status 0 events list --json
py 'import json, sys
events = json.load(open(sys.argv[1]))["events"]
total = int(sys.argv[2])
assert len(events) == total, len(events)
assert [e["position"] for e in events] == list(range(1, total + 1))
assert len({e["event"]["event_id"] for e in events}) == total' "$total"
cp "$out" "$work/all_events.json"

check "herald events list filters by type, organization, entity and time"
run events list --db "$db" --json --type UserCreatedEvent --type UserDeletedEvent
expect_status 0 events list --type
py 'import json, sys
events = json.load(open(sys.argv[1]))["events"]
assert events and {e["event"]["event_type"] for e in events} == {"UserCreatedEvent", "UserDeletedEvent"}'
org=$(python3 -c 'import json, sys
print(next(e["event"]["organization_id"] for e in json.load(open(sys.argv[1]))["events"] if e["event"]["organization_id"]))' "$work/all_events.json")
run events list --db "$db" --json --org "$org"
expect_status 0 events list --org
py 'import json, sys
events = json.load(open(sys.argv[1]))["events"]
assert events and all(e["event"]["organization_id"] == int(sys.argv[2]) for e in events)' "$org"
run events list --db "$db" --json --entity-type Organization --entity-id "$org"
expect_status 0 events list --entity-type --entity-id
py 'import json, sys
events = json.load(open(sys.argv[1]))["events"]
assert events and all(e["event"]["entity_type"] == "Organization" and str(e["event"]["entity_id"]) == sys.argv[2] for e in events)' "$org"
run events list --db "$db" --json --since "${day}T12:00:00Z" --until "${day}T18:00:00Z"
expect_status 0 events list --since --until
py 'import json, sys
events = json.load(open(sys.argv[1]))["events"]
assert events and all("T12:00:00" <= e["event"]["timestamp"][10:] < "T18:00:00" for e in events), len(events)'
run events list --db "$db" --json --since "$day" --limit 3
expect_status 0 events list --since DATE
py 'import json, sys; assert len(json.load(open(sys.argv[1]))["events"]) == 3'

check "herald events list --after, --newest-first and --before page through the store"
run events list --db "$db" --json --after 10 --limit 4
expect_status 0 events list --after
py 'import json, sys; assert [e["position"] for e in json.load(open(sys.argv[1]))["events"]] == [11, 12, 13, 14]'
run events list --db "$db" --json --newest-first --limit 3
expect_status 0 events list --newest-first
py 'import json, sys, functools
t = int(sys.argv[2]); assert [e["position"] for e in json.load(open(sys.argv[1]))["events"]] == [t, t - 1, t - 2]' "$total"
run events list --db "$db" --json --newest-first --before 10 --after 6
expect_status 0 events list --newest-first --before --after
py 'import json, sys; assert [e["position"] for e in json.load(open(sys.argv[1]))["events"]] == [9, 8, 7]'

check "herald events list rejects bad input with exit 2 and one line"
expect_error 2 "--type 'UserCreated'" events list --db "$db" --type UserCreated
expect_error 2 "--since 'yesterday'" events list --db "$db" --since yesterday
expect_error 2 "--until '2026-13-01'" events list --db "$db" --until 2026-13-01
expect_error 2 "--after '-1'" events list --db "$db" --after -1
expect_error 2 "--after 'x'" events list --db "$db" --after x
expect_error 2 "--limit '0'" events list --db "$db" --limit 0
expect_error 2 "--org 'acme'" events list --db "$db" --org acme
expect_error 2 "--before pages newest first" events list --db "$db" --before 5
expect_error 2 "--bogus" events list --db "$db" --bogus

check "herald events get shows one event; --json is its stored form"
id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["events"][4]["event"]["event_id"])' "$work/all_events.json")
run events get "$id" --db "$db"
expect_status 0 events get
expect_stdout "$id"
expect_stdout "position"
expect_stdout "event_type"
run events get "$id" --db "$db" --json
expect_status 0 events get --json
py 'import json, sys
stored = json.load(open(sys.argv[1]))
assert stored["position"] == 5 and stored["event"]["event_id"] == sys.argv[2]' "$id"

check "herald events get of an unknown id exits 1, of a malformed id exits 2"
expect_error 1 "no event with id 01890f3c-4d5e-7abc-8def-0123456789ab" events get 01890f3c-4d5e-7abc-8def-0123456789ab --db "$db"
expect_error 2 "'not-an-id' is not an event id" events get not-an-id --db "$db"
expect_error 2 "EVENT_ID is required" events get --db "$db"

check "herald audit list prints records newest first with a total and a next-page hint"
run audit list --db "$db" --limit 4
expect_status 0 audit list
expect_stdout "ACTION"
expect_stdout "4 of $total audit records matching, newest first; next page: --before $((total - 3))"

check "herald audit list filters by action (exact and prefix), actor, organization, entity, time, cursor"
run audit list --db "$db" --json --action 'organization_member_*' --limit 1000
expect_status 0 audit list --action prefix
py 'import json, sys
page = json.load(open(sys.argv[1]))
actions = {r["action"] for r in page["records"]}
assert page["total"] == len(page["records"]) > 0 and all(a.startswith("organization_member_") for a in actions), actions
assert "organization_member_added" in actions'
run audit list --db "$db" --json --action user_created
expect_status 0 audit list --action exact
py 'import json, sys
page = json.load(open(sys.argv[1]))
assert page["records"] and {r["action"] for r in page["records"]} == {"user_created"}'
run audit list --db "$db" --json --actor -1
expect_status 0 audit list --actor -1
py 'import json, sys
page = json.load(open(sys.argv[1]))
assert page["records"] and all(r["actor"] == -1 and r["action"] == "invite_expired" for r in page["records"])'
run audit list --db "$db" --json --org "$org" --entity-type Organization --entity-id "$org"
expect_status 0 audit list --org --entity
py 'import json, sys
page = json.load(open(sys.argv[1]))
assert page["records"] and all(r["organization_id"] == int(sys.argv[2]) and r["entity_id"] == sys.argv[2] for r in page["records"])' "$org"
run audit list --db "$db" --json --since "${day}T20:00:00Z" --until "${day}T23:00:00Z"
expect_status 0 audit list --since --until
py 'import json, sys
page = json.load(open(sys.argv[1]))
assert page["records"] and all("T20:00:00" <= r["occurred_at"][10:] < "T23:00:00" for r in page["records"])'
run audit list --db "$db" --json --limit 3 --before 20
expect_status 0 audit list --before
py 'import json, sys
page = json.load(open(sys.argv[1]))
assert [r["position"] for r in page["records"]] == [19, 18, 17] and page["next_before"] == 17
assert page["total"] == int(sys.argv[2])  # the cursor does not change the total' "$total"

check "herald audit list rejects bad input with exit 2"
expect_error 2 "--limit '1001'" audit list --db "$db" --limit 1001
expect_error 2 "--actor 'root'" audit list --db "$db" --actor root
expect_error 2 "--before 'last'" audit list --db "$db" --before last
expect_error 2 "--since 'noon'" audit list --db "$db" --since noon

check "herald audit head prints POSITION:HASH and audit verify accepts it"
run audit head --db "$db"
expect_status 0 audit head
grep -qE "^$total:[0-9a-f]{64}\$" "$out" || fail "audit head printed $(cat "$out")"
head_line=$(cat "$out")
run audit verify --db "$db"
expect_status 0 audit verify
expect_stdout "audit log intact: $total records verified, head $head_line"
run audit verify --db "$db" --expect-head "$head_line"
expect_status 0 audit verify --expect-head

check "herald audit verify --expect-head: a rewritten head exits 1, a malformed one exits 2"
expect_error 1 "(head_mismatch)" audit verify --db "$db" --expect-head "5:$(printf '%064d' 0)"
expect_error 1 "(head_missing)" audit verify --db "$db" --expect-head "$((total + 5)):$(printf '%064d' 0)"
expect_error 2 "--expect-head '5:xyz'" audit verify --db "$db" --expect-head 5:xyz

check "herald audit verify names the first edited, deleted or swapped record, exit 1"
cp "$db" "$work/edited.db"
python3 -c 'import sys, sqlite3
c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE herald_audit_records SET actor = 999 WHERE position = 12"); c.commit()' "$work/edited.db"
expect_error 1 "broken at position 12 (edited)" audit verify --db "$work/edited.db"
cp "$db" "$work/deleted.db"
python3 -c 'import sys, sqlite3
c = sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM herald_audit_records WHERE position = 20"); c.commit()' "$work/deleted.db"
expect_error 1 "broken at position 20 (deleted)" audit verify --db "$work/deleted.db"
cp "$db" "$work/swapped.db"
python3 - "$work/swapped.db" <<'PY' || fail "could not swap two audit records"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = {r[0]: r[1:] for r in c.execute("SELECT * FROM herald_audit_records WHERE position IN (30, 31)")}
c.execute("DELETE FROM herald_audit_records WHERE position IN (30, 31)")
c.execute("INSERT INTO herald_audit_records VALUES (30" + ", ?" * len(rows[31]) + ")", rows[31])
c.execute("INSERT INTO herald_audit_records VALUES (31" + ", ?" * len(rows[30]) + ")", rows[30])
c.commit()
PY
expect_error 1 "broken at position 30 (moved)" audit verify --db "$work/swapped.db"

check "herald audit export --format csv writes RFC 4180 CSV of every record to stdout"
run audit export --format csv --db "$db"
expect_status 0 audit export --format csv
py 'import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0][:3] == ["position", "event_id", "occurred_at"] and rows[0][-1] == "hash", rows[0]
assert len(rows) == int(sys.argv[2]) + 1, len(rows)
assert open(sys.argv[1], "rb").read().endswith(b"\r\n")' "$total"

check "herald audit export --format jsonl --output FILE writes a log that verifies without herald"
run audit export --format jsonl --db "$db" --output "$work/audit.jsonl" --action 'race_*'
expect_status 0 audit export --action
expect_stdout "to $work/audit.jsonl"
python3 -c 'import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
assert records and all(r["action"].startswith("race_") for r in records)' "$work/audit.jsonl" ||
  fail "the filtered export holds records of other actions"
run audit export --format jsonl --db "$db" --output "$work/audit.jsonl"
expect_status 0 audit export --output
expect_stdout "exported $total audit records"
# The check docs/audit.md gives an auditor: recompute the chain from the export alone.
python3 - "$work/audit.jsonl" "$head_line" <<'PY' || fail "the JSON lines export does not verify"
import hashlib, json, sys
records = sorted((json.loads(line) for line in open(sys.argv[1])), key=lambda r: r["position"])
prev = "0" * 64
for r in records:
    stored = r.pop("hash")
    body = json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert r["prev_hash"] == prev, f"broken link at {r['position']}"
    assert hashlib.sha256(body.encode()).hexdigest() == stored, f"edited at {r['position']}"
    prev = stored
assert f"{records[-1]['position']}:{prev}" == sys.argv[2]
PY

check "herald audit export rejects a bad format (exit 2) and an unwritable output (exit 1)"
expect_error 2 "--format 'xml'" audit export --format xml --db "$db"
expect_error 2 "--format is required" audit export --db "$db"
expect_error 1 "cannot write the export to '$work/no/such/dir/a.csv'" audit export --format csv --db "$db" --output "$work/no/such/dir/a.csv"

check "herald consumers lists each consumer's checkpoint, lag and parked events"
run consumers --db "$db"
expect_status 0 consumers
for column in NAME CHECKPOINT LAG PARKED audit discord-roles; do expect_stdout "$column"; done
run consumers --db "$db" --json
expect_status 0 consumers --json
py 'import json, sys
consumers = {c["name"]: c for c in json.load(open(sys.argv[1]))["consumers"]}
total = int(sys.argv[2])
assert set(consumers) == {"audit", "discord-roles"}, consumers
assert all(c["checkpoint"] == total and c["lag"] == 0 for c in consumers.values()), consumers
assert consumers["discord-roles"]["parked"] == 2 and consumers["audit"]["parked"] == 0, consumers' "$total"

check "herald replay CONSUMER --from moves the checkpoint back and flags the replay"
run replay discord-roles --from 10 --db "$db"
expect_status 0 replay --from
expect_stdout "consumer 'discord-roles' moved from position $total to 10"
expect_stdout "flagged as replays up to position $total"
run consumers --db "$db" --json
py 'import json, sys
c = {c["name"]: c for c in json.load(open(sys.argv[1]))["consumers"]}["discord-roles"]
total = int(sys.argv[2])
assert c["checkpoint"] == 10 and c["lag"] == total - 10 and c["replay_until"] == total, c' "$total"

check "herald replay CONSUMER --since TIME starts at the first event at or after it"
run replay discord-roles --since "${day}T12:00:00Z" --db "$db"
expect_status 0 replay --since
first_noon=$(python3 -c 'import json, sys
print(next(e["position"] for e in json.load(open(sys.argv[1]))["events"] if e["event"]["timestamp"][11:] >= "12:00:00"))' "$work/all_events.json")
expect_stdout "to $((first_noon - 1)):"

check "herald replay rejects bad input: exit 2 for usage, exit 1 for what the store lacks"
expect_error 2 "give either --from POSITION or --since TIME" replay audit --db "$db"
expect_error 2 "give either --from POSITION or --since TIME" replay audit --from 1 --since 1h --db "$db"
expect_error 2 "--from 'first'" replay audit --from first --db "$db"
expect_error 2 "--since 'dawn'" replay audit --since dawn --db "$db"
expect_error 2 "CONSUMER is required" replay --from 1 --db "$db"
expect_error 1 "no consumer named 'mailer'" replay mailer --from 0 --db "$db"
expect_error 1 "past the head" replay audit --from $((total + 1)) --db "$db"

check "herald replay audit --from 0: the next run re-reads everything and writes no record twice"
run replay audit --from 0 --db "$db"
expect_status 0 replay audit
run demo --seed 9 --quiet --db "$db"
expect_status 0 demo after replay
expect_stdout "audit at"
run audit verify --db "$db"
expect_status 0 audit verify after replay
total=$(sed -nE 's/audit log intact: ([0-9]+) records.*/\1/p' "$out")
run events list --db "$db" --json --limit 100000
py 'import json, sys; assert len(json.load(open(sys.argv[1]))["events"]) == int(sys.argv[2])' "$total"

check "herald parked list shows what a consumer gave up on, with its error"
run parked list --db "$db"
expect_status 0 parked list
expect_stdout "discord-roles"
expect_stdout "OrganizationMemberAddedEvent"
expect_stdout "has no linked Discord account"
run parked list --db "$db" --consumer discord-roles --json
expect_status 0 parked list --consumer --json
py 'import json, sys
parked = json.load(open(sys.argv[1]))["parked"]
assert len(parked) == 3 and all(p["consumer"] == "discord-roles" and p["attempts"] >= 3 for p in parked), parked'
parked_position=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["parked"][0]["position"])' "$out")
parked_attempts=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["parked"][0]["attempts"])' "$out")
run parked list --db "$db" --consumer audit
expect_status 0 parked list --consumer audit
expect_stdout "no parked events for consumer 'audit'"
expect_error 1 "no consumer named 'mailer'" parked list --db "$db" --consumer mailer

check "herald parked retry runs the handler again: still failing, it stays parked with one more attempt"
expect_error 1 "failed again for consumer 'discord-roles' (attempt $((parked_attempts + 1)))" parked retry discord-roles "$parked_position" --db "$db"
run parked list --db "$db" --consumer discord-roles --json
py 'import json, sys
entry = next(p for p in json.load(open(sys.argv[1]))["parked"] if p["position"] == int(sys.argv[2]))
assert entry["attempts"] == int(sys.argv[3]) + 1, entry' "$parked_position" "$parked_attempts"

check "herald parked retry: once the handler succeeds the event is no longer parked"
# A member who has a Discord account, parked as if Discord had been down when they were added.
good_position=$(python3 -c 'import json, sys
events = json.load(open(sys.argv[1]))["events"]
with_discord = {e["event"]["entity_id"] for e in events if e["event"]["event_type"] == "UserCreatedEvent" and e["event"]["discord_id"]}
print(next(e["position"] for e in events if e["event"]["event_type"] == "OrganizationMemberAddedEvent" and e["event"]["member_user_id"] in with_discord))' "$work/all_events.json")
python3 - "$db" "$good_position" <<'PY' || fail "could not park an event for the test"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
event_id, = c.execute("SELECT event_id FROM herald_events WHERE position = ?", (int(sys.argv[2]),)).fetchone()
c.execute("INSERT INTO herald_parked_events VALUES ('discord-roles', ?, ?, 'OrganizationMemberAddedEvent', "
          "'Discord answered 503 Service Unavailable', 3, 0)", (int(sys.argv[2]), event_id))
c.commit()
PY
run parked retry discord-roles "$good_position" --db "$db"
expect_status 0 parked retry
expect_stdout "it is no longer parked"
run parked list --db "$db" --json
py 'import json, sys
assert all(p["position"] != int(sys.argv[2]) for p in json.load(open(sys.argv[1]))["parked"])' "$good_position"

check "herald parked discard drops a parked event; a second discard finds nothing (exit 1)"
run parked discard discord-roles "$parked_position" --db "$db"
expect_status 0 parked discard
expect_stdout "discarded OrganizationMemberAddedEvent"
run parked list --db "$db" --json
py 'import json, sys
assert all(p["position"] != int(sys.argv[2]) for p in json.load(open(sys.argv[1]))["parked"])' "$parked_position"
expect_error 1 "nothing is parked for consumer 'discord-roles' at position $parked_position" parked discard discord-roles "$parked_position" --db "$db"

check "herald parked retry|discard reject bad input"
expect_error 2 "POSITION 'x'" parked retry discord-roles x --db "$db"
expect_error 2 "POSITION '-3'" parked discard discord-roles -3 --db "$db"
expect_error 1 "no consumer named 'mailer'" parked retry mailer 1 --db "$db"
expect_error 2 "expected list, retry or discard" parked frob --db "$db"
expect_error 2 "expected a command: list or get" events --db "$db"
# A consumer that runs in another program: herald cannot run its handler, but can discard.
python3 - "$db" <<'PY' || fail "could not add another program's consumer"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
event_id, = c.execute("SELECT event_id FROM herald_events WHERE position = 3").fetchone()
c.execute("INSERT INTO herald_consumer_checkpoints VALUES ('mailer', 3, 0)")
c.execute("INSERT INTO herald_parked_events VALUES ('mailer', 3, ?, 'X', 'SMTP refused', 5, 0)", (event_id,))
c.commit()
PY
expect_error 1 "consumer 'mailer' runs in another program" parked retry mailer 3 --db "$db"
run parked discard mailer 3 --db "$db"
expect_status 0 parked discard mailer

check "--db and --store together, a URL to --db, a path to --store: exit 2, one line"
expect_error 2 "not both" consumers --db "$db" --store postgresql://herald@127.0.0.1/events
expect_error 2 "a PostgreSQL URL goes to --store" consumers --db postgresql://herald:secret@127.0.0.1/events
grep -q secret "$err" && fail "the password reached the error message"
expect_error 2 "--store '$db': expected a postgresql:// URL" consumers --store "$db"

check "HERALD_DB and HERALD_STORE choose the store when no flag does; both set is an error"
set +e
HERALD_DB=$db "$herald" consumers >"$out" 2>"$err"
status=$?
set -e
expect_status 0 HERALD_DB=... consumers
expect_stdout "discord-roles"
set +e
HERALD_DB=$db HERALD_STORE=postgresql://x@127.0.0.1/y "$herald" consumers >"$out" 2>"$err"
status=$?
set -e
expect_status 2 HERALD_DB and HERALD_STORE
expect_stderr "HERALD_DB and HERALD_STORE are both set"
set +e
HERALD_DB=$work/missing.db "$herald" consumers --db "$db" >"$out" 2>"$err"
status=$?
set -e
expect_status 0 "--db over HERALD_DB"

check "a file that is not a herald database: one clear line, exit 1, and the file untouched"
head -c 8192 /dev/urandom >"$work/garbage.db"
: >"$work/empty.db"
python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)"); c.commit()' "$work/shop.db"
python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA user_version = 3"); c.commit()' "$work/blank.db"
for file in garbage.db empty.db shop.db blank.db; do
  before=$(sha "$work/$file")
  commands=("events list" "audit verify" "consumers")
  # The demo creates a store in an empty file, as open_store does (docs/store.md, "Migrations").
  case $file in garbage.db | shop.db) commands+=("demo --quiet") ;; esac
  # shellcheck disable=SC2086 # $args is several words on purpose
  for args in "${commands[@]}"; do
    expect_error 1 "$file" $args --db "$work/$file"
    [ "$(sha "$work/$file")" = "$before" ] || fail "herald $args changed $file"
  done
done

# ---------------------------------------------------------------------------------------------
# API tokens: herald token create|list|revoke (docs/security.md, docs/operations.md).

tokens_db=$work/tokens.db
token_pattern='^hrld_[A-Za-z0-9_-]{43}$'

check "herald --help lists token; herald token --help lists create, list and revoke"
run --help
expect_stdout "token"
run token --help
expect_status 0 token --help
for command in create list revoke; do expect_stdout "$command"; done
for command in create list revoke; do
  run token "$command" --help
  expect_status 0 token "$command" --help
  expect_stdout "Usage: herald token $command"
  expect_stdout "--db"
  expect_stdout "--store"
done

check "herald token create prints the token alone on stdout's first line, and a note on stderr"
run token create --name ingest-bot --scopes ingest,read --org 42 --db "$tokens_db"
expect_status 0 token create
[ "$(wc -l <"$out")" -eq 1 ] || fail "token create printed $(wc -l <"$out") lines on stdout, expected 1"
grep -qE "$token_pattern" "$out" || fail "token create printed '$(head -c 80 "$out")', not a token"
expect_stderr "will not be shown again"
expect_stderr "created a new herald store"
ingest_token=$(head -n 1 "$out")
grep -qF -- "$ingest_token" "$err" && fail "the token reached stderr"

check "the store holds the SHA-256 of the printed token, and not the token"
py_db() { python3 - "$@" || fail "token storage check failed"; }
py_db "$tokens_db" "$ingest_token" <<'PY'
import hashlib, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute("SELECT name, token_sha256, scopes, organization_id FROM herald_api_tokens").fetchall()
assert rows == [("ingest-bot", hashlib.sha256(sys.argv[2].encode()).hexdigest(), "ingest,read", 42)], rows
PY
grep -qF -- "$ingest_token" "$tokens_db" && fail "the token itself is in the database file"

check "herald token create with an existing store creates no note about a new one"
run token create --name reader --scopes read --db "$tokens_db"
expect_status 0 token create reader
grep -qE "$token_pattern" "$out" || fail "token create printed no token"
reader_token=$(head -n 1 "$out")
[ "$reader_token" != "$ingest_token" ] || fail "two tokens were the same"
if grep -q "created a new herald store" "$err"; then fail "announced a new store for an existing one"; fi

check "herald token list shows name, scopes, organization, created and revoked, and no secret"
run token list --db "$tokens_db"
expect_status 0 token list
for text in NAME SCOPES ORGANIZATION CREATED REVOKED ingest-bot "ingest,read" 42 reader; do
  expect_stdout "$text"
done
run token list --json --db "$tokens_db"
expect_status 0 token list --json
py 'import json, sys
tokens = {t["name"]: t for t in json.load(open(sys.argv[1]))["tokens"]}
assert tokens["ingest-bot"]["scopes"] == ["ingest", "read"] and tokens["ingest-bot"]["organization_id"] == 42, tokens
assert tokens["reader"]["organization_id"] is None and tokens["reader"]["revoked_at"] is None, tokens
assert all(set(t) == {"id", "name", "scopes", "organization_id", "user_id", "created_at", "revoked_at"} for t in tokens.values()), tokens'
ingest_hash=$(printf %s "$ingest_token" | sha256sum | cut -d' ' -f1)
for secret in "$ingest_token" "$reader_token" "$ingest_hash" hrld_; do
  run token list --db "$tokens_db"
  grep -qF -- "$secret" "$out" && fail "token list printed a secret ($secret)"
  run token list --json --db "$tokens_db"
  grep -qF -- "$secret" "$out" && fail "token list --json printed a secret ($secret)"
done

check "herald token create rejects bad input with exit 2 and one line naming what was wrong"
expect_error 2 "unknown scope 'write'" token create --name w --scopes read,write --db "$tokens_db"
expect_error 2 "--scopes: empty scope name" token create --name w --scopes read,,ingest --db "$tokens_db"
expect_error 2 "--scopes: expected a comma-separated list" token create --name w --scopes "" --db "$tokens_db"
expect_error 2 "--name is required" token create --scopes read --db "$tokens_db"
expect_error 2 "--scopes is required" token create --name w --db "$tokens_db"
expect_error 2 "--name: 'bad name' has a character other than" token create --name "bad name" --scopes read --db "$tokens_db"
expect_error 2 "--name: expected a token name" token create --name "" --scopes read --db "$tokens_db"
expect_error 2 "characters long; a token name has at most 64" token create --name "$(printf 'a%.0s' {1..100000})" --scopes read --db "$tokens_db"
expect_error 2 "has a character other than" token create --name "$(printf 'evil\nline')" --scopes read --db "$tokens_db"
expect_error 2 "has a character other than" token create --name "x';DROP TABLE herald_api_tokens;--" --scopes read --db "$tokens_db"
expect_error 2 "--org 'acme': expected an organization id" token create --name w --scopes read --org acme --db "$tokens_db"
expect_error 2 "--org '99999999999999999999': expected an organization id" token create --name w --scopes read --org 99999999999999999999 --db "$tokens_db"
expect_error 2 "--bogus" token create --name w --scopes read --bogus --db "$tokens_db"
expect_error 2 "not both" token create --name w --scopes read --db "$tokens_db" --store postgresql://x@127.0.0.1/y
run token list --json --db "$tokens_db"
py 'import json, sys; assert len(json.load(open(sys.argv[1]))["tokens"]) == 2, "a refused create wrote a token"'

check "herald token create of a name already taken exits 1 naming it; nothing is printed"
expect_error 1 "an API token named 'reader' already exists" token create --name reader --scopes admin --db "$tokens_db"

check "herald token revoke revokes a token once; list shows when; unknown or bad names fail"
run token revoke reader --db "$tokens_db"
expect_status 0 token revoke
expect_stdout "revoked API token 'reader'"
run token list --json --db "$tokens_db"
py 'import json, sys
tokens = {t["name"]: t for t in json.load(open(sys.argv[1]))["tokens"]}
assert tokens["reader"]["revoked_at"] and tokens["ingest-bot"]["revoked_at"] is None, tokens'
run token revoke reader --db "$tokens_db"
expect_status 0 token revoke again
expect_stdout "was already revoked at"
expect_error 1 "no API token named 'nobody'" token revoke nobody --db "$tokens_db"
expect_error 2 "NAME is required" token revoke --db "$tokens_db"
expect_error 2 "NAME: 'a/b' has a character other than" token revoke a/b --db "$tokens_db"
expect_error 1 "an API token named 'reader' already exists (revoked at" token create --name reader --scopes read --db "$tokens_db"

check "herald token create --user binds a token to one user; list shows it; a bad id is refused"
expect_error 2 "--user 'x': expected a user id" token create --name u --scopes read --user x --db "$tokens_db"
expect_error 2 "--user '0': expected a user id" token create --name u --scopes read --user 0 --db "$tokens_db"
run token create --name inbox-42 --scopes read,notify --user 42 --db "$tokens_db"
expect_status 0 token create --user
expect_stderr "user 42"
run token list --json --db "$tokens_db"
py 'import json, sys
tokens = {t["name"]: t for t in json.load(open(sys.argv[1]))["tokens"]}
assert tokens["inbox-42"]["user_id"] == 42 and tokens["inbox-42"]["scopes"] == ["read", "notify"], tokens
assert tokens["ingest-bot"]["user_id"] is None, tokens'
run token list --db "$tokens_db"
expect_stdout USER

check "herald token list|revoke on a missing --db fail with one line and create no file"
expect_error 1 "does not exist" token list --db "$work/no-tokens.db"
expect_error 1 "does not exist" token revoke reader --db "$work/no-tokens.db"
[ ! -e "$work/no-tokens.db" ] || fail "token list created $work/no-tokens.db"
expect_error 2 "expected a command: create, list or revoke" token
expect_error 2 "unknown command 'frob'; expected create, list or revoke" token frob

if [ -n "${HERALD_TEST_PG_URL:-}" ]; then
  pg=$HERALD_TEST_PG_URL
  check "PostgreSQL: herald demo --store records the day; the store commands read it"
  run demo --seed 7 --quiet --store "$pg"
  expect_status 0 demo --store
  expect_stdout "hash chain verified"
  pg_total=$(sed -nE 's/.*it holds ([0-9]+) in all.*/\1/p' "$out")
  run events list --store "$pg" --json --limit 100000
  expect_status 0 events list --store
  py 'import json, sys; assert len(json.load(open(sys.argv[1]))["events"]) == int(sys.argv[2])' "$pg_total"
  pg_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["events"][0]["event"]["event_id"])' "$out")
  run events get "$pg_id" --store "$pg"
  expect_status 0 events get --store
  expect_stdout "$pg_id"
  run audit verify --store "$pg"
  expect_status 0 audit verify --store
  expect_stdout "audit log intact: $pg_total records verified"
  run audit list --store "$pg" --action 'invite_*' --json
  expect_status 0 audit list --store
  run audit export --store "$pg" --format csv
  expect_status 0 audit export --store
  run consumers --store "$pg" --json
  expect_status 0 consumers --store
  py 'import json, sys
c = {c["name"]: c for c in json.load(open(sys.argv[1]))["consumers"]}
assert c["audit"]["lag"] == 0 and c["discord-roles"]["parked"] == 1, c'
  run replay discord-roles --from 0 --store "$pg"
  expect_status 0 replay --store
  run parked list --store "$pg" --json
  expect_status 0 parked list --store
  pg_parked=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["parked"][0]["position"])' "$out")
  expect_error 1 "failed again" parked retry discord-roles "$pg_parked" --store "$pg"
  run parked discard discord-roles "$pg_parked" --store "$pg"
  expect_status 0 parked discard --store
  set +e
  HERALD_STORE=$pg "$herald" audit head >"$out" 2>"$err"
  status=$?
  set -e
  expect_status 0 HERALD_STORE=... audit head

  check "PostgreSQL: herald token create stores the SHA-256 of the printed token; list and revoke"
  run token create --name pg-bot --scopes read,audit --store "$pg"
  expect_status 0 token create --store
  grep -qE "$token_pattern" "$out" || fail "token create --store printed no token"
  pg_token=$(head -n 1 "$out")
  [ "$(psql "$pg" -X -At -c "SELECT token_sha256 FROM herald_api_tokens WHERE name = 'pg-bot'")" = \
    "$(printf %s "$pg_token" | sha256sum | cut -d' ' -f1)" ] || fail "the stored hash is not the token's SHA-256"
  expect_error 1 "an API token named 'pg-bot' already exists" token create --name pg-bot --scopes read --store "$pg"
  run token list --store "$pg" --json
  expect_status 0 token list --store
  py 'import json, sys
tokens = json.load(open(sys.argv[1]))["tokens"]
assert [(t["name"], t["scopes"]) for t in tokens] == [("pg-bot", ["read", "audit"])], tokens'
  grep -qF -- "$pg_token" "$out" && fail "token list --store printed the token"
  run token revoke pg-bot --store "$pg"
  expect_status 0 token revoke --store
  expect_error 1 "no API token named 'nobody'" token revoke nobody --store "$pg"

  check "PostgreSQL: a database without herald's tables is reported, not filled"
  other=${pg%/*}/postgres
  expect_error 1 "has no herald tables" events list --store "$other"
  [ "$(psql "$other" -X -At -c "SELECT to_regclass('herald_meta') IS NULL")" = t ] ||
    fail "events list created herald's tables in $other"
fi

echo "cli_test: all checks passed"
