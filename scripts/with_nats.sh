#!/usr/bin/env bash
# Runs a command against a throwaway NATS server with JetStream:
#
#   scripts/with_nats.sh build/tests/herald_cluster_tests
#   scripts/with_postgres.sh scripts/with_nats.sh build/tests/herald_cluster_tests
#
# starts `nats-server -js -a 127.0.0.1 -p PORT -sd DIR` on a free loopback port with a fresh
# store directory, waits until JetStream answers on the monitoring port, and runs the command with
#
#   HERALD_TEST_NATS_URL=nats://127.0.0.1:PORT
#   HERALD_TEST_NATS_PORT=PORT
#   HERALD_TEST_NATS_STORE_DIR=the JetStream store directory
#   HERALD_TEST_NATS_PID_FILE=the file holding the server's pid (nats-server -P writes it)
#
# A test may kill the server and start it again with the same port, store directory and pid file
# (`nats-server -js -a 127.0.0.1 -p PORT -sd DIR -P PID_FILE`); whatever server the pid file names
# at the end is stopped by pid, and the directory removed, however the command ends. The command's
# exit status is this script's.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

nats_server=${HERALD_NATS_SERVER:-nats-server}
if ! command -v "$nats_server" >/dev/null 2>&1; then
  echo "with_nats.sh: $nats_server not found (install the Debian package nats-server: scripts/deps.sh)" >&2
  exit 1
fi

tmp_root=${TMPDIR:-/tmp}

# A run killed with SIGKILL cannot stop its server: stop and remove the leftovers of runs whose
# wrapper is gone; directories of runs still going are left alone.
for leftover in "$tmp_root"/herald-nats.*; do
  [[ -f $leftover/owner_pid ]] || continue
  owner=$(cat "$leftover/owner_pid" 2>/dev/null || true)
  [[ $owner =~ ^[0-9]+$ ]] || continue
  kill -0 "$owner" 2>/dev/null && continue
  stale=$(cat "$leftover/nats.pid" 2>/dev/null || true)
  if [[ $stale =~ ^[0-9]+$ ]]; then kill -KILL "$stale" 2>/dev/null || true; fi
  rm -rf "$leftover"
done

work_dir=$(mktemp -d "$tmp_root/herald-nats.XXXXXX")
echo $$ >"$work_dir/owner_pid"
store_dir=$work_dir/jetstream
pid_file=$work_dir/nats.pid
log_file=$work_dir/nats.log
mkdir -p "$store_dir"

# shellcheck disable=SC2317 # called by cleanup, from the EXIT trap
# Stops the server the pid file names (the test may have restarted it under a new pid) and waits
# until it is gone, so that its store directory can be removed.
stop_server() {
  local pid
  pid=$(cat "$pid_file" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  stop_server
  rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
  local candidate
  for _ in $(seq 1 200); do
    candidate=$((20000 + RANDOM % 40000))
    if ! port_in_use "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  echo "with_nats.sh: no free port found on 127.0.0.1" >&2
  return 1
}

# The monitoring endpoint /healthz?js-enabled-only=true answers 200 once JetStream is up.
wait_ready() {
  local server_pid=$1 monitor_port=$2
  for _ in $(seq 1 200); do
    kill -0 "$server_pid" 2>/dev/null || return 1
    if curl -sf -o /dev/null "http://127.0.0.1:$monitor_port/healthz?js-enabled-only=true"; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

started=0
for _ in 1 2 3 4 5; do
  port=$(pick_port)
  monitor_port=$(pick_port)
  [[ $port != "$monitor_port" ]] || continue
  "$nats_server" -js -a 127.0.0.1 -p "$port" -m "$monitor_port" -sd "$store_dir" -P "$pid_file" \
    >>"$log_file" 2>&1 &
  server_pid=$!
  if wait_ready "$server_pid" "$monitor_port"; then
    # Stopped by pid at exit (a test may replace it): no job notice from this shell.
    disown "$server_pid"
    started=1
    break
  fi
  # Lost a race for a port, or a slow start: stop this attempt and try other ports.
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
done
if [[ $started -ne 1 ]]; then
  echo "with_nats.sh: nats-server did not become ready; its log:" >&2
  cat "$log_file" >&2 || true
  exit 1
fi

export HERALD_TEST_NATS_URL="nats://127.0.0.1:$port"
export HERALD_TEST_NATS_PORT=$port
export HERALD_TEST_NATS_STORE_DIR=$store_dir
export HERALD_TEST_NATS_PID_FILE=$pid_file

status=0
"$@" || status=$?
exit "$status"
