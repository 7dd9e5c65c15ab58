#!/usr/bin/env bash
# `make test-deploy`: builds the Docker image and runs it for real on a machine without a Docker
# engine (buildah, chroot isolation, host network), then checks it from the host:
#
#   1. the deployment files: promtool check config/rules, the alerts' unit tests, and
#      deploy/check_manifests.py (YAML/JSON parse; Compose and Kubernetes agree with the image's
#      ports, user and volume; the dashboard's queries parse);
#   2. the image builds (buildah bud --pull=never --isolation chroot --format docker) on the base
#      image of ../shared/tools/base-image.sh, with the host's ccache and .deb files mounted in;
#   3. flowvi-server starts in it, on loopback ports, with a host directory as its volume;
#      with the host's CLI (build/client/flowvi): a fit, a sample and a log-density query;
#   4. the image's own HEALTHCHECK command passes (and fails against a port nobody serves);
#   5. the server stops on SIGTERM and, restarted on the same directory, still serves the model
#      and draws the same samples for the same seed;
#   6. a real Prometheus with deploy/prometheus/prometheus.yml (its target rewritten to the
#      test's server) scrapes it until a flowvi metric appears in its HTTP API, and has loaded
#      the alerting rules; the dashboard and the alerts use only metrics the server exposes.
#
# Everything it starts (containers, the server, Prometheus) it stops and removes, also on
# failure. It leaves the image (FLOWVI_IMAGE, default localhost/flowvi:test) for inspection.
#
#   deploy/test_deploy.sh [BUILD_DIR]      (default: build; needs BUILD_DIR/client/flowvi)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
build="${1:-build}"
flowvi="$root/$build/client/flowvi"
image="${FLOWVI_IMAGE:-localhost/flowvi:test}"
base_image=docker.io/library/debian:bookworm-slim
base_image_script="${FLOWVI_BASE_IMAGE_SCRIPT:-$root/../shared/tools/base-image.sh}"
python=/usr/bin/python3

passed=0
ctr=""
runner_pid=""
prom_pid=""
tmp="$(mktemp -d "${TMPDIR:-/tmp}/flowvi-test-deploy.XXXXXX")"

log() { echo "test-deploy: $*"; }
pass() {
  passed=$((passed + 1))
  log "ok: $*"
}
fail() {
  log "FAILED: $*" >&2
  for f in server.err prometheus.err; do
    if [ -s "$tmp/$f" ]; then
      echo "--- $f (last lines)" >&2
      tail -n 20 "$tmp/$f" >&2
    fi
  done
  echo "test-deploy: $passed passed, 1 failed"
  exit 1
}

# The flowvi-server process that `buildah run` started (buildah -> buildah-chroot-exec ->
# flowvi-server). SIGTERM goes to it directly: buildah would SIGKILL its child instead.
server_pid_of() {
  local pid="$1" child
  for _ in 1 2 3 4; do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = flowvi-server ] && { echo "$pid"; return 0; }
    child="$(cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -m1 . || true)"
    [ -n "$child" ] || return 1
    pid="$child"
  done
  return 1
}

stop_server() {
  [ -n "$runner_pid" ] || return 0
  local spid
  if spid="$(server_pid_of "$runner_pid")"; then
    kill -TERM "$spid" 2>/dev/null || true
  fi
  # The server drains within its grace period (10 s); then buildah run ends too.
  for _ in $(seq 150); do
    kill -0 "$runner_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$runner_pid" 2>/dev/null; then
    kill -KILL "$runner_pid" 2>/dev/null || true
  fi
  local rc=0
  wait "$runner_pid" 2>/dev/null || rc=$?
  runner_pid=""
  return "$rc"
}

