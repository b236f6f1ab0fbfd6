# herald: the two commands are `make run` and `make test`; both install what is missing first.
BUILD_DIR ?= build
BENCH_DIR ?= build-release
CMAKE_FLAGS ?=

.PHONY: all run test bench deps build clean format check-format

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DHERALD_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR)

# The main job: the HTTP API and live stream on 127.0.0.1:8080 over ./herald.db (history
# accumulates; `make clean` removes it). The first start creates an admin token and prints it.
run: build
	@$(BUILD_DIR)/herald serve --listen 127.0.0.1:8080 --db ./herald.db --bootstrap-admin-token --webhook-allow-private

test: deps
	@scripts/test.sh

bench: deps
	@cmake -S . -B $(BENCH_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DHERALD_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(BENCH_DIR)
	@scripts/bench.sh $(BENCH_DIR)

format:
	@scripts/format.sh fix

check-format:
	@scripts/format.sh check

clean:
	rm -rf build build-* herald.db herald.db-wal herald.db-shm
