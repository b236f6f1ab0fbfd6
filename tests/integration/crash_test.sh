#!/usr/bin/env bash
# Crash test: kills a producer with SIGKILL at random moments and checks that nothing it
# acknowledged was lost or stored twice, and that the audit log is whole afterwards.
#
#   crash_test.sh path/to/herald path/to/herald_crash_producer sqlite
#   scripts/with_postgres.sh crash_test.sh path/to/herald path/to/herald_crash_producer postgres
#
# The producer (tests/integration/crash_producer.cpp) appends events from two threads, with the
# audit consumer running beside them, and prints each event id only after its append returned.
# Each of the HERALD_CRASH_RUNS (default 20) runs starts it, waits until it has printed at least
# one id (polling its output file), waits a random delay, kills it with SIGKILL and restarts it.
# Then the audit consumer catches up and the test checks:
#   - every acknowledged (printed) event id is stored exactly once;
#   - there is exactly one audit record per stored event, at the event's position;
#   - `herald audit verify` passes.
# The delays come from HERALD_CRASH_SEED (printed, so a failing run can be repeated). SQLite files
# go to a temporary directory under ${TMPDIR:-/tmp}; PostgreSQL is HERALD_TEST_PG_URL, which
# scripts/with_postgres.sh sets.
set -euo pipefail

