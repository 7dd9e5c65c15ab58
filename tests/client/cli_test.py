#!/usr/bin/env python3
"""End-to-end tests of the `flowvi` command line client against a real flowvi-server.

One server for the whole file: started on 127.0.0.1:0 (metrics on 127.0.0.1:0) with a
temporary data directory, its port parsed from its first stdout line, and always stopped
(SIGTERM, then SIGKILL) by a class cleanup. Every subcommand is run as the real binary; the
outputs are parsed back (CSV, JSON lines, .npy, PNG) with the standard library only.

    cli_test.py --flowvi build/client/flowvi --server build/server/flowvi-server [unittest args]
"""

import argparse
import json
import random
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

ARGS = None
STARTUP_TIMEOUT_S = 30
RUN_TIMEOUT_S = 120

_LISTEN_RE = re.compile(r"^flowvi-server listening on (?P<host>[^\s,]+):(?P<port>\d+)")
# A progress line: "job-000001  4,850/20,000 ( 24%)  ELBO 0.8537  28,675 it/s  ETA 0.5s".
_PROGRESS_RE = re.compile(
    r"^job-\d+  (?P<it>[\d,]+)/(?P<total>[\d,]+) \(\s*(?P<pct>\d+)%\)  ELBO (?P<elbo>\S+)")


# ---------------------------------------------------------------------------------------------
# Decoders (stdlib only)


