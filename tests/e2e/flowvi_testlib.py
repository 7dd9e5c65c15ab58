"""Shared helpers of flowvi's end-to-end tests (stdlib + grpc only).

- parse_args(): the --server / --proto-dir / --promtool options CMake passes; everything else
  goes to unittest.
- generate_stubs(proto_dir): compiles proto/flowvi/v1/*.proto to Python in a temporary
  directory and imports them (nothing generated is kept).
- ServerProcess: runs flowvi-server on 127.0.0.1:0 with metrics on 127.0.0.1:0 and a temporary
  data directory (or a given one, to restart on the same data), parses the ports from its first
  stdout line, and always stops it; kill9() / wait_exit() for crash tests.
- run_server_expecting_exit(): runs flowvi-server where it should refuse to start.
- generate_storage_stubs() / read_record_file(): read the server's on-disk records
  (proto/flowvi/storage/v1) in crash tests.
- parse_prometheus_text / scrape_metrics: a small reader of the Prometheus text format.
"""

import argparse
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

# The options the tests were given; filled by parse_args().
ARGS = None


def parse_args(extra=None):
    """Parses our options from sys.argv and leaves the rest for unittest.main(argv=...)."""
    global ARGS
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--server", default=os.environ.get("FLOWVI_SERVER_BINARY"),
                        help="path to flowvi-server")
    parser.add_argument("--proto-dir", default=os.environ.get("FLOWVI_PROTO_DIR"),
                        help="the repository's proto/ directory")
    parser.add_argument("--promtool", default=os.environ.get("FLOWVI_PROMTOOL", "promtool"),
                        help="promtool binary (Debian package prometheus)")
    if extra is not None:
        extra(parser)
    args, rest = parser.parse_known_args()
    missing = [f"--{n.replace('_', '-')}" for n in ("server", "proto_dir")
               if not getattr(args, n)]
    if missing:
        sys.exit(f"{sys.argv[0]}: missing {', '.join(missing)} (or FLOWVI_SERVER_BINARY / "
                 "FLOWVI_PROTO_DIR)")
    args.server = os.path.abspath(args.server)
    args.proto_dir = os.path.abspath(args.proto_dir)
    ARGS = args
    return args, [sys.argv[0]] + rest


# --------------------------------------------------------------------------------------------
# Stubs


class Stubs:
    """The generated modules: types_pb2, service_pb2, service_pb2_grpc."""

    def __init__(self, types_pb2, service_pb2, service_pb2_grpc, generator):
        self.types_pb2 = types_pb2
        self.service_pb2 = service_pb2
        self.service_pb2_grpc = service_pb2_grpc
        self.generator = generator  # which compiler produced them, for the log


_STUBS = None
_STUBS_DIR = None

_PROTOS = ["flowvi/v1/types.proto", "flowvi/v1/service.proto"]


def _protoc_commands(proto_dir, out):
    """Candidate compiler invocations, best first.

    Debian bookworm's python3-grpc-tools (1.14.1) bundles libprotoc 3.5.1, which rejects
    proto3 `optional` fields (types.proto uses them). So the system protoc (3.21, the same
    release as python3-protobuf's runtime) with grpc_python_plugin (protobuf-compiler-grpc)
    comes first; `python3 -m grpc_tools.protoc` is the fallback for systems where it is recent.
    """
    cmds = []
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if protoc and plugin:
        cmds.append(("protoc + grpc_python_plugin",
                     [protoc, f"--plugin=protoc-gen-grpc_python={plugin}", f"-I{proto_dir}",
                      f"--python_out={out}", f"--grpc_python_out={out}"] + _PROTOS))
    cmds.append(("grpc_tools.protoc",
                 [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}",
                  f"--python_out={out}", f"--grpc_python_out={out}"] + _PROTOS))
    return cmds


def generate_stubs(proto_dir):
    """Compiles the API to Python into a temporary directory and imports it (once)."""
    global _STUBS, _STUBS_DIR
    if _STUBS is not None:
        return _STUBS
    out = tempfile.mkdtemp(prefix="flowvi-stubs-")
    _STUBS_DIR = out
    errors = []
    used = None
    for name, cmd in _protoc_commands(proto_dir, out):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            used = name
            break
        errors.append(f"{name} (exit {r.returncode}): {r.stderr.strip()[:2000]}")
    if used is None:
        raise RuntimeError("cannot compile the protos to Python:\n" + "\n".join(errors))
    sys.path.insert(0, out)
    importlib.invalidate_caches()
    types_pb2 = importlib.import_module("flowvi.v1.types_pb2")
    service_pb2 = importlib.import_module("flowvi.v1.service_pb2")
    service_pb2_grpc = importlib.import_module("flowvi.v1.service_pb2_grpc")
    _STUBS = Stubs(types_pb2, service_pb2, service_pb2_grpc, used)
    return _STUBS


