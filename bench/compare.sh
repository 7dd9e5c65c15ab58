#!/usr/bin/env bash
# Side-by-side benchmark of one training iteration: the engine (bench/train_step_bench) against
# the PyTorch reference a user would run instead (../shared/bench/torch_reference.py), on u1 with
# planar K=32 at N = 100 and N = 1000, one thread, interleaved in one run. Prints a table of
# medians and exits non-zero if the engine is less than 100x (N=100) / 30x (N=1000) faster, or if
# the training step allocates.
#
#   bench/compare.sh [--rounds 3] [--repetitions 5] [--min-time 0.2] [--iters-scale 1]
#
# Environment:
#   FLOWVI_TORCH_REFERENCE  path of torch_reference.py (default: <repo>/../shared/bench/...)
#   FLOWVI_BENCH_BINARY     use this prebuilt train_step_bench; skips installing and building
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
reference="${FLOWVI_TORCH_REFERENCE:-$repo/../shared/bench/torch_reference.py}"

if [ -n "${FLOWVI_BENCH_BINARY:-}" ]; then
  bench="$FLOWVI_BENCH_BINARY"
else
  deploy/install-deps.sh --bench
  # The option defaults to ON; a build tree configured earlier may have turned it off.
  cmake --preset release -DFLOWVI_BUILD_BENCH=ON
  cmake --build --preset release --target train_step_bench
  bench="$repo/build/bench/train_step_bench"
fi

exec /usr/bin/python3 "$repo/bench/compare.py" --bench "$bench" --torch-reference "$reference" "$@"
