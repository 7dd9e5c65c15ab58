#!/usr/bin/env python3
"""Side-by-side timing of the coupling-layer training steps: the engine against PyTorch.

Runs the Coupling/* cases of bench/train_step_bench (nice*4,scale, realnvp*4 and spline*4 with
hidden width 32, depth 2, on gaussian(dim=D), D = 2 and 64, N = 256) and bench/torch_coupling.py
on the same setups, one thread, interleaved (engine, torch, engine, torch, ...) so that a noisy
shared machine affects both alike, and compares wall-clock medians as bench/compare.py does.
Exits non-zero when a ratio is below its bar (20x at D = 2, 3x at D = 64), when the training
step allocates, or when a run fails.

  bench/compare_coupling.py --bench build/bench/train_step_bench [--rounds 3] [--repetitions 3]
                            [--torch-dtype float32|float64]
"""
import argparse
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import run, to_us  # noqa: E402  (the shared process and unit helpers)

FLOWS = ["nice", "realnvp", "spline"]
DIMS = {2: 20.0, 64: 3.0}  # D -> required speed-up
# Reference iterations per run: enough for a stable mean at each case's cost.
TORCH_ITERS = {("spline", 64): 15}
ENGINE_NAME = "Coupling/{}/D:{}/N:256"
TORCH_LINE = re.compile(r"([0-9.]+) us/iter")


def run_engine(bench, repetitions, min_time):
    out = run([bench, "--benchmark_filter=^Coupling/", "--benchmark_format=json",
               f"--benchmark_repetitions={repetitions}", f"--benchmark_min_time={min_time}"])
    results = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        if b.get("error_occurred"):
            raise SystemExit(f"compare: {b['name']}: {b.get('error_message', 'error')}")
        r = results.setdefault(b.get("run_name", b["name"]), {"real": [], "cpu": [], "allocs": []})
        r["real"].append(to_us(b["real_time"], b["time_unit"]))
        r["cpu"].append(to_us(b["cpu_time"], b["time_unit"]))
        r["allocs"].append(b["allocs_per_step"])
    return results


def run_torch(script, flow, dim, iters, dtype):
    out = run(["/usr/bin/python3", script, "--flow", flow, "--dim", str(dim), "--batch", "256",
               "--layers", "4", "--hidden", "32", "--depth", "2", "--iters", str(iters),
               "--threads", "1", "--dtype", dtype])
    m = TORCH_LINE.search(out)
    if m is None:
        raise SystemExit(f"compare: no 'us/iter' in torch_coupling.py's output:\n{out}")
    print("  " + out.strip(), file=sys.stderr, flush=True)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="the train_step_bench binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--torch-iters", type=int, default=60)
    ap.add_argument("--torch-dtype", default="float32", choices=["float32", "float64"],
                    help="the reference's precision (float32, as torch_reference.py; the engine "
                         "computes in float64)")
    a = ap.parse_args()
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_coupling.py")
    cases = [(f, d) for f in FLOWS for d in DIMS]
    engine = {c: {"real": [], "cpu": [], "allocs": []} for c in cases}
    torch = {c: [] for c in cases}
    load_before = os.getloadavg()
    for r in range(a.rounds):
        print(f"compare: round {r + 1}/{a.rounds}", file=sys.stderr, flush=True)
        e = run_engine(a.bench, a.repetitions, a.min_time)
        for f, d in cases:
            name = ENGINE_NAME.format(f, d)
            if name not in e:
                raise SystemExit(f"compare: no result for {name} from {a.bench}")
            for k in engine[(f, d)]:
                engine[(f, d)][k] += e[name][k]
        for f, d in cases:
            torch[(f, d)].append(
                run_torch(script, f, d, TORCH_ITERS.get((f, d), a.torch_iters), a.torch_dtype))
    load_after = os.getloadavg()

    ok = True
    print()
    print("coupling training steps: 4 couplings, hidden 32, depth 2, N = 256, gaussian(dim=D), "
          f"Adam, 1 thread, torch in {a.torch_dtype}; wall-clock medians over {a.rounds} "
          "interleaved rounds")
    header = (f"{'case':<20} {'engine us/iter':>14} {'torch us/iter':>14} {'ratio':>8} "
              f"{'required':>9} {'result':>6} {'allocs/step':>11} {'engine cpu us':>13}")
    print(header)
    print("-" * len(header))
    for f, d in cases:
        eng = statistics.median(engine[(f, d)]["real"])
        cpu = statistics.median(engine[(f, d)]["cpu"])
        ref = statistics.median(torch[(f, d)])
        ratio = ref / eng
        allocs = max(engine[(f, d)]["allocs"])
        passed = ratio >= DIMS[d] and allocs == 0
        ok = ok and passed
        print(f"{f + ' D=' + str(d):<20} {eng:>14.1f} {ref:>14.1f} {ratio:>7.1f}x "
              f"{DIMS[d]:>8.0f}x {'PASS' if passed else 'FAIL':>6} {allocs:>11g} {cpu:>13.1f}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    if not ok:
        print("compare: FAIL — a speed-up is below its bar or the training step allocates")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
