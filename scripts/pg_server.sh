#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL 15 server for tests, keyed by its data directory.
#
#   scripts/pg_server.sh start DIR   initialise DIR if needed, start the server on a free
#                                    127.0.0.1 port (the same port as before when DIR was used
#                                    already) and print the port; a running server is left alone
#   scripts/pg_server.sh stop DIR    stop the server of DIR if it runs (fast shutdown)
#   scripts/pg_server.sh port DIR    print the port DIR's server uses
#
# Both commands are idempotent and cope with a DIR left over from a killed run (a stale
# postmaster.pid). The server trusts every local connection: it is for tests only.
set -euo pipefail

pg_bin=${HERALD_PG_BIN:-/usr/lib/postgresql/15/bin}

usage() {
  echo "usage: $0 start|stop|port DIR" >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
command=$1
data_dir=$2
[[ -n $data_dir ]] || usage
mkdir -p "$data_dir"
data_dir=$(cd "$data_dir" && pwd)
port_file=$data_dir/herald_port

# The server refuses to run as root, so as root every PostgreSQL program runs as `postgres`.
as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The postmaster's pid from its lock file, if there is one.
postmaster_pid() {
  [[ -f $data_dir/postmaster.pid ]] && head -n 1 "$data_dir/postmaster.pid" 2>/dev/null
}

# Whether the lock file names a live postgres process. `pg_ctl status` alone is not enough after
# a killed run: a zombie, or an unrelated process that reused the pid, passes its kill(pid, 0).
is_running() {
  local pid state
  pid=$(postmaster_pid) || return 1
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres || $(cat "/proc/$pid/comm" 2>/dev/null) == postmaster ]] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  [[ $state != Z && $state != X ]]
}

# Lock files left by a killed server keep a new one from starting when their pid still looks
# alive (a zombie nobody reaped, or a reused pid). Nothing runs behind them once is_running says
# no, and the socket directory is the data directory, which no other server uses.
remove_stale_lock() {
  is_running && return 0
  if [[ -f $data_dir/postmaster.pid ]]; then
    echo "pg_server.sh: removing the lock files of a server in $data_dir that is gone" >&2
  fi
  rm -f "$data_dir/postmaster.pid" "$data_dir"/.s.PGSQL.*
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A random unprivileged port away from the well-known ones (5432 and friends) that nothing on
# 127.0.0.1 answers on.
pick_port() {
  local candidate
  for _ in $(seq 1 200); do
    candidate=$((20000 + RANDOM % 40000))
    if ! port_in_use "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  echo "pg_server.sh: no free port found on 127.0.0.1" >&2
  return 1
}

wait_ready() {
  local port=$1
  for _ in $(seq 1 300); do
    if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 1; then
      return 0
    fi
    sleep 0.1
  done
  echo "pg_server.sh: server in $data_dir did not become ready on port $port" >&2
  return 1
}

init_cluster() {
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$data_dir"
  fi
  chmod 700 "$data_dir"
  if [[ ! -f $data_dir/PG_VERSION ]]; then
    as_postgres "$pg_bin/initdb" -D "$data_dir" -U postgres -A trust --no-sync \
      >"$data_dir.initdb.log" 2>&1 || {
      cat "$data_dir.initdb.log" >&2
      return 1
    }
    rm -f "$data_dir.initdb.log"
  fi
}

start() {
  init_cluster
  if is_running && [[ -f $port_file ]]; then
    wait_ready "$(cat "$port_file")" >/dev/null
    cat "$port_file"
    return 0
  fi
  remove_stale_lock
  local port attempts=0
  while :; do
    if [[ -f $port_file ]]; then
      port=$(cat "$port_file")
    else
      port=$(pick_port)
    fi
    if as_postgres "$pg_bin/pg_ctl" -D "$data_dir" -l "$data_dir/log" -w -t 60 \
      -o "-p $port -k $data_dir -c listen_addresses=127.0.0.1" start >/dev/null 2>&1; then
      break
    fi
    attempts=$((attempts + 1))
    # The port may have been taken meanwhile (a random one can race another process): then try
    # another, a few times. Any other failure is reported as is.
    if [[ $attempts -ge 5 ]] || ! tail -n 5 "$data_dir/log" | grep -q 'could not bind\|Address already in use\|could not create any TCP/IP sockets'; then
      echo "pg_server.sh: could not start PostgreSQL in $data_dir; the end of its log:" >&2
      tail -n 20 "$data_dir/log" >&2 || true
      return 1
    fi
    rm -f "$port_file"
  done
  echo "$port" >"$port_file"
  wait_ready "$port"
  echo "$port"
}

stop() {
  [[ -f $data_dir/PG_VERSION ]] || return 0
  if is_running; then
    as_postgres "$pg_bin/pg_ctl" -D "$data_dir" -m fast -w -t 60 stop >/dev/null ||
      as_postgres "$pg_bin/pg_ctl" -D "$data_dir" -m immediate -w -t 60 stop >/dev/null
  fi
  remove_stale_lock
}

case $command in
  start) start ;;
  stop) stop ;;
  port)
    [[ -f $port_file ]] || {
      echo "pg_server.sh: $data_dir has no server port yet" >&2
      exit 1
    }
    cat "$port_file"
    ;;
  *) usage ;;
esac
