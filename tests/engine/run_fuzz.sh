#!/usr/bin/env bash
# Builds the model-language fuzzer (tests/engine/lang_fuzz.cc: lexer, parser, type checker, data
# reader, compiler and tape, under AddressSanitizer and UBSan) with clang and libFuzzer in its own
# tree, then runs it for a bounded time on the seed corpus.
#
#   tests/engine/run_fuzz.sh [SECONDS]        default 60
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz/ at the top of the tree), FUZZ_JOBS (parallel
# fuzzing processes, default 1). New inputs go to $FUZZ_BUILD_DIR/lang_corpus; the seeds in
# tests/engine/testdata/lang_corpus are only read. A crash leaves its input in $FUZZ_BUILD_DIR
# (crash-*, timeout-*, oom-*) and makes this script fail.
# Needs clang++ and libclang-rt-14-dev (deploy/install-deps.sh --fuzz).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${1:-60}
jobs=${FUZZ_JOBS:-1}

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DFLOWVI_FUZZ=ON -DFLOWVI_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target lang_fuzz

mkdir -p "$build/lang_corpus"
fuzzer=$build/tests/engine/lang_fuzz
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192
      -dict="$root/tests/engine/testdata/lang.dict" -artifact_prefix="$build/"
      -print_final_stats=1)
if [ "$jobs" -gt 1 ]; then args+=(-fork="$jobs"); fi
"$fuzzer" "${args[@]}" "$build/lang_corpus" "$root/tests/engine/testdata/lang_corpus"