def generate_storage_stubs(proto_dir):
    """Also compiles flowvi/storage/v1/records.proto (the data directory's records, not part of
    the API) next to the API stubs; returns the records_pb2 module."""
    generate_stubs(proto_dir)
    cmd = None
    protoc = shutil.which("protoc")
    if protoc:
        cmd = [protoc, f"-I{proto_dir}", f"--python_out={_STUBS_DIR}",
               "flowvi/storage/v1/records.proto"]
    else:
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}",
               f"--python_out={_STUBS_DIR}", "flowvi/storage/v1/records.proto"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"cannot compile records.proto: {r.stderr.strip()[:2000]}")
    importlib.invalidate_caches()
    return importlib.import_module("flowvi.storage.v1.records_pb2")


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (0x82F63B78 ^ (c >> 1)) if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = None


def crc32c(data):
    global _CRC32C_TABLE
    if _CRC32C_TABLE is None:
        _CRC32C_TABLE = _crc32c_table()
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


RECORD_HEADER_SIZE = 20  # "FVR1" | u32 version | u64 length | u32 CRC-32C (server/record_file.h)


def read_record_file(path, message):
    """Parses one of the server's record files into `message` (checking length and CRC-32C);
    returns it. Raises ValueError for a damaged file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < RECORD_HEADER_SIZE or data[:4] != b"FVR1":
        raise ValueError(f"{path}: not a record file")
    length = int.from_bytes(data[8:16], "little")
    crc = int.from_bytes(data[16:20], "little")
    payload = data[RECORD_HEADER_SIZE:]
    if len(payload) != length or crc32c(payload) != crc:
        raise ValueError(f"{path}: damaged record file")
    message.ParseFromString(payload)
    return message


def remove_stubs():
    if _STUBS_DIR is not None:
        shutil.rmtree(_STUBS_DIR, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The server process

_LISTEN_RE = re.compile(
    r"^flowvi-server listening on (?P<host>[^\s,]+):(?P<port>\d+)"
    r"(?:, metrics on port (?P<mport>\d+))?\s*$")


class ServerProcess:
    """flowvi-server on loopback ephemeral ports with a temporary data directory.

    Use start(), then stop() (idempotent; SIGTERM, then SIGKILL after a timeout). Register
    stop() as a cleanup right after constructing it so it runs whatever happens.
    """

    def __init__(self, binary, extra_flags=(), data_dir=None, env=None, create_data_dir=True):
        """data_dir: use this directory (kept by cleanup(): the caller owns it, e.g. to restart
        on it) instead of a fresh temporary one. env: extra environment variables (e.g.
        FLOWVI_CRASH_AT). create_data_dir=False lets the server create a missing directory."""
        self.binary = binary
        self.extra_flags = list(extra_flags)
        self.extra_env = dict(env or {})
        self.create_data_dir = create_data_dir
        # Exit codes cleanup() does not report as failures (kill9() adds -9).
        self.expected_returncodes = {0, None}
        self.proc = None
        self.port = None
        self.metrics_port = None
        self.first_line = None
        self.returncode = None
        self.stop_seconds = None
        self.killed = False
        self._tmp = tempfile.mkdtemp(prefix="flowvi-e2e-")
        self.data_dir = data_dir if data_dir is not None else os.path.join(self._tmp, "data")
        self._stderr_path = os.path.join(self._tmp, "stderr.log")
        self._stderr = None
        self._stdout_rest = []
        self._stdout_thread = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=STARTUP_TIMEOUT_S):
        if self.create_data_dir:
            os.makedirs(self.data_dir, exist_ok=True)
        self._stderr = open(self._stderr_path, "wb")
        cmd = [self.binary, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
               f"--data_dir={self.data_dir}"] + self.extra_flags
        # The server reads FLOWVI_* variables for flags not on the command line: keep the
        # caller's environment from changing what we test.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWVI_")}
        env.update(self.extra_env)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env)
        line = self._read_first_line(timeout)
        self.first_line = line
        m = _LISTEN_RE.match(line)
        if m is None:
            self.stop()
            raise RuntimeError(f"unexpected first line from flowvi-server: {line!r}\n"
                               f"stderr:\n{self.stderr_text()}")
        self.port = int(m.group("port"))
        self.metrics_port = int(m.group("mport")) if m.group("mport") else None
        # Keep draining stdout so the server can never block on a full pipe.
        self._stdout_thread = threading.Thread(target=self._drain, daemon=True)
        self._stdout_thread.start()
        return self

    def _read_first_line(self, timeout):
        box = {}

        def read():
            box["line"] = self.proc.stdout.readline()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive() or not box.get("line"):
            rc = self.proc.poll()
            self.stop()
            why = "timed out" if rc is None else f"exited with {rc}"
            raise RuntimeError(f"flowvi-server {why} before printing its address\n"
                               f"command: {self.proc.args}\nstderr:\n{self.stderr_text()}")
        return box["line"].decode("utf-8", "replace").rstrip("\n")

    def _drain(self):
        try:
            for line in self.proc.stdout:
                self._stdout_rest.append(line)
        except (OSError, ValueError):
            pass

    def stderr_text(self):
        try:
            with open(self._stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code (negative for a
        signal, as subprocess reports it). Idempotent."""
        if self.proc is None:
            return None
        if self.returncode is None:
            start = time.monotonic()
            if self.proc.poll() is None:
                try:
                    self.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.killed = True
                    self.proc.kill()
                    self.proc.wait(10)
            self.stop_seconds = time.monotonic() - start
            self._finish()
        return self.returncode

    def _finish(self):
        self.returncode = self.proc.returncode
        if self._stdout_thread is not None:
            self._stdout_thread.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()

    def kill9(self):
        """SIGKILL (kill -9) at once, as a crash would; returns the exit code (-9)."""
        if self.proc is None or self.returncode is not None:
            return self.returncode
        self.expected_returncodes.add(-signal.SIGKILL)
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._finish()
        return self.returncode

    def wait_exit(self, timeout):
        """Waits for the server to exit by itself (e.g. a FLOWVI_CRASH_AT crash); returns its
        exit code, or None if it is still running after `timeout` (it is left running)."""
        if self.proc is None:
            return None
        if self.returncode is None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
            self._finish()
        return self.returncode

    def cleanup(self):
        """stop() and remove the temporary directory (stderr is echoed first when the server
        did not exit cleanly, so failures are debuggable)."""
        self.stop()
        if self.returncode not in self.expected_returncodes or self.killed:
            sys.stderr.write(f"--- flowvi-server exited with {self.returncode}"
                             f"{' (killed after SIGTERM timed out)' if self.killed else ''}; "
                             f"its stderr:\n{self.stderr_text()}\n---\n")
        shutil.rmtree(self._tmp, ignore_errors=True)


