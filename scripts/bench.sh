#!/usr/bin/env bash
# Runs every benchmark program of a Release build, one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
"$dir/bench/herald_bus_bench"
