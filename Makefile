# The two commands of the README, and the rest of the developer loop. Every target installs
# what is missing first (deploy/install-deps.sh is idempotent and quick when nothing is).
.PHONY: deps build test test-asan test-deploy demo bench fuzz format clean

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

# The Docker image built and run with buildah, Prometheus scraping it, the deployment files
# checked (deploy/test_deploy.sh says what exactly).
test-deploy: build
	@deploy/install-deps.sh --deploy
	@deploy/test_deploy.sh build

demo: build
	@bash deploy/demo.sh build

# compare.sh builds build/bench/train_step_bench (or uses FLOWVI_BENCH_BINARY); compare_flows.py
# then runs the issue-8 coupling and autoregressive cases on that binary.
bench:
	@bench/compare.sh
	@/usr/bin/python3 bench/compare_flows.py --bench "$${FLOWVI_BENCH_BINARY:-build/bench/train_step_bench}"

# The model-language fuzzer (clang + libFuzzer, in build-fuzz/) for FUZZ_SECONDS (default 60).
fuzz:
	@deploy/install-deps.sh --fuzz
	@tests/engine/run_fuzz.sh $(or $(FUZZ_SECONDS),60)

format:
	@find engine server client tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	@rm -rf build build-asan build-fuzz
