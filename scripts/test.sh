#!/usr/bin/env bash
# Everything `make test` runs: the formatting check, the full build with warnings as errors and
# every test, then the core, store and HTTP tests again under ASan+UBSan and under TSan, then the
# request decoders under libFuzzer for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

step() { printf '\n== %s\n' "$*"; }

step "formatting"
scripts/format.sh check

step "build (warnings are errors)"
cmake -S . -B build -G Ninja -DHERALD_WERROR=ON >/dev/null
cmake --build build
step "tests"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600

step "core, store, HTTP, notification and cluster tests under ASan+UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHERALD_WERROR=ON \
  -DHERALD_SANITIZE=address,undefined -DHERALD_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan --target herald_core_tests herald_domain_tests herald_store_tests \
  herald_http_tests herald_auth_tests herald_notify_unit_tests herald_notify_tests \
  herald_notify_store_tests herald_delivery_worker_tests herald_notify_e2e_tests \
  herald_cluster_tests
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
ctest --test-dir build-asan -L core --output-on-failure -j "$jobs" --timeout 900
build-asan/tests/herald_auth_tests --gtest_brief=1
scripts/with_postgres.sh build-asan/tests/herald_store_tests --gtest_brief=1
build-asan/tests/herald_http_tests --gtest_brief=1
build-asan/tests/herald_notify_unit_tests --gtest_brief=1
build-asan/tests/herald_notify_tests --gtest_brief=1
scripts/with_postgres.sh build-asan/tests/herald_notify_store_tests --gtest_brief=1
scripts/with_postgres.sh build-asan/tests/herald_delivery_worker_tests --gtest_brief=1
build-asan/tests/herald_notify_e2e_tests --gtest_brief=1
scripts/with_postgres.sh scripts/with_nats.sh build-asan/tests/herald_cluster_tests --gtest_brief=1
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

step "core, store, HTTP, notification and cluster tests under TSan"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_WERROR=ON \
  -DHERALD_SANITIZE=thread -DHERALD_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan --target herald_core_tests herald_store_tests herald_http_tests \
  herald_auth_tests herald_notify_tests herald_notify_store_tests herald_delivery_worker_tests \
  herald_notify_e2e_tests herald_cluster_tests
# TSan needs the classic address-space layout; disabling randomization for the test process
# avoids "unexpected memory mapping" on kernels with high mmap entropy.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp"
setarch "$(uname -m)" -R build-tsan/tests/herald_core_tests --gtest_brief=1
setarch "$(uname -m)" -R build-tsan/tests/herald_auth_tests --gtest_brief=1
scripts/with_postgres.sh setarch "$(uname -m)" -R build-tsan/tests/herald_store_tests --gtest_brief=1
setarch "$(uname -m)" -R build-tsan/tests/herald_http_tests --gtest_brief=1
setarch "$(uname -m)" -R build-tsan/tests/herald_notify_tests --gtest_brief=1
scripts/with_postgres.sh setarch "$(uname -m)" -R build-tsan/tests/herald_notify_store_tests --gtest_brief=1
scripts/with_postgres.sh setarch "$(uname -m)" -R build-tsan/tests/herald_delivery_worker_tests --gtest_brief=1
setarch "$(uname -m)" -R build-tsan/tests/herald_notify_e2e_tests --gtest_brief=1
scripts/with_postgres.sh scripts/with_nats.sh setarch "$(uname -m)" -R \
  build-tsan/tests/herald_cluster_tests --gtest_brief=1
unset TSAN_OPTIONS

step "fuzzing the request decoding (libFuzzer with ASan+UBSan, ${HERALD_FUZZ_SECONDS:-60} s each)"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHERALD_FUZZ=ON -DHERALD_SANITIZE=address,undefined -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link \
  -DHERALD_BUILD_TESTS=OFF -DHERALD_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz --target herald_fuzz_ingest herald_fuzz_target
corpus=$(mktemp -d)
cp tests/unit/golden/*.json "$corpus/"
mkdir -p "$corpus/targets"
printf '/api/v1/events?type=UserCreatedEvent&after=10&limit=5' >"$corpus/targets/list"
printf '/api/v1/events/stream?organization=7&since=2026-01-01T00:00:00%%2B01:00' >"$corpus/targets/stream"
build-fuzz/herald_fuzz_ingest -max_total_time="${HERALD_FUZZ_SECONDS:-60}" -max_len=65536 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -n 12
build-fuzz/herald_fuzz_target -max_total_time="${HERALD_FUZZ_SECONDS:-60}" -max_len=4096 \
  -print_final_stats=1 "$corpus/targets" 2>&1 | tail -n 12
rm -rf "$corpus"

step "all tests passed"
