#!/usr/bin/env bash
# Runs every benchmark program of a Release build, one after the other: the event bus, the event
# store, `herald serve` under HTTP load, notification fan-out and webhook delivery, then several
# `herald serve` nodes on PostgreSQL and NATS JetStream (docs/performance.md).
#
# The store benchmark measures PostgreSQL too when HERALD_BENCH_PG_URL names a server; without it,
# this script starts a throwaway PostgreSQL 15 (scripts/with_postgres.sh) whose data directory is on
# the real disk: under $TMPDIR, or the build directory when the temporary directory is a tmpfs
# (fsync on a tmpfs costs nothing and would flatter every durable write). Set HERALD_BENCH_PG=off to
# leave PostgreSQL out. SQLite files go to $HERALD_BENCH_DIR (default: the same rule); so do the
# HTTP bench's server databases. The cluster benchmark needs PostgreSQL and a nats-server: it runs
# under scripts/with_postgres.sh (unless HERALD_BENCH_PG_URL names a server) and
# scripts/with_nats.sh, and is left out with HERALD_BENCH_PG=off.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
"$dir/bench/herald_bus_bench"

store_bench=$dir/bench/herald_store_bench
on_real_disk() { [ "$(stat -f -c %T "$1" 2>/dev/null)" != tmpfs ]; }
if ! on_real_disk "${TMPDIR:-/tmp}"; then
  export TMPDIR
  TMPDIR=$(cd "$dir" && pwd)
fi
echo
if [ -n "${HERALD_BENCH_PG_URL:-}" ] || [ "${HERALD_BENCH_PG:-on}" = off ]; then
  "$store_bench"
else
  # shellcheck disable=SC2016 # expanded by the inner shell, once with_postgres.sh has set it
  scripts/with_postgres.sh bash -c 'HERALD_BENCH_PG_URL=$HERALD_TEST_PG_URL exec "$0"' "$store_bench"
fi

echo
"$dir/bench/herald_http_bench" --herald "$dir/herald"

echo
"$dir/bench/herald_notify_bench"

echo
cluster_bench=$dir/bench/herald_cluster_bench
if [ "${HERALD_BENCH_PG:-on}" = off ]; then
  echo "herald_cluster_bench: left out (HERALD_BENCH_PG=off)"
elif [ -n "${HERALD_BENCH_PG_URL:-}" ]; then
  scripts/with_nats.sh "$cluster_bench" --herald "$dir/herald"
else
  scripts/with_postgres.sh scripts/with_nats.sh "$cluster_bench" --herald "$dir/herald"
fi
