# The commands users type. Each build lives in its own directory:
# build/ (normal), build-asan/ (ASan+UBSan), build-tsan/ (TSan),
# build-fuzz/ (libFuzzer targets, built with clang).
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
CTEST_FLAGS ?= --output-on-failure -j$(JOBS)
FUZZ_SECONDS ?= 20

.PHONY: all deps build test test-asan test-tsan test-conformance fuzz demo bench \
	format clean install

all: build

deps:
	@tools/deps.sh

build/Makefile:
	cmake -S . -B build $(CMAKE_FLAGS)

build: build/Makefile
	@cmake --build build -j$(JOBS)

test: deps build
	cd build && ctest $(CTEST_FLAGS)

build-asan/Makefile:
	cmake -S . -B build-asan -DCONC_SANITIZE=address -DCMAKE_BUILD_TYPE=Debug \
	    -DCONC_BUILD_BENCH=OFF $(CMAKE_FLAGS)

test-asan: deps build-asan/Makefile
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

build-tsan/Makefile:
	cmake -S . -B build-tsan -DCONC_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug \
	    -DCONC_BUILD_BENCH=OFF $(CMAKE_FLAGS)

test-tsan: deps build-tsan/Makefile
	@cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	    ctest $(CTEST_FLAGS)

# Every case of the WebSocket conformance suite (CTest runs a subset), in
# both directions: against the engine over blocking sockets, then against
# the I/O binding (examples/ws_echo_server, tests/peers/ws_echo_client).
WS_CONF = /usr/bin/python3 tests/peers/ws_conformance.py
WS_PEER = build/tests/ws_conformance_peer
test-conformance: deps build
	$(WS_CONF) client --server-cmd "$(WS_PEER) server 0"
	$(WS_CONF) server --client-cmd "$(WS_PEER) client {url}"
	$(WS_CONF) client --server-cmd "build/examples/ws_echo_server 0"
	$(WS_CONF) server --client-cmd "build/tests/ws_echo_client {url}"

build-fuzz/Makefile:
	CC=clang cmake -S . -B build-fuzz -DCONC_FUZZ=ON -DCONC_BUILD_TESTS=OFF \
	    -DCONC_BUILD_EXAMPLES=OFF -DCONC_BUILD_BENCH=OFF $(CMAKE_FLAGS)

# Every fuzz target for FUZZ_SECONDS seconds, from its seed corpus.
fuzz: deps build-fuzz/Makefile
	@cmake --build build-fuzz -j$(JOBS) --target conc_fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh build-fuzz

demo: deps build
	@tools/demo.sh build/examples

bench: deps build
	@python3 bench/run.py --build build

install: build
	cmake --install build

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan build-fuzz