def read_npy(data):
    """(shape, values) of a little-endian float64 C-order .npy file."""
    if data[:6] != b"\x93NUMPY":
        raise ValueError("no .npy magic")
    major = data[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", data[8:10])
        start = 10
    else:
        (hlen,) = struct.unpack("<I", data[8:12])
        start = 12
    header = data[start:start + hlen].decode("latin1")
    if (start + hlen) % 64 != 0:
        raise ValueError(f"data not 64-byte aligned: {start + hlen}")
    m = re.search(r"'descr':\s*'([^']+)'", header)
    if m is None or m.group(1) != "<f8":
        raise ValueError(f"descr: {header}")
    if "'fortran_order': False" not in header:
        raise ValueError(f"fortran_order: {header}")
    m = re.search(r"'shape':\s*\(([^)]*)\)", header)
    shape = tuple(int(s) for s in m.group(1).split(",") if s.strip())
    count = 1
    for s in shape:
        count *= s
    body = data[start + hlen:]
    if len(body) != 8 * count:
        raise ValueError(f"{len(body)} data bytes for shape {shape}")
    return shape, list(struct.unpack(f"<{count}d", body))


def decode_png(data):
    """(width, height, channels, rows) of an 8-bit RGB/RGBA/grey PNG; rows are bytes."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos = 8
    idat = b""
    width = height = None
    bit_depth = color_type = None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad CRC in {kind!r}")
        if kind == b"IHDR":
            width, height, bit_depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if interlace != 0:
                raise ValueError("interlaced PNG")
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if bit_depth != 8:
        raise ValueError(f"bit depth {bit_depth}")
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows = []
    prev = bytearray(stride)
    for y in range(height):
        base = y * (stride + 1)
        ftype = raw[base]
        line = bytearray(raw[base + 1:base + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
            elif ftype != 0:
                raise ValueError(f"filter type {ftype}")
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def pixel_stats(rows, channels):
    """(variance of the grey level, number of distinct colours, fraction of dark pixels)."""
    total = 0
    total_sq = 0
    n = 0
    colours = set()
    dark = 0
    for row in rows:
        for i in range(0, len(row), channels):
            px = row[i:i + min(3, channels)]
            g = sum(px) / len(px)
            total += g
            total_sq += g * g
            n += 1
            if len(colours) < 5000:
                colours.add(bytes(px))
            if g < 100:
                dark += 1
    mean = total / n
    return total_sq / n - mean * mean, len(colours), dark / n


# ---------------------------------------------------------------------------------------------
# The server and the CLI


class Server:
    def __init__(self, binary):
        self.tmp = tempfile.mkdtemp(prefix="flowvi-cli-test-")
        self.stderr_path = os.path.join(self.tmp, "server.stderr")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWVI_")}
        self.stderr = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [binary, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                 f"--data_dir={os.path.join(self.tmp, 'data')}", "--workers=2"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        except OSError:
            self.stderr.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.address = None
        box = {}
        reader = threading.Thread(target=lambda: box.update(line=self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT_S)
        line = box.get("line", b"").decode("utf-8", "replace")
        m = _LISTEN_RE.match(line)
        if m is None:
            self.stop()
            raise RuntimeError(f"flowvi-server did not start: {line!r}\n{self.stderr_text()}")
        self.address = f"127.0.0.1:{m.group('port')}"
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: self.proc.stdout.read(), daemon=True).start()

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Result:
    def __init__(self, proc, stdout, stderr):
        self.code = proc.returncode
        self.out = stdout
        self.err = stderr

    def __repr__(self):
        return f"exit {self.code}\n--- stdout:\n{self.out!s:.3000}\n--- stderr:\n{self.err!s:.3000}"


class CliTest(unittest.TestCase):
    server = None
    work = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(ARGS.server)
        cls.addClassCleanup(cls.server.stop)
        cls.work = tempfile.mkdtemp(prefix="flowvi-cli-work-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        # Shared models: a 2-D fit and a 10-D one.
        r = cls.run_cli("fit", "u1", "planar*2", "--iters", "3000", "--name", "u1m", "--seed", "1")
        if r.code != 0:
            raise RuntimeError(f"fit u1 failed: {r}")
        r = cls.run_cli("fit", "eight_schools", "planar*2", "--iters", "2000", "--lr", "0.01",
                        "--name", "es", "--diagnostic-draws", "2000")
        if r.code != 0:
            raise RuntimeError(f"fit eight_schools failed: {r}")

    @classmethod
    def run_cli(cls, *args, stdin=None, env_server=True, binary=False, timeout=RUN_TIMEOUT_S):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWVI_")}
        if env_server:
            env["FLOWVI_SERVER"] = cls.server.address
        proc = subprocess.run([ARGS.flowvi, *args], input=stdin, capture_output=True,
                              env=env, timeout=timeout, cwd=cls.work)
        if binary:
            return Result(proc, proc.stdout, proc.stderr.decode("utf-8", "replace"))
        return Result(proc, proc.stdout.decode("utf-8", "replace"),
                      proc.stderr.decode("utf-8", "replace"))

    def path(self, name):
        return os.path.join(self.work, name)

    def assertOk(self, r):
        self.assertEqual(r.code, 0, r)

    def assertFails(self, r, code, *phrases, progress=False):
        """Exit `code` with exactly one line 'flowvi: ...' on stderr naming the problem (after
        the job's title and progress lines when `progress`)."""
        self.assertEqual(r.code, code, r)
        lines = r.err.strip("\n").split("\n")
        if progress:
            self.assertRegex(lines[0], r"^job-\d+: ")
            self.assertTrue(all(_PROGRESS_RE.match(l) or "queued" in l for l in lines[1:-1]), r)
            lines = lines[-1:]
        self.assertEqual(len(lines), 1, f"expected one line on stderr: {r}")
        self.assertTrue(lines[0].startswith("flowvi: "), r)
        for bad in ("Traceback", "StatusCode", "grpc_status", "terminate called", "Aborted",
                    "debug_error_string", "UNAVAILABLE:", "Exception"):
            self.assertNotIn(bad, r.err)
        for phrase in phrases:
            self.assertIn(phrase, lines[0])

    def fit_detached(self, *args):
        r = self.run_cli("fit", *args, "--detach", "-q")
        self.assertOk(r)
        job = r.out.strip()
        self.assertRegex(job, r"^job-\d+$")
        return job

    def job(self, job_id):
        r = self.run_cli("jobs", "--json", "--limit", "1000")
        self.assertOk(r)
        for j in json.loads(r.out)["jobs"]:
            if j["id"] == job_id:
                return j
        self.fail(f"{job_id} not listed")

    def wait_running(self, job_id, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            j = self.job(job_id)
            if j["state"] == "JOB_STATE_RUNNING" and int(j["progress"]["iteration"]) > 0:
                return j
            time.sleep(0.1)
        self.fail(f"{job_id} did not start running")

    # -- help and usage ------------------------------------------------------------------------

    def test_help_everywhere(self):
        r = self.run_cli("--help")
        self.assertOk(r)
        for phrase in ("Exit codes:", "  3 ", "  130 ", "fit [TARGET] FLOW", "--server ADDR"):
            self.assertIn(phrase, r.out)
        for cmd in ("fit", "watch", "jobs", "cancel", "models", "model", "alias", "rm", "sample",
                    "logpdf", "targets", "layers", "health", "plot", "figure"):
            r = self.run_cli(cmd, "--help")
            self.assertOk(r)
            self.assertIn(f"Usage: flowvi {cmd}", r.out)
            self.assertIn("Global flags:", r.out)
            r2 = self.run_cli("help", cmd)
            self.assertEqual(r2.out, r.out)
        r = self.run_cli("--version")
        self.assertOk(r)
        self.assertRegex(r.out, r"^flowvi \d+\.\d+")

    def test_usage_errors_exit_2(self):
        self.assertFails(self.run_cli("fitt", "u1"), 2, "unknown command 'fitt'", "did you mean")
        self.assertFails(self.run_cli("fit", "u1"), 2, "give TARGET and FLOW")
        self.assertFails(self.run_cli("fit", "u1", "planar", "--bogus"), 2, "--bogus")
        self.assertFails(self.run_cli("fit", "u1", "planar", "--iters", "many"), 2, "--iters")
        self.assertFails(self.run_cli("sample", "u1m"), 2, "-n")
        self.assertFails(self.run_cli("plot", "u1m", "-o", "x.jpg"), 2, "PNG")
        r = self.run_cli()
        self.assertEqual(r.code, 2)
        self.assertIn("Usage: flowvi", r.err)

    # -- server info ---------------------------------------------------------------------------

    def test_health(self):
        r = self.run_cli("health")
        self.assertOk(r)
        self.assertIn("SERVING", r.out)
        r = self.run_cli("health", "--json")
        self.assertOk(r)
        self.assertEqual(json.loads(r.out)["status"], "SERVING")

    def test_server_flag_beats_environment(self):
        r = self.run_cli("--server", self.server.address, "health", env_server=False)
        self.assertOk(r)
        r = self.run_cli("health", "--server", self.server.address, env_server=False)
        self.assertOk(r)

    def test_targets_and_layers(self):
        r = self.run_cli("targets")
        self.assertOk(r)
        self.assertRegex(r.out, r"(?m)^u1\s+2\s+yes")
        self.assertIn("eight_schools", r.out)
        r = self.run_cli("targets", "--json")
        self.assertOk(r)
        names = [t["name"] for t in json.loads(r.out)["targets"]]
        self.assertIn("funnel", names)
        r = self.run_cli("targets", "eight_schools")
        self.assertOk(r)
        self.assertIn("log_tau", r.out)
        self.assertIn("centered", r.out)
        self.assertFails(self.run_cli("targets", "nope"), 4, "unknown target 'nope'")
        r = self.run_cli("layers")
        self.assertOk(r)
        self.assertIn("planar", r.out)
        self.assertIn("radial", r.out)
        r = self.run_cli("layers", "--json")
        self.assertOk(r)
        self.assertIn("planar", [l["type"] for l in json.loads(r.out)["layers"]])

    # -- fitting -------------------------------------------------------------------------------

    def test_fit_progress_when_not_a_terminal(self):
        r = self.run_cli("fit", "banana", "planar*8", "--iters", "20000", "--name", "banana8")
        self.assertOk(r)
        err = r.err.splitlines()
        self.assertRegex(err[0], r"^job-\d+: banana with planar\*8 \(2 dimensions, \d+ parameters\)")
        progress = [m for m in map(_PROGRESS_RE.match, err) if m]
        self.assertGreaterEqual(len(progress), 1, r)
        # Plain lines, no carriage returns or escape codes, iterations increasing, ending at 100%.
        self.assertNotIn("\r", r.err)
        self.assertNotIn("\x1b", r.err)
        its = [int(m.group("it").replace(",", "")) for m in progress]
        self.assertEqual(its, sorted(its))
        self.assertEqual(progress[-1].group("pct"), "100")
        self.assertEqual(progress[-1].group("total"), "20,000")
        self.assertLessEqual(len(progress), 11)
        # The diagnostics table.
        self.assertRegex(r.out, r"job-\d+ succeeded: model banana8/1 \(banana, planar\*8")
        self.assertRegex(r.out, r"ELBO\s+-?\d+\.\d+ ± \d+\.\d+")
        self.assertRegex(r.out, r"k̂\s+-?\d+\.\d+ \((good|ok|bad|very bad)")
        self.assertRegex(r.out, r"ESS\s+[\d,]+ of 20,000 draws")
        self.assertRegex(r.out, r"log Ẑ\s+-?\d+\.\d+ ± \d+\.\d+")

    def test_fit_progress_on_a_terminal(self):
        # Standard error on a pseudo-terminal: one line redrawn in place ("\r" + erase line).
        master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWVI_")}
        env["FLOWVI_SERVER"] = self.server.address
        proc = subprocess.Popen([ARGS.flowvi, "fit", "banana", "planar*8", "--iters", "20000",
                                 "--name", "tty"], stdout=subprocess.PIPE, stderr=slave,
                                env=env, cwd=self.work)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO once the child has closed its end
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
        self.assertEqual(proc.returncode, 0)
        err = b"".join(chunks).decode("utf-8", "replace")
        self.assertIn("\r\x1b[K", err)
        redraws = [p for p in err.split("\r\x1b[K") if _PROGRESS_RE.match(p.strip("\r\n"))]
        self.assertGreaterEqual(len(redraws), 1, err)
        self.assertIn("(100%)", redraws[-1])
        self.assertIn("succeeded: model tty/1", out.decode())

    def test_fit_json_and_quiet(self):
        r = self.run_cli("fit", "u2", "planar*2", "--iters", "1000", "--json", "--name", "u2j")
        self.assertOk(r)
        job = json.loads(r.out)
        self.assertEqual(job["state"], "JOB_STATE_SUCCEEDED")
        self.assertEqual(job["model_ref"], "u2j/1")
        self.assertIn("k_hat", job["diagnostics"])
        self.assertEqual(r.err, "")  # no progress without a terminal in --json mode
        r = self.run_cli("fit", "u2", "planar*2", "--iters", "1000", "-q", "--name", "u2j")
        self.assertOk(r)
        self.assertEqual(r.out, "u2j/2\n")
        self.assertEqual(r.err, "")

    def test_fit_with_params_and_options(self):
        r = self.run_cli("fit", "eight_schools", "meanfield", "--param", "centered=false",
                         "--param", "schools=2", "--iters", "500", "--batch", "20", "--lr",
                         "0.01", "--seed", "7", "--anneal", "100", "--optimizer", "rmsprop",
                         "--diagnostic-draws", "500", "--name", "es2", "--json")
        self.assertOk(r)
        job = json.loads(r.out)
        self.assertEqual(job["dim"], 4)
        o = job["options"]
        self.assertEqual((o["iterations"], o["batch_size"], o["learning_rate"], o["seed"],
                          o["anneal_iterations"], o["optimizer"]),
                         ("500", 20, 0.01, "7", "100", "OPTIMIZER_RMSPROP"))
        r = self.run_cli("model", "es2")
        self.assertOk(r)
        self.assertIn("eight_schools(centered=false,schools=2)", r.out)
        self.assertIn("eta1", r.out)

    def test_fit_model_program_with_data(self):
        with open(self.path("scale.stan"), "w") as f:
            f.write("data { int n; vector[n] y; }\n"
                    "parameters { real mu; real<lower=0> sigma; }\n"
                    "model { mu ~ normal(0, 10); sigma ~ lognormal(0, 1);"
                    " y ~ normal(mu, sigma); }\n")
        with open(self.path("scale.json"), "w") as f:
            f.write('{"n": 4, "y": [0.3, 1.9, 1.1, 0.7]}')
        r = self.run_cli("fit", "--model", self.path("scale.stan"), "--data",
                         self.path("scale.json"), "planar*2", "--iters", "800", "-q")
        self.assertOk(r)
        self.assertEqual(r.out, "scale/1\n")  # named after the file
        r = self.run_cli("model", "scale", "--json")
        self.assertOk(r)
        model = json.loads(r.out)
        with open(self.path("scale.stan")) as f:
            self.assertEqual(model["target"]["program"]["source"], f.read())
        self.assertEqual(model["target"]["program"]["data_json"],
                         '{"n": 4, "y": [0.3, 1.9, 1.1, 0.7]}')
        self.assertEqual(model["diagnostics"]["coordinate_names"], ["mu", "sigma"])
        r = self.run_cli("sample", "scale", "-n", "200")
        self.assertOk(r)
        header, rows = self.read_csv(r.out)
        self.assertEqual(header, ["mu", "sigma", "log_q"])
        self.assertTrue(all(row[1] > 0 for row in rows))
        # Errors: a compile error names the line (exit 5); a missing file is bad input (exit 6);
        # --data without --model and a target with --model are usage errors (exit 2).
        with open(self.path("broken.stan"), "w") as f:
            f.write("parameters { real mu }\nmodel { }\n")
        self.assertFails(self.run_cli("fit", "--model", self.path("broken.stan"), "planar"), 5,
                         "1:")
        self.assertFails(self.run_cli("fit", "--model", self.path("nope.stan"), "planar"), 6,
                         "nope.stan")
        self.assertFails(self.run_cli("fit", "u1", "planar", "--data", self.path("scale.json")),
                         2, "--model")
        self.assertFails(self.run_cli("fit", "u1", "planar", "--model", self.path("scale.stan")),
                         2, "FLOW")

    def test_fit_expression(self):
        r = self.run_cli("fit", "--expr", "-0.5*(z1^2 + square(2*z2 - z1^2))", "planar*2",
                         "--iters", "500", "--name", "ex", "-q")
        self.assertOk(r)
        self.assertEqual(r.out, "ex/1\n")
        r = self.run_cli("model", "ex")
        self.assertOk(r)
        self.assertIn("expression '-0.5*(z1^2 + square(2*z2 - z1^2))'", r.out)
        self.assertFails(self.run_cli("fit", "--expr", "z1 +", "planar"), 5, "expression")

    def test_fit_data_points_csv_then_sample_and_logpdf(self):
        # 2-D Gaussian points (Python's own RNG), mean (2, -1), sd (1.5, 0.5), correlated.
        rng = random.Random(5)
        rows = []
        for _ in range(600):
            e0, e1 = rng.gauss(0, 1), rng.gauss(0, 1)
            rows.append((2 + 1.5 * e0, -1 + 0.3 * e0 + 0.4 * e1))
        with open(self.path("pts2.csv"), "w") as f:
            f.write("a,b\n" + "".join(f"{x!r},{y!r}\n" for x, y in rows))
        r = self.run_cli("fit", "--data", "pts2.csv", "realnvp*2", "--iters", "400", "--batch",
                         "64", "--lr", "0.005", "--validation", "0.2", "--patience", "50")
        self.assertOk(r)
        self.assertIn("succeeded: model pts2/1 (data (600 points x 2)", r.out)
        self.assertIn("train LL", r.out)
        self.assertIn("held-out LL", r.out)
        self.assertIn("train LL", r.err)  # the progress lines
        r = self.run_cli("model", "pts2", "--json")
        self.assertOk(r)
        fit = json.loads(r.out)["density_fit"]
        self.assertEqual(int(fit["train_points"]) + int(fit["held_out_points"]), 600)
        self.assertEqual(int(fit["held_out_points"]), 120)
        self.assertAlmostEqual(fit["mean"][0], 2.0, delta=0.3)
        self.assertNotIn("diagnostics", json.loads(r.out))  # they do not apply to data
        r = self.run_cli("model", "pts2")
        self.assertOk(r)
        self.assertIn("held-out LL", r.out)
        self.assertIn("standardization", r.out)
        self.assertRegex(r.out, r"\n  a  mean [\d.]+  sd [\d.]+\n  b  mean -[\d.]+  sd [\d.]+\n")
        self.assertNotIn("ESS", r.out)
        # Samples in the data's units, with the data's column names; logpdf agrees with log_q.
        r = self.run_cli("sample", "pts2", "-n", "300", "--seed", "3", "-o", "draws.csv")
        self.assertOk(r)
        with open(self.path("draws.csv")) as f:
            header, draws = self.read_csv(f.read())
        self.assertEqual(header, ["a", "b", "log_q"])
        self.assertAlmostEqual(sum(d[0] for d in draws) / 300, 2.0, delta=0.4)
        r = self.run_cli("logpdf", "pts2", "--points", "draws.csv")
        self.assertOk(r)
        _, got = self.read_csv(r.out)
        for d, (lq,) in zip(draws, got):
            self.assertAlmostEqual(lq, d[2], delta=1e-6 * max(1.0, abs(d[2])))
        # A NaN in the points file is bad input (6); a ragged .npy-free CSV too.
        with open(self.path("nan.csv"), "w") as f:
            f.write("1,2\n3,nan\n")
        self.assertFails(self.run_cli("fit", "--data", "nan.csv", "realnvp"), 6, "nan.csv")
        # One column with a coupling layer: the server says why (5).
        with open(self.path("one.csv"), "w") as f:
            f.write("".join(f"{rng.gauss(0, 1)!r}\n" for _ in range(50)))
        self.assertFails(self.run_cli("fit", "--data", "one.csv", "realnvp"), 5)

    def test_fit_data_large_file_is_streamed(self):
        # 80,000 x 2 values (1.25 MiB): more than one 1 MiB chunk.
        rng = random.Random(9)
        with open(self.path("big.csv"), "w") as f:
            for _ in range(80000):
                f.write(f"{rng.gauss(0, 1)!r},{rng.gauss(1, 2)!r}\n")
        r = self.run_cli("fit", "--data", "big.csv", "realnvp*2", "--iters", "50", "-q",
                         "--eval-interval", "25")
        self.assertOk(r)
        self.assertEqual(r.out, "big/1\n")
        r = self.run_cli("model", "big", "--json")
        self.assertOk(r)
        self.assertEqual(int(json.loads(r.out)["target"]["data"]["num_points"]), 80000)

    def test_detach_watch_jobs(self):
        job = self.fit_detached("circle", "planar*2", "--iters", "2000", "--name", "circ")
        r = self.run_cli("watch", job)
        self.assertOk(r)
        self.assertIn(f"{job} succeeded: model circ/1", r.out)
        self.assertIn("k̂", r.out)
        # Watching a finished job again replays it.
        r = self.run_cli("watch", job, "-q")
        self.assertOk(r)
        self.assertEqual(r.out, "circ/1\n")
        r = self.run_cli("jobs")
        self.assertOk(r)
        self.assertRegex(r.out, rf"(?m)^{job}\s+succeeded\s+circ/1\s+circle\s+planar\*2\s+100%")
        r = self.run_cli("jobs", "--state", "succeeded", "--json")
        self.assertOk(r)
        jobs = json.loads(r.out)["jobs"]
        self.assertTrue(all(j["state"] == "JOB_STATE_SUCCEEDED" for j in jobs))
        self.assertIn(job, [j["id"] for j in jobs])
        self.assertFails(self.run_cli("jobs", "--state", "done"), 2, "--state")
        self.assertFails(self.run_cli("watch", "job-999999"), 4, "job-999999")

    def test_cancel(self):
        job = self.fit_detached("u1", "planar*8", "--iters", "5000000", "--name", "long")
        self.wait_running(job)
        r = self.run_cli("cancel", job)
        self.assertOk(r)
        self.assertEqual(r.out, f"{job} cancelled\n")
        # A cancelled job: watch says so with exit code 7.
        self.assertFails(self.run_cli("watch", job), 7, job, "cancelled", progress=True)
        # Cancelling again: it has ended.
        self.assertFails(self.run_cli("cancel", job), 1, "already ended")
        self.assertFails(self.run_cli("cancel", "job-999999"), 4, "job-999999")

    def test_failed_job_exit_7(self):
        # A learning rate this large makes the fit diverge: the job fails with the reason.
        r = self.run_cli("fit", "funnel", "planar*2", "--iters", "3000", "--lr", "1e6",
                         "--name", "diverge")
        self.assertFails(r, 7, "failed", "diverged", progress=True)

    def _interrupt(self, *extra):
        proc = subprocess.Popen(
            [ARGS.flowvi, "fit", "u1", "planar*8", "--iters", "5000000", "--name", "intr",
             *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("FLOWVI_")},
                 "FLOWVI_SERVER": self.server.address})
        try:
            first = proc.stderr.readline().decode()
            m = re.match(r"^(job-\d+): ", first)
            self.assertIsNotNone(m, first)
            job = m.group(1)
            self.wait_running(job)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return job, proc.returncode, out.decode(), err.decode()

    def test_ctrl_c_leaves_the_job_running(self):
        job, code, _, err = self._interrupt()
        try:
            self.assertEqual(code, 130, err)
            last = err.strip().splitlines()[-1]
            self.assertTrue(last.startswith("flowvi: stopped watching"), err)
            self.assertIn(f"flowvi watch {job}", last)
            self.assertIn(f"flowvi cancel {job}", last)
            self.assertEqual(self.job(job)["state"], "JOB_STATE_RUNNING")
        finally:
            self.run_cli("cancel", job)

    def test_ctrl_c_with_cancel_on_interrupt(self):
        job, code, _, err = self._interrupt("--cancel-on-interrupt")
        self.assertEqual(code, 130, err)
        self.assertIn(f"{job} cancelled", err.strip().splitlines()[-1])
        self.assertEqual(self.job(job)["state"], "JOB_STATE_CANCELLED")

    # -- models --------------------------------------------------------------------------------

    def test_models_model_alias_rm(self):
        self.assertOk(self.run_cli("fit", "banana", "planar*2", "--iters", "500", "--name",
                                   "reg", "-q"))
        self.assertOk(self.run_cli("fit", "banana", "planar*2", "--iters", "500", "--name",
                                   "reg", "-q", "--seed", "3"))
        r = self.run_cli("models")
        self.assertOk(r)
        self.assertRegex(r.out, r"(?m)^reg/2\s+1,2\s+-\s+banana\s+planar\*2")
        r = self.run_cli("models", "--json")
        self.assertOk(r)
        reg = [m for m in json.loads(r.out)["models"] if m["name"] == "reg"][0]
        self.assertEqual(reg["versions"], ["1", "2"])
        r = self.run_cli("model", "reg/1")
        self.assertOk(r)
        for phrase in ("reg/1", "banana", "planar*2", "500 iterations", "ELBO", "k̂", "ESS",
                       "log Ẑ", "coordinates"):
            self.assertIn(phrase, r.out)
        r = self.run_cli("model", "reg", "--json")
        self.assertOk(r)
        m = json.loads(r.out)
        self.assertEqual((m["name"], m["version"]), ("reg", "2"))
        self.assertEqual(m.get("parameters", []), [])
        r = self.run_cli("model", "reg", "--json", "--parameters")
        self.assertOk(r)
        self.assertEqual(len(json.loads(r.out)["parameters"]), int(m["num_params"]))
        # Aliases.
        r = self.run_cli("alias", "reg/1", "prod")
        self.assertOk(r)
        self.assertEqual(r.out, "reg@prod -> reg/1\n")
        r = self.run_cli("model", "reg@prod", "--json")
        self.assertEqual(json.loads(r.out)["version"], "1")
        self.assertOk(self.run_cli("sample", "reg@prod", "-n", "3"))
        self.assertFails(self.run_cli("alias", "reg/1", "9bad!"), 5)
        # Deleting.
        r = self.run_cli("rm", "reg/1")
        self.assertOk(r)
        self.assertEqual(r.out, "deleted reg/1\n")
        self.assertFails(self.run_cli("model", "reg/1"), 4, "reg")
        self.assertFails(self.run_cli("model", "reg@prod"), 4)
        r = self.run_cli("rm", "reg")
        self.assertOk(r)
        self.assertEqual(r.out, "deleted reg/2\n")
        self.assertFails(self.run_cli("model", "reg"), 4, "reg")
        self.assertFails(self.run_cli("rm", "reg"), 4)

    # -- samples and log-densities ---------------------------------------------------------------

    def read_csv(self, text):
        lines = text.strip("\n").split("\n")
        return lines[0].split(","), [[float(v) for v in line.split(",")] for line in lines[1:]]

    def test_sample_csv_jsonl_npy_agree(self):
        r = self.run_cli("sample", "u1m", "-n", "300", "--seed", "5")
        self.assertOk(r)
        header, rows = self.read_csv(r.out)
        self.assertEqual(header, ["z1", "z2", "log_q"])
        self.assertEqual(len(rows), 300)
        self.assertTrue(all(len(row) == 3 for row in rows))
        # Same seed, same draws; another seed, others.
        self.assertEqual(self.run_cli("sample", "u1m", "-n", "300", "--seed", "5").out, r.out)
        self.assertNotEqual(self.run_cli("sample", "u1m", "-n", "300", "--seed", "6").out, r.out)
        # JSON lines.
        r = self.run_cli("sample", "u1m", "-n", "300", "--seed", "5", "--format", "jsonl")
        self.assertOk(r)
        records = [json.loads(line) for line in r.out.splitlines()]
        self.assertEqual(len(records), 300)
        self.assertEqual([rec["z"] + [rec["log_q"]] for rec in records], rows)
        r = self.run_cli("sample", "u1m", "-n", "2", "--json")
        self.assertOk(r)
        self.assertEqual(len([json.loads(x) for x in r.out.splitlines()]), 2)
        # .npy by extension, and to standard output with --format.
        r = self.run_cli("sample", "u1m", "-n", "300", "--seed", "5", "-o", "s.npy")
        self.assertOk(r)
        self.assertIn("wrote 300 draws of u1m/1 to s.npy", r.err)
        with open(self.path("s.npy"), "rb") as f:
            shape, values = read_npy(f.read())
        self.assertEqual(shape, (300, 3))
        self.assertEqual([values[3 * i:3 * i + 3] for i in range(300)], rows)
        r = self.run_cli("sample", "u1m", "-n", "300", "--seed", "5", "--format", "npy",
                         binary=True)
        self.assertOk(r)
        self.assertEqual(read_npy(r.out), (shape, values))
        # CSV file output.
        self.assertOk(self.run_cli("sample", "u1m", "-n", "300", "--seed", "5", "-o", "s.csv"))
        with open(self.path("s.csv")) as f:
            self.assertEqual(self.read_csv(f.read())[1], rows)

    def test_sample_coordinate_names(self):
        r = self.run_cli("sample", "es", "-n", "4")
        self.assertOk(r)
        header, rows = self.read_csv(r.out)
        self.assertEqual(header, [f"theta{i}" for i in range(1, 9)] + ["mu", "log_tau", "log_q"])
        self.assertEqual(len(rows), 4)
        self.assertFails(self.run_cli("sample", "es", "-n", "0"), 2, "-n")

    def test_logpdf_matches_sample_log_q(self):
        r = self.run_cli("sample", "u1m", "-n", "500", "--seed", "11", "-o", "pts.csv")
        self.assertOk(r)
        with open(self.path("pts.csv")) as f:
            _, rows = self.read_csv(f.read())
        # Points with the log_q column (as sample writes them).
        r = self.run_cli("logpdf", "u1m", "--points", "pts.csv")
        self.assertOk(r)
        header, got = self.read_csv(r.out)
        self.assertEqual(header, ["log_q"])
        self.assertEqual(len(got), 500)
        for row, (lq,) in zip(rows, got):
            self.assertAlmostEqual(lq, row[2], delta=1e-6 * max(1.0, abs(row[2])))
        # Only the coordinates, without a header, from standard input.
        stdin = "\n".join(f"{a!r},{b!r}" for a, b, _ in rows).encode()
        r = self.run_cli("logpdf", "u1m", "--points", "-", stdin=stdin)
        self.assertOk(r)
        self.assertEqual(self.read_csv(r.out)[1], got)
        # .npy in, .npy and JSON lines out.
        self.assertOk(self.run_cli("sample", "u1m", "-n", "500", "--seed", "11", "-o", "pts.npy"))
        r = self.run_cli("logpdf", "u1m", "--points", "pts.npy", "-o", "lq.npy")
        self.assertOk(r)
        with open(self.path("lq.npy"), "rb") as f:
            shape, values = read_npy(f.read())
        self.assertEqual(shape, (500,))
        self.assertEqual(values, [g[0] for g in got])
        r = self.run_cli("logpdf", "u1m", "--points", "pts.npy", "--json")
        self.assertOk(r)
        self.assertEqual([json.loads(x)["log_q"] for x in r.out.splitlines()],
                         [g[0] for g in got])
        # Piped straight from sample.
        sample = self.run_cli("sample", "u1m", "-n", "50", binary=True)
        r = self.run_cli("logpdf", "u1m", "--points", "-", stdin=sample.out)
        self.assertOk(r)
        self.assertEqual(len(self.read_csv(r.out)[1]), 50)

    def test_bad_input_files_exit_6(self):
        def write(name, text):
            with open(self.path(name), "w") as f:
                f.write(text)
        write("cols.csv", "1,2\n3,4,5\n")
        self.assertFails(self.run_cli("logpdf", "u1m", "--points", "cols.csv"), 6,
                         "cols.csv line 2", "3 columns, expected 2")
        write("three.csv", "1,2,3\n4,5,6\n")
        self.assertFails(self.run_cli("logpdf", "u1m", "--points", "three.csv"), 6,
                         "3 columns", "dimension 2")
        write("word.csv", "x,y\n1,2\n3,four\n")
        self.assertFails(self.run_cli("logpdf", "u1m", "--points", "word.csv"), 6,
                         "word.csv line 3 column 2", "'four' is not a number")
        write("nan.csv", "1,2\nnan,4\n")
        self.assertFails(self.run_cli("logpdf", "u1m", "--points", "nan.csv"), 6,
                         "nan.csv line 2 column 1", "not a finite number")
        write("empty.csv", "")
        self.assertFails(self.run_cli("logpdf", "u1m", "--points", "empty.csv"), 6, "no rows")
        self.assertFails(self.run_cli("logpdf", "u1m", "--points", "missing.csv"), 6,
                         "cannot open missing.csv")
        with open(self.path("broken.npy"), "wb") as f:
            f.write(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'")
        self.assertFails(self.run_cli("logpdf", "u1m", "--points", "broken.npy"), 6, "broken.npy")
        self.assertFails(self.run_cli("logpdf", "u1m"), 2, "--points")

    # -- errors --------------------------------------------------------------------------------

    def test_server_unreachable_exit_3(self):
        for args in (["models"], ["health"], ["fit", "u1", "planar"], ["sample", "x", "-n", "1"],
                     ["watch", "job-000001"]):
            r = self.run_cli("--server", "127.0.0.1:1", *args, env_server=False)
            self.assertFails(r, 3, "cannot reach the flowvi server at 127.0.0.1:1")
        env_r = self.run_cli("jobs", "--server", "127.0.0.1:1", "--timeout", "5",
                             env_server=False)
        self.assertFails(env_r, 3)

    def test_unknown_model_exit_4(self):
        for args in (["model", "nope"], ["sample", "nope", "-n", "1"],
                     ["logpdf", "nope", "--points", "-"], ["plot", "nope", "-o", "n.png"],
                     ["rm", "nope"], ["alias", "nope", "prod"], ["model", "u1m/99"]):
            self.assertFails(self.run_cli(*args, stdin=b"1,2\n"), 4, "nope" if "nope" in args
                             else "u1m")

    def test_invalid_requests_exit_5(self):
        self.assertFails(self.run_cli("fit", "u1", "planarr*2"), 5, "planarr")
        self.assertFails(self.run_cli("fit", "u1", "planar*2", "--name", "bad name!"), 5,
                         "model_name")
        self.assertFails(self.run_cli("fit", "nosuchtarget", "planar"), 5, "nosuchtarget")
        self.assertFails(self.run_cli("fit", "u1", "planar", "--param", "x=1"), 5, "x")
        self.assertFails(self.run_cli("fit", "u1", "planar", "--batch", "0"), 5)

    # -- plots ---------------------------------------------------------------------------------

    def check_png(self, name, width, height):
        with open(self.path(name), "rb") as f:
            w, h, channels, rows = decode_png(f.read())
        self.assertEqual((w, h), (width, height))
        variance, colours, dark = pixel_stats(rows, channels)
        self.assertGreater(variance, 0)
        self.assertGreater(colours, 20)  # a colour map, not two-tone
        self.assertGreater(dark, 0.001)  # densities drawn, not just a frame
        return rows, channels

    def test_plot_2d(self):
        r = self.run_cli("plot", "u1m", "-o", "u1.png", "--size", "900x320", "--range=-4:4")
        self.assertOk(r)
        self.assertIn("wrote u1.png (900x320)", r.err)
        self.check_png("u1.png", 900, 320)
        # Default size: three panels of 320 plus the title band.
        self.assertOk(self.run_cli("plot", "u1m", "-o", "u1d.png", "--no-trace", "--grid", "50"))
        with open(self.path("u1d.png"), "rb") as f:
            w, h, _, _ = decode_png(f.read())
        self.assertEqual((w, h), (640, 356))

    def test_plot_pairs_for_more_dimensions(self):
        r = self.run_cli("plot", "es", "-o", "es.png", "--pairs", "theta1:log_tau,1:9",
                         "--draws", "5000", "--size", "960x330")
        self.assertOk(r)
        self.check_png("es.png", 960, 330)
        self.assertFails(self.run_cli("plot", "es", "-o", "x.png", "--pairs", "theta1:tau"), 2,
                         "'tau' is not a coordinate")
        self.assertFails(self.run_cli("plot", "es", "-o", "x.png", "--pairs", "1:11"), 2,
                         "coordinate 11")

    def test_plot_1d(self):
        self.assertOk(self.run_cli("fit", "two_hills", "planar*2", "--iters", "1000", "-q"))
        self.assertOk(self.run_cli("plot", "two_hills", "-o", "th.png", "--size", "640x320"))
        self.check_png("th.png", 640, 320)

    def test_figure_grid(self):
        self.assertOk(self.run_cli("fit", "u2", "planar*2", "--iters", "1000", "--name",
                                   "fig-u2", "-q"))
        r = self.run_cli("figure", "u1m", "fig-u2", "u1m", "-o", "fig.png", "--grid", "60")
        self.assertOk(r)
        # Two rows (u1, u2), three columns (target + two u1 models): 240 px cells + title.
        self.assertIn("wrote fig.png (720x516)", r.err)
        self.check_png("fig.png", 720, 516)
        self.assertFails(self.run_cli("figure", "es", "-o", "x.png"), 2, "2-D")


def main():
    global ARGS
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--flowvi", default=os.environ.get("FLOWVI_CLI_BINARY"))
    parser.add_argument("--server", default=os.environ.get("FLOWVI_SERVER_BINARY"))
    ARGS, rest = parser.parse_known_args()
    if not ARGS.flowvi or not ARGS.server:
        sys.exit("usage: cli_test.py --flowvi PATH --server PATH [unittest args]")
    ARGS.flowvi = os.path.abspath(ARGS.flowvi)
    ARGS.server = os.path.abspath(ARGS.server)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
