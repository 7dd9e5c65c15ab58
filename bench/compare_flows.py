#!/usr/bin/env python3
"""The issue-8 benchmark in one table: every coupling and autoregressive training step of
bench/train_step_bench against its PyTorch equivalent, in float32 and in float64.

Cases (N = 256, Adam lr 1e-3, annealing over 10000 iterations, one thread on both sides):
  coupling       nice*4,scale, realnvp*4, spline*4 (8 bins) on gaussian(dim=D)
                 (bench/torch_coupling.py): hidden 32, depth 2 at D = 2 and D = 64, and at D = 2
                 also hidden 8, depth 1 -- the conditioner size the 2-D fits use
  autoregressive iaf*4, maf*4 (MADE conditioner, one hidden layer), circconv*4 and linear*4 on
                 funnel(dim=D) (bench/torch_autoregressive.py): hidden 32 (the default), 16 and 8 at D = 2;
                 iaf*4 and maf*2 with hidden 64 at D = 64
The engine computes in float64; torch float32 is what ../shared/bench/torch_reference.py and most
users run, float64 the like-for-like precision. The bar (issue 8: 20x at D = 2, 3x at D = 64) is
checked against torch float32.

Per round, each case runs as engine, torch float32, torch float64, back to back, so that a noisy
shared machine affects the three alike; the table shows medians over the rounds (every engine
repetition counts) of wall-clock time per iteration, the ratios torch / engine, and the ratio of
process CPU times (steadier than wall clock when the machine is loaded). Exits non-zero when a
float32 wall-clock ratio is below its bar, when the training step allocates, or a run fails.

  bench/compare_flows.py --bench build/bench/train_step_bench [--rounds 3] [--repetitions 3]
                         [--filter REGEX] [--iters-scale 1]
"""
import argparse
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import run, to_us  # noqa: E402  (the shared process and unit helpers)

HERE = os.path.dirname(os.path.abspath(__file__))
COUPLING = os.path.join(HERE, "torch_coupling.py")
AUTOREGRESSIVE = os.path.join(HERE, "torch_autoregressive.py")
BARS = {2: 20.0, 64: 3.0}


def _cases():
    """(label, D, engine benchmark name, torch script, torch arguments, torch iterations)."""
    cases = []
    coupling = [("nice", 32, 2), ("realnvp", 32, 2), ("spline", 32, 2), ("nice", 8, 1),
                ("realnvp", 8, 1), ("spline", 8, 1)]
    for dim in (2, 64):
        for flow, hidden, depth in coupling:
            if dim == 64 and hidden == 8:
                continue
            small = hidden == 8
            name = (f"Coupling/{flow}(hidden=8,depth=1)/D:2/N:256" if small
                    else f"Coupling/{flow}/D:{dim}/N:256")
            label = f"{flow}(hidden={hidden},depth={depth})*4" + (",scale" if flow == "nice" else "")
            iters = 15 if (flow, dim) == ("spline", 64) else 60
            cases.append((label, dim, name, COUPLING,
                          f"--flow {flow} --dim {dim} --layers 4 --hidden {hidden} "
                          f"--depth {depth} --bins 8", iters))
    ar = [(2, "iaf(hidden=32,depth=1)*4", 200), (2, "maf(hidden=32,depth=1)*4", 100),
          (2, "iaf(hidden=16,depth=1)*4", 200), (2, "maf(hidden=16,depth=1)*4", 100),
          (2, "iaf(hidden=8,depth=1)*4", 200), (2, "maf(hidden=8,depth=1)*4", 100),
          (2, "circconv*4", 200), (2, "linear*4", 200),
          (64, "iaf(hidden=64,depth=1)*4", 30), (64, "maf(hidden=64,depth=1)*2", 2),
          (64, "circconv*4", 200), (64, "linear*4", 50)]
    for dim, spec, iters in ar:
        m = re.fullmatch(r"(\w+)(?:\(hidden=(\d+),depth=(\d+)\))?\*(\d+)", spec)
        flow, hidden, depth, layers = m.groups()
        args = f"--target funnel --dim {dim} --flow {flow} --layers {layers}"
        if hidden:
            args += f" --hidden {hidden} --depth {depth}"
        cases.append((f"funnel {spec}", dim, f"TrainStep/funnel:{dim}/{spec}/N:256",
                      AUTOREGRESSIVE, args + " --eval-samples 1000", iters))
    return cases


CASES = _cases()
TORCH_LINE = re.compile(r"([0-9.]+) us/iter \(cpu ([0-9.]+) us/iter\)")


