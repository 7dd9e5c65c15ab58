#!/usr/bin/env bash
# `make demo`: the service end to end on this machine.
#
# Starts flowvi-server on a free loopback port with a temporary data directory; fits the paper's
# four 2-D energies u1-u4 with planar*2, planar*8 and planar*32 and eight schools (centered)
# with a mean-field Gaussian and a planar*32 flow, all through the `flowvi` CLI, printing each
# fit's progress and diagnostics; draws Figure 3 of Rezende & Mohamed (2015) — targets in the
# first column, fits beside them — and the eight-schools comparison as PNGs; then stops the
# server.
#
#   deploy/demo.sh [BUILD_DIR]      (default: build; the PNGs go to BUILD_DIR/demo/)
#
# Iterations: U_ITERS (default 50000) for u1-u4, ES_ITERS (default 30000) for eight schools.
set -euo pipefail

build="${1:-build}"
flowvi="$build/client/flowvi"
server_bin="$build/server/flowvi-server"
out="$build/demo"
u_iters="${U_ITERS:-50000}"
es_iters="${ES_ITERS:-30000}"
for bin in "$flowvi" "$server_bin"; do
  [ -x "$bin" ] || { echo "demo: $bin is missing; run 'make build' first" >&2; exit 1; }
done
mkdir -p "$out"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/flowvi-demo.XXXXXX")"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
# Our own server: FLOWVI_* settings from the environment must not change it.
env -u FLOWVI_LISTEN -u FLOWVI_METRICS_LISTEN -u FLOWVI_DATA_DIR -u FLOWVI_WORKERS \
  "$server_bin" --listen=127.0.0.1:0 --metrics-listen=127.0.0.1:0 --data_dir="$tmp/data" \
  --workers=2 >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
address=""
for _ in $(seq 300); do
  line="$(head -n 1 "$tmp/server.out" 2>/dev/null || true)"
  if [[ "$line" =~ listening\ on\ ([^,[:space:]]+) ]]; then
    address="${BASH_REMATCH[1]}"
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$address" ]; then
  echo "demo: flowvi-server did not start:" >&2
  cat "$tmp/server.err" >&2
  exit 1
fi
export FLOWVI_SERVER="$address"
echo "== flowvi-server on $address (data in $tmp/data)"
"$flowvi" health

# Submit everything, then follow the jobs in order (two fit workers run them two at a time).
jobs=()
submit() { jobs+=("$("$flowvi" fit "$@" --detach --quiet)"); }
u_models=()
for target in u1 u2 u3 u4; do
  for k in 2 8 32; do
    submit "$target" "planar*$k" --iters "$u_iters" --name "$target-planar$k"
    u_models+=("$target-planar$k")
  done
done
submit eight_schools meanfield --iters "$es_iters" --lr 0.01 --name eight_schools-meanfield
submit eight_schools 'planar*32' --iters "$es_iters" --lr 0.01 --name eight_schools-planar32

for job in "${jobs[@]}"; do
  echo
  "$flowvi" watch "$job"
done

echo
echo "== the registered models"
"$flowvi" models
echo
echo "== eight schools with planar*32: the means and sds of q, and PSIS-corrected ones"
"$flowvi" model eight_schools-planar32 | sed -n '/^coordinates/,$p'
echo
"$flowvi" figure "${u_models[@]}" -o "$out/figure3.png" \
  --title "Rezende & Mohamed (2015), Figure 3: targets (left) and planar flows, K = 2, 8, 32"
"$flowvi" plot eight_schools-meanfield eight_schools-planar32 \
  --pairs theta1:log_tau,mu:log_tau -o "$out/eight_schools.png"
stop_server
echo
echo "== done in $(( $(date +%s) - start ))s: $out/figure3.png and $out/eight_schools.png"
