#!/usr/bin/env bash
# Installs the Debian packages herald needs that are not installed yet.
# Idempotent and fast when nothing is missing: it asks dpkg first and calls apt only for the gap.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config clang-format
  # core
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libcli11-dev libspdlog-dev libfmt-dev
  # store and audit
  libsqlite3-dev sqlite3 libpqxx-dev libpq-dev libssl-dev postgresql-15 postgresql-client-15
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libsigc++-3.0-dev python3
  # HTTP tests (curl, like a user) and fuzzing (libFuzzer needs clang; 19 has C++23's expected)
  curl clang-19 libclang-rt-19-dev
  # notifications: outbound HTTP and SMTP (libcurl), a real SMTP server in tests
  libcurl4-openssl-dev python3-aiosmtpd
  # several machines: JetStream fan-out (a real server in tests, the C client through pkg-config)
  nats-server libnats-dev
  # the dashboard's browser tests (tests/e2e): a real browser, and node for playwright-core
  chromium nodejs
)

# npm only when no npm is on PATH already (a node installed another way brings its own).
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"; then
  # A fresh machine may have stale package lists; refresh once and try again.
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 update
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
fi
