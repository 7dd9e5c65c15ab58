#!/usr/bin/env python3
"""Side-by-side timing of one training iteration of the autoregressive, circular-convolution and
LU-linear flows (issue 8): bench/train_step_bench against bench/torch_autoregressive.py.

The setups (funnel target, Adam lr 1e-3, annealing 10000, N = 256, one thread) are the
TrainStep/funnel:D/... cases of train_step_bench at D = 2 and D = 64. Runs are interleaved
(engine, then every torch case, per round) so that a noisy shared machine affects both alike;
the table compares medians of wall-clock time per iteration (as bench/compare.py) and, since a
loaded machine inflates wall time, of CPU time too. Exits non-zero when a wall-clock ratio is
below its bar (20x at D = 2, 3x at D = 64), when the training step allocates, or a run fails.

  bench/compare_autoregressive.py --bench build/bench/train_step_bench [--rounds 3]
"""
import argparse
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import run, to_us  # noqa: E402  (same directory)

# (engine case name, torch_autoregressive.py arguments, required speed-up, torch iterations)
CASES = [
    ("TrainStep/funnel:2/iaf(hidden=16,depth=1)*4/N:256",
     "--dim 2 --flow iaf --hidden 16 --depth 1 --layers 4", 20.0, 200),
    ("TrainStep/funnel:2/maf(hidden=16,depth=1)*4/N:256",
     "--dim 2 --flow maf --hidden 16 --depth 1 --layers 4", 20.0, 100),
    ("TrainStep/funnel:2/circconv*4/N:256", "--dim 2 --flow circconv --layers 4", 20.0, 200),
    ("TrainStep/funnel:2/linear*4/N:256", "--dim 2 --flow linear --layers 4", 20.0, 200),
    ("TrainStep/funnel:64/iaf(hidden=64,depth=1)*4/N:256",
     "--dim 64 --flow iaf --hidden 64 --depth 1 --layers 4", 3.0, 30),
    ("TrainStep/funnel:64/maf(hidden=64,depth=1)*2/N:256",
     "--dim 64 --flow maf --hidden 64 --depth 1 --layers 2", 3.0, 2),
    ("TrainStep/funnel:64/circconv*4/N:256", "--dim 64 --flow circconv --layers 4", 3.0, 200),
    ("TrainStep/funnel:64/linear*4/N:256", "--dim 64 --flow linear --layers 4", 3.0, 50),
]
ENGINE_FILTER = r"^TrainStep/funnel:"
TORCH_LINE = re.compile(r"([0-9.]+) us/iter \(cpu ([0-9.]+) us/iter\)")


def run_engine(bench, repetitions, min_time):
    out = run([bench, f"--benchmark_filter={ENGINE_FILTER}", "--benchmark_format=json",
               f"--benchmark_repetitions={repetitions}", f"--benchmark_min_time={min_time}"])
    results = {name: {"real": [], "cpu": [], "allocs": []} for name, _, _, _ in CASES}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        if b.get("error_occurred"):
            raise SystemExit(f"compare: {b['name']}: {b.get('error_message', 'error')}")
        name = b.get("run_name", b["name"])
        if name in results:
            results[name]["real"].append(to_us(b["real_time"], b["time_unit"]))
            results[name]["cpu"].append(to_us(b["cpu_time"], b["time_unit"]))
            results[name]["allocs"].append(b["allocs_per_step"])
    for name, r in results.items():
        if not r["real"]:
            raise SystemExit(f"compare: no result for {name} from {bench}")
    return results


def run_torch(script, args, iters):
    out = run(["/usr/bin/python3", script, "--target", "funnel", "--batch", "256", "--threads",
               "1", "--iters", str(iters), "--eval-samples", "1000"] + args.split())
    m = TORCH_LINE.search(out)
    if m is None:
        raise SystemExit(f"compare: no 'us/iter' in the torch output:\n{out}")
    print("  " + out.strip(), file=sys.stderr, flush=True)
    return float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="the train_step_bench binary")
    ap.add_argument("--torch-script", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "torch_autoregressive.py"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--iters-scale", type=float, default=1.0)
    a = ap.parse_args()

    load_before = os.getloadavg()
    engine = {name: {"real": [], "cpu": [], "allocs": []} for name, _, _, _ in CASES}
    torch_real = {name: [] for name, _, _, _ in CASES}
    torch_cpu = {name: [] for name, _, _, _ in CASES}
    for r in range(a.rounds):
        print(f"compare: round {r + 1}/{a.rounds}", file=sys.stderr, flush=True)
        e = run_engine(a.bench, a.repetitions, a.min_time)
        for name in engine:
            for k in engine[name]:
                engine[name][k] += e[name][k]
        for name, args, _, iters in CASES:
            wall, cpu = run_torch(a.torch_script, args, max(2, round(iters * a.iters_scale)))
            torch_real[name].append(wall)
            torch_cpu[name].append(cpu)
    load_after = os.getloadavg()

    ok = True
    print()
    print(f"funnel, Adam lr 1e-3, annealing 10000, N = 256, 1 thread; medians over {a.rounds} "
          f"interleaved rounds ({a.rounds * a.repetitions} engine repetitions, {a.rounds} torch "
          "runs per case)")
    header = (f"{'case':<40} {'engine us':>10} {'torch us':>10} {'ratio':>7} {'required':>8} "
              f"{'result':>6} {'cpu ratio':>9} {'allocs':>6}")
    print(header)
    print("-" * len(header))
    for name, _, bar, _ in CASES:
        eng = statistics.median(engine[name]["real"])
        ref = statistics.median(torch_real[name])
        cpu_ratio = statistics.median(torch_cpu[name]) / statistics.median(engine[name]["cpu"])
        allocs = max(engine[name]["allocs"])
        ratio = ref / eng
        passed = ratio >= bar and allocs == 0
        ok = ok and passed
        short = name.removeprefix("TrainStep/").removesuffix("/N:256")
        print(f"{short:<40} {eng:>10.1f} {ref:>10.1f} {ratio:>6.1f}x {bar:>7.0f}x "
              f"{'PASS' if passed else 'FAIL':>6} {cpu_ratio:>8.1f}x {allocs:>6g}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    if not ok:
        print("compare: FAIL — a speed-up is below its bar or the training step allocates")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
