#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL 15 server:
#
#   scripts/with_postgres.sh build/tests/herald_store_tests --gtest_filter='Postgres*'
#
# starts a server on a free 127.0.0.1 port in a fresh temporary directory, creates the database
# `herald_test`, and runs the command with
#
#   HERALD_TEST_PG_URL=postgresql://postgres@127.0.0.1:PORT/herald_test
#   HERALD_TEST_PG_DATA=the server's data directory (tests stop and restart the server with it)
#   HERALD_TEST_PG_SERVER=the path of scripts/pg_server.sh
#
# The server is stopped and the directory removed when the command ends, however it ends; the
# command's exit status is this script's.
set -euo pipefail

script_dir=$(cd "$(dirname "$0")" && pwd)
pg_bin=${HERALD_PG_BIN:-/usr/lib/postgresql/15/bin}

if [[ $# -eq 0 ]]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

tmp_root=${TMPDIR:-/tmp}

# A run killed with SIGKILL (a CI timeout) cannot stop its server: stop and remove the leftovers
# of runs whose wrapper is gone. Directories of runs still going (their wrapper lives) are left
# alone, so parallel runs do not disturb each other.
for leftover in "$tmp_root"/herald-pg.*; do
  [[ -f $leftover/owner_pid ]] || continue
  owner=$(cat "$leftover/owner_pid" 2>/dev/null || true)
  [[ $owner =~ ^[0-9]+$ ]] || continue
  kill -0 "$owner" 2>/dev/null && continue
  "$script_dir/pg_server.sh" stop "$leftover/data" >/dev/null 2>&1 || true
  rm -rf "$leftover"
done

work_dir=$(mktemp -d "$tmp_root/herald-pg.XXXXXX")
data_dir=$work_dir/data
echo $$ >"$work_dir/owner_pid"

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  "$script_dir/pg_server.sh" stop "$data_dir" || true
  rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The server runs as `postgres`, which must be able to reach its data directory.
chmod 755 "$work_dir"
port=$("$script_dir/pg_server.sh" start "$data_dir")

psql_as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$pg_bin/psql" "$@"
  else
    "$pg_bin/psql" "$@"
  fi
}
psql_as_postgres -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
  -c "CREATE DATABASE herald_test" >/dev/null

export HERALD_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/herald_test"
export HERALD_TEST_PG_DATA=$data_dir
export HERALD_TEST_PG_SERVER=$script_dir/pg_server.sh

status=0
"$@" || status=$?
exit "$status"
