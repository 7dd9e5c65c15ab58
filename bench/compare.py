#!/usr/bin/env python3
"""Side-by-side timing of one training iteration: the engine against the PyTorch reference.

Runs bench/train_step_bench (the u1 planar*32 cases) and ../shared/bench/torch_reference.py on the
same setup (u1, planar K=32, Adam lr 1e-3, annealing 10000, one thread) at N = 100 and N = 1000,
interleaved (engine, torch, engine, torch, ...) so that a noisy shared machine affects both alike,
and compares the medians. Both sides are wall-clock time per iteration (the reference measures
with time.perf_counter). Exits non-zero when a ratio is below its bar, when the training step
allocates, or when a run fails.

Usually run through bench/compare.sh, which installs the dependencies and builds the benchmark.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

# (batch size N, required speed-up over the reference, reference iterations per run)
CASES = [(100, 100.0, 300), (1000, 30.0, 200)]
ENGINE_NAME = "TrainStep/u1/planar*32/N:{}"
ENGINE_FILTER = r"^TrainStep/u1/planar\*32/N:"
TORCH_LINE = re.compile(r"([0-9.]+) us/iter")


def run(cmd):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"compare: {cmd[0]} failed with exit code {proc.returncode}")
    return proc.stdout


def to_us(value, unit):
    return value * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[unit]


def run_engine(bench, repetitions, min_time):
    """One engine run: {N: {"real": [us...], "cpu": [us...], "allocs": [per step...]}}."""
    out = run([bench, f"--benchmark_filter={ENGINE_FILTER}", "--benchmark_format=json",
               f"--benchmark_repetitions={repetitions}", f"--benchmark_min_time={min_time}"])
    results = {n: {"real": [], "cpu": [], "allocs": []} for n, _, _ in CASES}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue  # our own medians below, over every repetition of every round
        if "error_occurred" in b and b["error_occurred"]:
            raise SystemExit(f"compare: {b['name']}: {b.get('error_message', 'error')}")
        for n, _, _ in CASES:
            if b.get("run_name", b["name"]) == ENGINE_NAME.format(n):
                results[n]["real"].append(to_us(b["real_time"], b["time_unit"]))
                results[n]["cpu"].append(to_us(b["cpu_time"], b["time_unit"]))
                results[n]["allocs"].append(b["allocs_per_step"])
    for n, _, _ in CASES:
        if not results[n]["real"]:
            raise SystemExit(f"compare: no result for {ENGINE_NAME.format(n)} from {bench}")
    return results


def run_torch(reference, batch, iters):
    out = run(["/usr/bin/python3", reference, "--target", "u1", "--flow", "planar", "--layers",
               "32", "--batch", str(batch), "--iters", str(iters), "--threads", "1",
               "--eval-samples", "10000"])
    m = TORCH_LINE.search(out)
    if m is None:
        raise SystemExit(f"compare: no 'us/iter' in the reference's output:\n{out}")
    print("  " + out.strip(), file=sys.stderr, flush=True)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="the train_step_bench binary")
    ap.add_argument("--torch-reference", required=True, help="torch_reference.py")
    ap.add_argument("--rounds", type=int, default=3,
                    help="engine/torch pairs, interleaved (default 3)")
    ap.add_argument("--repetitions", type=int, default=5,
                    help="benchmark repetitions per engine run (default 5)")
    ap.add_argument("--min-time", type=float, default=0.2,
                    help="seconds per engine repetition (default 0.2)")
    ap.add_argument("--iters-scale", type=float, default=1.0,
                    help="multiplies the reference's iterations (300 at N=100, 200 at N=1000)")
    a = ap.parse_args()
    if not os.path.isfile(a.torch_reference):
        raise SystemExit(f"compare: {a.torch_reference} not found (set FLOWVI_TORCH_REFERENCE)")

    load_before = os.getloadavg()
    engine = {n: {"real": [], "cpu": [], "allocs": []} for n, _, _ in CASES}
    torch = {n: [] for n, _, _ in CASES}
    for r in range(a.rounds):
        print(f"compare: round {r + 1}/{a.rounds}", file=sys.stderr, flush=True)
        e = run_engine(a.bench, a.repetitions, a.min_time)
        for n, _, _ in CASES:
            for k in engine[n]:
                engine[n][k] += e[n][k]
        for n, _, iters in CASES:
            torch[n].append(run_torch(a.torch_reference, n, max(10, round(iters * a.iters_scale))))
    load_after = os.getloadavg()

    ok = True
    print()
    print("u1, planar K=32, Adam lr 1e-3, annealing 10000, 1 thread; wall-clock medians over "
          f"{a.rounds} interleaved rounds ({a.rounds * a.repetitions} engine repetitions, "
          f"{a.rounds} reference runs per case)")
    header = (f"{'case':<22} {'engine us/iter':>14} {'torch us/iter':>14} {'ratio':>8} "
              f"{'required':>9} {'result':>6} {'allocs/step':>11} {'engine cpu us':>13}")
    print(header)
    print("-" * len(header))
    for n, bar, _ in CASES:
        eng = statistics.median(engine[n]["real"])
        cpu = statistics.median(engine[n]["cpu"])
        ref = statistics.median(torch[n])
        ratio = ref / eng
        allocs = max(engine[n]["allocs"])
        passed = ratio >= bar and allocs == 0
        ok = ok and passed
        print(f"{'u1 planar*32 N=' + str(n):<22} {eng:>14.2f} {ref:>14.1f} {ratio:>7.1f}x "
              f"{bar:>8.0f}x {'PASS' if passed else 'FAIL':>6} {allocs:>11g} {cpu:>13.2f}")
    print()
    print("engine runs (us/iter):  " + "; ".join(
        f"N={n}: " + " ".join(f"{v:.1f}" for v in engine[n]["real"]) for n, _, _ in CASES))
    print("torch runs (us/iter):   " + "; ".join(
        f"N={n}: " + " ".join(f"{v:.0f}" for v in torch[n]) for n, _, _ in CASES))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    if not ok:
        print("compare: FAIL — a speed-up is below its bar or the training step allocates")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
