# The two commands of the README, and the rest of the developer loop. Every target installs
# what is missing first (deploy/install-deps.sh is idempotent and quick when nothing is).
.PHONY: deps build test test-asan demo bench format clean

JOBS ?= $(shell nproc)

deps:
	@deploy/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

test: build
	@ctest --preset release -j $(JOBS)

test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	@ctest --preset asan -j $(JOBS)

demo: build
	@bash deploy/demo.sh build

bench:
	@bench/compare.sh

format:
	@find engine server client tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	@rm -rf build build-asan