def run_engine(bench, name, repetitions, min_time):
    out = run([bench, f"--benchmark_filter=^{re.escape(name)}$", "--benchmark_format=json",
               f"--benchmark_repetitions={repetitions}", f"--benchmark_min_time={min_time}"])
    r = {"real": [], "cpu": [], "allocs": []}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        if b.get("error_occurred"):
            raise SystemExit(f"compare: {b['name']}: {b.get('error_message', 'error')}")
        if b.get("run_name", b["name"]) != name:
            continue
        r["real"].append(to_us(b["real_time"], b["time_unit"]))
        r["cpu"].append(to_us(b["cpu_time"], b["time_unit"]))
        r["allocs"].append(b["allocs_per_step"])
    if not r["real"]:
        raise SystemExit(f"compare: no result for {name} from {bench}")
    return r


def run_torch(script, args, iters, dtype):
    out = run(["/usr/bin/python3", script, "--batch", "256", "--threads", "1", "--iters",
               str(iters), "--dtype", dtype] + args.split())
    m = TORCH_LINE.search(out)
    if m is None:
        raise SystemExit(f"compare: no 'us/iter (cpu ... us/iter)' in the torch output:\n{out}")
    print("  " + out.strip(), file=sys.stderr, flush=True)
    return float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="the train_step_bench binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--iters-scale", type=float, default=1.0,
                    help="scales every torch run's iteration count")
    ap.add_argument("--filter", default="", help="only the cases whose label or engine name "
                    "matches this regular expression")
    ap.add_argument("--json", help="also write the table's figures to this file")
    a = ap.parse_args()
    cases = [c for c in CASES if not a.filter or re.search(a.filter, c[0] + " " + c[2])]
    if not cases:
        raise SystemExit("compare: no case matches --filter")

    engine = {c[2]: {"real": [], "cpu": [], "allocs": []} for c in cases}
    torch = {(c[2], t): {"real": [], "cpu": []} for c in cases for t in ("float32", "float64")}
    load_before = os.getloadavg()
    for r in range(a.rounds):
        print(f"compare: round {r + 1}/{a.rounds}", file=sys.stderr, flush=True)
        for _, _, name, script, args, iters in cases:
            e = run_engine(a.bench, name, a.repetitions, a.min_time)
            for k in engine[name]:
                engine[name][k] += e[k]
            for dtype in ("float32", "float64"):
                wall, cpu = run_torch(script, args, max(2, round(iters * a.iters_scale)), dtype)
                torch[(name, dtype)]["real"].append(wall)
                torch[(name, dtype)]["cpu"].append(cpu)
    load_after = os.getloadavg()

    med = statistics.median
    ok = True
    rows = []
    print()
    print(f"issue-8 training steps, N = 256, Adam, 1 thread; medians over {a.rounds} interleaved "
          f"rounds ({a.rounds * a.repetitions} engine repetitions and {a.rounds} torch runs per "
          "case and precision); ratio = torch us / engine us (wall clock), cpu = the same in "
          "process CPU time; the bar applies to the float32 wall-clock ratio")
    header = (f"{'case':<38} {'D':>2} {'engine us':>10} {'f32 us':>9} {'f64 us':>9} "
              f"{'x f32':>7} {'x f64':>7} {'cpu f32':>7} {'cpu f64':>7} {'bar':>4} {'result':>6} "
              f"{'allocs':>6}")
    print(header)
    print("-" * len(header))
    for label, dim, name, _, _, _ in cases:
        eng, eng_cpu = med(engine[name]["real"]), med(engine[name]["cpu"])
        f32, f64 = torch[(name, "float32")], torch[(name, "float64")]
        ratio32, ratio64 = med(f32["real"]) / eng, med(f64["real"]) / eng
        cpu32, cpu64 = med(f32["cpu"]) / eng_cpu, med(f64["cpu"]) / eng_cpu
        allocs = max(engine[name]["allocs"])
        bar = BARS[dim]
        passed = ratio32 >= bar and allocs == 0
        ok = ok and passed
        rows.append({"case": label, "dim": dim, "engine_us": eng, "engine_cpu_us": eng_cpu,
                     "torch_f32_us": med(f32["real"]), "torch_f64_us": med(f64["real"]),
                     "ratio_f32": ratio32, "ratio_f64": ratio64, "cpu_ratio_f32": cpu32,
                     "cpu_ratio_f64": cpu64, "bar": bar, "pass": passed, "allocs": allocs})
        print(f"{label:<38} {dim:>2} {eng:>10.1f} {med(f32['real']):>9.0f} "
              f"{med(f64['real']):>9.0f} {ratio32:>6.1f}x {ratio64:>6.1f}x {cpu32:>6.1f}x "
              f"{cpu64:>6.1f}x {bar:>3.0f}x {'PASS' if passed else 'FAIL':>6} {allocs:>6g}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "load_before": load_before, "load_after": load_after}, f,
                      indent=1)
    if not ok:
        print("compare: FAIL — a speed-up is below its bar or the training step allocates")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