if [ $# -ne 3 ] || [ ! -x "$1" ] || [ ! -x "$2" ] || { [ "$3" != sqlite ] && [ "$3" != postgres ]; }; then
  echo "usage: $0 path/to/herald path/to/herald_crash_producer sqlite|postgres" >&2
  exit 2
fi
herald=$1
producer=$2
backend=$3
runs=${HERALD_CRASH_RUNS:-20}
max_delay_ms=${HERALD_CRASH_MAX_DELAY_MS:-400}
seed=${HERALD_CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed

work=$(mktemp -d "${TMPDIR:-/tmp}/herald-crash.XXXXXX")
producer_pid=
cleanup() {
  if [ -n "$producer_pid" ]; then kill -KILL "$producer_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

case $backend in
  sqlite)
    location=$work/crash.db
    store_flag=(--db "$location")
    ;;
  postgres)
    if [ -z "${HERALD_TEST_PG_URL:-}" ]; then
      echo "crash_test: HERALD_TEST_PG_URL is not set; run it under scripts/with_postgres.sh" >&2
      exit 2
    fi
    location=$HERALD_TEST_PG_URL
    store_flag=(--store "$location")
    ;;
esac

fail() {
  echo "FAIL (crash_test $backend, seed $seed): $*" >&2
  exit 1
}

# Complete lines only: a line the kill cut short was never acknowledged.
complete_lines() { tr -cd '\n' <"$1" | wc -c; }

echo "crash_test: $backend, $runs kills, random delays up to ${max_delay_ms} ms (HERALD_CRASH_SEED=$seed)"
for run in $(seq 1 "$runs"); do
  out=$work/acked.$run
  : >"$out"
  "$producer" "$location" >"$out" 2>"$work/stderr.$run" &
  producer_pid=$!
  # Wait for the first acknowledged event of this run; fail if the producer dies on its own.
  waited=0
  while [ "$(complete_lines "$out")" -lt 1 ]; do
    if ! kill -0 "$producer_pid" 2>/dev/null; then
      wait "$producer_pid" 2>/dev/null && status=0 || status=$?
      producer_pid=
      fail "run $run: the producer exited with status $status before the kill: $(cat "$work/stderr.$run")"
    fi
    waited=$((waited + 1))
    [ "$waited" -lt 12000 ] || fail "run $run: the producer acknowledged nothing within a minute"
    sleep 0.005
  done
  # The random moment: anywhere in the appends, group commits and audit writes that follow.
  delay_ms=$((RANDOM % (max_delay_ms + 1)))
  sleep "$(printf '0.%03d' "$delay_ms")"
  kill -KILL "$producer_pid"
  # (wait's stderr: bash would announce the kill it was asked for as "Killed".)
  wait "$producer_pid" 2>/dev/null && status=0 || status=$?
  producer_pid=
  [ "$status" -eq 137 ] ||
    fail "run $run: the producer ended with status $status, not by the kill: $(cat "$work/stderr.$run")"
  [ ! -s "$work/stderr.$run" ] || fail "run $run: the producer reported: $(cat "$work/stderr.$run")"
  echo "  run $run: killed after ${delay_ms} ms, $(complete_lines "$out") events acknowledged"
done

echo "crash_test: catching up the audit consumer"
"$producer" "$location" --catch-up || fail "the audit consumer could not catch up"

# The acknowledged ids: the whole lines of every run.
: >"$work/acked"
for run in $(seq 1 "$runs"); do
  python3 - "$work/acked.$run" >>"$work/acked" <<'EOF' || fail "run output is not event ids"
import re, sys
data = open(sys.argv[1]).read()
for line in data.split("\n")[:-1]:  # the part after the last newline was never acknowledged
    if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", line):
        sys.exit(f"not an event id: {line!r}")
    print(line)
EOF
done
acked=$(wc -l <"$work/acked")
[ "$acked" -ge "$runs" ] || fail "only $acked events were acknowledged in $runs runs"
[ -z "$(sort "$work/acked" | uniq -d)" ] || fail "the producer acknowledged an event id twice"

# What the store holds, read directly from its tables. Each query prints rows of plain text.
query() {
  if [ "$backend" = sqlite ]; then
    python3 - "$location" "$1" <<'EOF'
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
for row in connection.execute(sys.argv[2]):
    print("|".join("" if value is None else str(value) for value in row))
EOF
  else
    psql "$location" -X -q -At -v ON_ERROR_STOP=1 -c "$1"
  fi
}

query "SELECT event_id FROM herald_events" | sort >"$work/stored"
stored=$(wc -l <"$work/stored")
duplicates=$(uniq -d <"$work/stored" | wc -l)
[ "$duplicates" -eq 0 ] || fail "$duplicates event ids are stored more than once"
missing=$(sort "$work/acked" | comm -23 - "$work/stored" | wc -l)
[ "$missing" -eq 0 ] ||
  fail "$missing acknowledged events are not stored, e.g. $(sort "$work/acked" | comm -23 - "$work/stored" | head -n 3 | tr '\n' ' ')"
echo "check: all $acked acknowledged events are stored exactly once ($stored stored in all)"

# A few of them through the CLI as well: the first, the last and one from the middle.
for id in "$(head -n 1 "$work/acked")" "$(sed -n "$(((acked + 1) / 2))p" "$work/acked")" "$(tail -n 1 "$work/acked")"; do
  "$herald" events get "$id" "${store_flag[@]}" >"$work/get" 2>&1 || fail "herald events get $id: $(cat "$work/get")"
  grep -q "$id" "$work/get" || fail "herald events get $id did not print the event"
done
echo "check: herald events get finds acknowledged events"

audit_rows=$(query "SELECT count(*), count(DISTINCT event_id) FROM herald_audit_records")
[ "$audit_rows" = "$stored|$stored" ] ||
  fail "expected $stored audit records with distinct event ids, found (records|distinct) $audit_rows"
unaudited=$(query "SELECT count(*) FROM herald_events e LEFT JOIN herald_audit_records a ON a.event_id = e.event_id WHERE a.event_id IS NULL OR a.position <> e.position")
[ "$unaudited" -eq 0 ] || fail "$unaudited stored events have no audit record at their position"
echo "check: exactly one audit record per stored event ($stored), each at its event's position"

"$herald" audit verify "${store_flag[@]}" >"$work/verify" 2>&1 || fail "herald audit verify: $(cat "$work/verify")"
grep -q "audit log intact: $stored records verified" "$work/verify" ||
  fail "herald audit verify did not verify $stored records: $(cat "$work/verify")"
echo "check: $(cat "$work/verify")"

echo "crash_test ($backend): all checks passed"