def run_server_expecting_exit(binary, data_dir, extra_flags=(), env=None, timeout=20.0):
    """Runs flowvi-server on `data_dir` where it should refuse to start. Returns
    (returncode, stdout, stderr); if it did not exit within `timeout` (it started after all),
    it is killed and the returncode is None."""
    cmd = [binary, "--listen=127.0.0.1:0", "--metrics-listen=", f"--data_dir={data_dir}"]
    cmd += list(extra_flags)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWVI_")}
    full_env.update(env or {})
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=full_env)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        rc = None
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def channel_options():
    # Loopback only: never route through an http(s)_proxy from the environment.
    return [("grpc.enable_http_proxy", 0)]


def connect(server, stubs, timeout=10.0):
    """A channel and FlowVI stub to a started ServerProcess (waits until it is ready)."""
    import grpc  # noqa: PLC0415 (imported late so a missing grpc is reported by the test)
    channel = grpc.insecure_channel(server.address, options=channel_options())
    grpc.channel_ready_future(channel).result(timeout=timeout)
    return channel, stubs.service_pb2_grpc.FlowVIStub(channel)


# --------------------------------------------------------------------------------------------
# Prometheus text format

_SAMPLE_RE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+"
                        r"(?P<value>\S+)(?:\s+\S+)?$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus_text(text):
    """{(name, frozenset(labels.items())): value} for every sample of a text exposition."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if m is None:
            raise ValueError(f"cannot parse metrics line: {line!r}")
        labels = {}
        if m.group("labels"):
            for k, v in _LABEL_RE.findall(m.group("labels")):
                labels[k] = v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        out[(m.group("name"), frozenset(labels.items()))] = float(m.group("value"))
    return out


def metric(samples, name, **labels):
    """The value of one series, 0 when it does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_metrics(port, timeout=10.0):
    """GET http://127.0.0.1:port/metrics (never through a proxy); returns (text, headers)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
        if r.status != 200:
            raise RuntimeError(f"/metrics answered HTTP {r.status}")
        return r.read().decode("utf-8"), dict(r.headers)
