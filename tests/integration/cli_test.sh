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

check "herald --help prints the usage and the three commands, exit 0"
run --help
expect_status 0 --help
expect_stdout "Usage: herald"
for command in demo catalog schema; do expect_stdout "$command"; done

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

echo "cli_test: all checks passed"