cleanup() {
  stop_server || true
  if [ -n "$prom_pid" ]; then
    kill -TERM "$prom_pid" 2>/dev/null || true
    wait "$prom_pid" 2>/dev/null || true
  fi
  if [ -n "$ctr" ]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free loopback ports, chosen by the kernel (bound and released at once).
free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# buildah with chroot isolation, and giving the volume directory to the image's user, need root.
[ "$(id -u)" -eq 0 ] || fail "run as root (buildah --isolation chroot, chown of the volume)"
[ -x "$flowvi" ] || fail "$flowvi is missing; run 'make build' first"
for tool in buildah podman promtool prometheus curl; do
  command -v "$tool" >/dev/null || fail "$tool is missing; run 'deploy/install-deps.sh --deploy'"
done
"$python" -c 'import yaml' 2>/dev/null || fail "PyYAML is missing; run deploy/install-deps.sh"

# --- 1. the deployment files on their own -------------------------------------------------------
promtool check config deploy/prometheus/prometheus.yml >"$tmp/promtool.out" 2>&1 \
  || { cat "$tmp/promtool.out" >&2; fail "promtool check config deploy/prometheus/prometheus.yml"; }
pass "promtool check config deploy/prometheus/prometheus.yml"
promtool check rules deploy/prometheus/alerts.yml >"$tmp/promtool.out" 2>&1 \
  || { cat "$tmp/promtool.out" >&2; fail "promtool check rules deploy/prometheus/alerts.yml"; }
pass "promtool check rules deploy/prometheus/alerts.yml"
promtool test rules deploy/prometheus/alerts_test.yml >"$tmp/promtool.out" 2>&1 \
  || { cat "$tmp/promtool.out" >&2; fail "promtool test rules deploy/prometheus/alerts_test.yml"; }
pass "promtool test rules deploy/prometheus/alerts_test.yml"

# --- 2. the image ---------------------------------------------------------------------------------
if ! podman image exists "$base_image"; then
  [ -x "$base_image_script" ] || fail "no $base_image and no $base_image_script to import it"
  "$base_image_script"
fi
ccache_dir="${CCACHE_DIR:-$HOME/.cache/ccache}"
mkdir -p "$ccache_dir"
build_args=(
  # The host's checkout path and ccache: the container compiles the same command lines.
  --build-arg "FLOWVI_SRC_DIR=$root" -v "$ccache_dir:/host-ccache" --build-arg CCACHE_DIR=/host-ccache
)
for var in LANG LC_ALL LC_CTYPE LC_MESSAGES; do
  [ -n "${!var+set}" ] && build_args+=(--build-arg "$var=${!var}")
done
if [ -d /var/cache/apt/archives ]; then
  build_args+=(-v /var/cache/apt/archives:/host-apt --build-arg FLOWVI_APT_ARCHIVES=/host-apt)
fi
start=$(date +%s)
built=""
if [ -n "${FLOWVI_TEST_DEPLOY_REUSE_IMAGE:-}" ] && podman image exists "$image"; then
  # For iterating on this script: the image from the last run, not rebuilt.
  log "reusing $image (FLOWVI_TEST_DEPLOY_REUSE_IMAGE is set)"
  built="reused"
else
  log "building $image (log: $tmp/build.log)"
  # The image this tag named before is replaced: remove it once nothing refers to it.
  old_id="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  buildah bud --pull=never --isolation chroot --format docker --layers=false "${build_args[@]}" \
    -t "$image" . >"$tmp/build.log" 2>&1 || { tail -n 40 "$tmp/build.log" >&2; fail "image build"; }
  if [ -n "$old_id" ] && [ "$old_id" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
    buildah rmi "$old_id" >/dev/null 2>&1 || true
  fi
  built="built in $(( $(date +%s) - start ))s"
  # The build stage ran the three unit-test binaries (gtest's summary lines).
  [ "$(grep -c '^\[  PASSED  \]' "$tmp/build.log")" -eq 3 ] \
    || { tail -n 40 "$tmp/build.log" >&2; fail "the image build did not pass its three unit-test binaries"; }
  pass "unit tests in the image build: $(grep '^\[  PASSED  \]' "$tmp/build.log" \
    | sed 's/.*PASSED  \] //; s/ tests\?\.//' | paste -sd+) passed"
fi
size_mb=$(( $(podman image inspect --format '{{.Size}}' "$image") / 1000000 ))
pass "image $image $built, ${size_mb} MB"
buildah inspect --type image "$image" \
  | "$python" -c 'import json, sys; json.dump(json.load(sys.stdin)["Docker"]["config"], sys.stdout)' \
  >"$tmp/image-config.json"
healthcheck="$("$python" -c '
import json, sys
test = json.load(open(sys.argv[1]))["Healthcheck"]["Test"]
assert test[0] == "CMD-SHELL", test
print(test[1])' "$tmp/image-config.json")" || fail "the image has no shell-form HEALTHCHECK"

# --- 3. the server in the image, the CLI on the host ----------------------------------------------
mkdir -p "$tmp/data"
uidgid="$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["User"])' "$tmp/image-config.json")"
chown "$uidgid" "$tmp/data"
ctr="$(buildah from --pull=never "$image")"
grpc_port="$(free_port)"
metrics_port="$(free_port)"
while [ "$metrics_port" = "$grpc_port" ]; do metrics_port="$(free_port)"; done
address="127.0.0.1:$grpc_port"

start_server() {
  : >"$tmp/server.out"
  buildah run --isolation chroot -v "$tmp/data:/var/lib/flowvi" \
    -e "FLOWVI_LISTEN=$address" -e "FLOWVI_METRICS_LISTEN=127.0.0.1:$metrics_port" \
    "$ctr" -- /usr/local/bin/flowvi-server >"$tmp/server.out" 2>>"$tmp/server.err" &
  runner_pid=$!
  for _ in $(seq 300); do
    grep -q "listening on $address" "$tmp/server.out" && return 0
    kill -0 "$runner_pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "flowvi-server did not start in the image"
}
start_server
pass "flowvi-server runs in the image ($(head -n 1 "$tmp/server.out"))"

export FLOWVI_SERVER="$address"
"$flowvi" health >/dev/null || fail "flowvi health from the host"
pass "flowvi health from the host: SERVING"
"$flowvi" fit u1 'planar*2' --iters 2000 --seed 3 --name deploy-u1 >"$tmp/fit.out" 2>&1 \
  || { cat "$tmp/fit.out" >&2; fail "flowvi fit u1 planar*2"; }
grep -q "succeeded" "$tmp/fit.out" || { cat "$tmp/fit.out" >&2; fail "the fit did not succeed"; }
pass "flowvi fit u1 'planar*2' --iters 2000 succeeded"
"$flowvi" sample deploy-u1 -n 50 --seed 11 >"$tmp/samples.csv" || fail "flowvi sample"
[ "$(wc -l <"$tmp/samples.csv")" -eq 51 ] || fail "flowvi sample -n 50 did not write 50 rows"
pass "flowvi sample deploy-u1 -n 50"
"$flowvi" logpdf deploy-u1 --points "$tmp/samples.csv" >"$tmp/logpdf.csv" || fail "flowvi logpdf"
# Sample's log q comes from the forward pass, LogDensity's from inverting the flow: they agree.
"$python" - "$tmp/samples.csv" "$tmp/logpdf.csv" <<'EOF' || fail "logpdf disagrees with sample's log q"
import csv, math, sys
s = list(csv.DictReader(open(sys.argv[1])))
l = list(csv.DictReader(open(sys.argv[2])))
assert len(s) == len(l) == 50, (len(s), len(l))
for a, b in zip(s, l):
    qa, qb = float(a["log_q"]), float(b["log_q"])
    assert math.isfinite(qa) and abs(qa - qb) <= 1e-6 * max(1.0, abs(qa)), (a, b)
EOF
pass "flowvi logpdf at the 50 draws equals their log q from sample"

# --- 4. the image's HEALTHCHECK ------------------------------------------------------------------
buildah run --isolation chroot -e "FLOWVI_LISTEN=$address" "$ctr" -- /bin/sh -c "$healthcheck" \
  || fail "the image's HEALTHCHECK ($healthcheck) against the running server"
dead_port="$(free_port)"
if buildah run --isolation chroot -e "FLOWVI_LISTEN=127.0.0.1:$dead_port" "$ctr" -- \
    /bin/sh -c "$healthcheck" 2>/dev/null; then
  fail "the image's HEALTHCHECK passed with no server on port $dead_port"
fi
pass "the image's HEALTHCHECK passes against the server and fails without one"

curl -fsS "http://127.0.0.1:$metrics_port/metrics" >"$tmp/metrics.txt" || fail "GET /metrics"
grep -qx 'flowvi_models 1' "$tmp/metrics.txt" || fail "/metrics does not say flowvi_models 1"
pass "/metrics: flowvi_models 1"

# --- 5. restart on the same volume --------------------------------------------------------------
stop_server || fail "flowvi-server did not exit cleanly on SIGTERM"
grep -q "shutting down" "$tmp/server.err" || fail "flowvi-server did not log its SIGTERM shutdown"
pass "flowvi-server stopped on SIGTERM"
start_server
"$flowvi" models >"$tmp/models.out" || fail "flowvi models after the restart"
grep -q "deploy-u1" "$tmp/models.out" || fail "model deploy-u1 is gone after the restart"
"$flowvi" sample deploy-u1 -n 50 --seed 11 >"$tmp/samples2.csv" || fail "flowvi sample after the restart"
cmp -s "$tmp/samples.csv" "$tmp/samples2.csv" || fail "the same seed drew different samples after the restart"
pass "after a restart on the same volume: model deploy-u1 there, identical samples"

# --- 6. Prometheus --------------------------------------------------------------------------------
prom_port="$(free_port)"
mkdir -p "$tmp/prometheus"
cp deploy/prometheus/alerts.yml "$tmp/prometheus/"
sed -e "s/\"flowvi:9464\"/\"127.0.0.1:$metrics_port\"/" -e 's/scrape_interval: .*/scrape_interval: 1s/' \
  deploy/prometheus/prometheus.yml >"$tmp/prometheus/prometheus.yml"
grep -q "127.0.0.1:$metrics_port" "$tmp/prometheus/prometheus.yml" \
  || fail "could not point the scrape config at the test's server"
prometheus --config.file="$tmp/prometheus/prometheus.yml" --storage.tsdb.path="$tmp/prometheus/data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.out" 2>"$tmp/prometheus.err" &
prom_pid=$!
query() {
  curl -fsS --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" 2>/dev/null
}
value=""
for _ in $(seq 120); do
  kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited"
  value="$(query 'flowvi_models{job="flowvi"}' | "$python" -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null || true)"
  [ -n "$value" ] && break
  sleep 0.5
done
[ "$value" = 1 ] || fail "Prometheus never showed flowvi_models = 1 (got '$value')"
pass "Prometheus scraped the server: flowvi_models{job=\"flowvi\"} = 1"
curl -fsS "http://127.0.0.1:$prom_port/api/v1/rules" | "$python" -c '
import json, sys
names = {r["name"] for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]}
want = {"FlowviDown", "FlowviQueueFull", "FlowviFitsFailing", "FlowviRpcErrorRatioHigh"}
sys.exit(0 if want <= names else f"rules loaded: {sorted(names)}")' \
  || fail "Prometheus did not load the alerting rules"
pass "Prometheus loaded the four alerting rules"

"$python" deploy/check_manifests.py --image-config "$tmp/image-config.json" \
  --metrics "$tmp/metrics.txt" >"$tmp/manifests.out" 2>&1 \
  || { cat "$tmp/manifests.out" >&2; fail "deploy/check_manifests.py"; }
pass "deploy/check_manifests.py: $(tail -n 1 "$tmp/manifests.out" | sed 's/check_manifests: //')"

echo "test-deploy: image $built, ${size_mb} MB"
echo "test-deploy: $passed passed, 0 failed"
