#!/usr/bin/env bash
# Installs exactly the Debian bookworm packages that building and testing flowvi need, and only
# those that are missing (idempotent: a second run with everything present touches nothing).
#
#   deploy/install-deps.sh            build + test dependencies
#   deploy/install-deps.sh --bench    also the PyTorch reference used by bench/compare.sh
#   deploy/install-deps.sh --runtime  only the shared libraries the binaries need at run time
#   deploy/install-deps.sh --fuzz     also clang and libFuzzer, for tests/engine/run_fuzz.sh
set -euo pipefail

build_pkgs=(
  cmake ninja-build g++ ccache pkg-config
  libeigen3-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler prometheus-cpp-dev
  # SHA-256 and constant-time comparison of bearer tokens; openssl makes the tests' certificates
  libssl-dev openssl
  # the CLI's plots (flowvi plot): PNG, shapes and text
  libcairo2-dev libfontconfig-dev
  # end-to-end tests: a second, independent client (Python) and promtool for the metrics
  python3 python3-grpcio python3-grpc-tools prometheus curl
)
bench_pkgs=(python3-torch)
# clang with its runtime libraries (libFuzzer, ASan, UBSan) for the model-language fuzzer.
fuzz_pkgs=(clang libclang-rt-14-dev)
runtime_pkgs=(libgrpc++1.51 libprotobuf32 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0
  libcairo2 libfontconfig1 libssl3)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --bench) want+=("${bench_pkgs[@]}") ;;
  --fuzz) want+=("${fuzz_pkgs[@]}") ;;
  --runtime) want=("${runtime_pkgs[@]}") ;;
  "") ;;
  *) echo "usage: $0 [--bench|--runtime|--fuzz]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
