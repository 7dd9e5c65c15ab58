#!/usr/bin/env python3
"""flowvi-server's security with the real binaries (issue #9): TLS and mutual TLS with
certificates made here by openssl, the loopback rule, tokens reloaded on SIGHUP, basic auth on
/metrics, --hash_token, and the CLI's --tls/--ca/--cert/--key/--token flags and exit codes.

    security_test.py --server build/server/flowvi-server --proto-dir proto \
        --flowvi build/client/flowvi [unittest options]

The role-by-RPC matrix and the malformed-request tests are in-process C++ tests
(tests/server/auth_test.cc, fuzz_requests_test.cc); this file covers what needs processes,
signals and real sockets.
"""

import base64
import hashlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flowvi_testlib as lib  # noqa: E402

import grpc  # noqa: E402

RPC_TIMEOUT_S = 10.0
RELOAD_TIMEOUT_S = 10.0
READER_TOKEN = "e2e-reader-7f3a"
ADMIN_TOKEN = "e2e-admin-91cc"


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN=flowvi test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_leaf(d, name, ca, usage):
    """A certificate for 127.0.0.1 / localhost signed by `ca`; usage serverAuth or clientAuth."""
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class SecurityTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pb = lib.generate_stubs(lib.ARGS.proto_dir)
        cls.addClassCleanup(lib.remove_stubs)
        cls.dir = tempfile.mkdtemp(prefix="flowvi-security-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        make_ca(cls.dir, "ca")
        make_ca(cls.dir, "rogue")
        make_leaf(cls.dir, "server", "ca", "serverAuth")
        make_leaf(cls.dir, "client", "ca", "clientAuth")
        make_leaf(cls.dir, "rogueclient", "rogue", "clientAuth")

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, *flags, env=None):
        server = lib.ServerProcess(lib.ARGS.server, flags, env=env)
        self.addCleanup(server.cleanup)
        server.start()
        return server

    def tls_flags(self, mutual=False):
        flags = [f"--tls_cert={self.path('server.pem')}", f"--tls_key={self.path('server.key')}"]
        if mutual:
            flags.append(f"--tls_client_ca={self.path('ca.pem')}")
        return flags

    def list_layers(self, channel, token=None):
        """ListLayers over `channel`; returns the grpc.StatusCode."""
        stub = self.pb.service_pb2_grpc.FlowVIStub(channel)
        metadata = [("authorization", f"Bearer {token}")] if token else None
        try:
            stub.ListLayers(self.pb.service_pb2.ListLayersRequest(), timeout=RPC_TIMEOUT_S,
                            metadata=metadata)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def secure_channel(self, server, ca="ca", cert=None):
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(self.path(f"{ca}.pem")),
            private_key=read(self.path(f"{cert}.key")) if cert else None,
            certificate_chain=read(self.path(f"{cert}.pem")) if cert else None)
        channel = grpc.secure_channel(server.address, creds, options=lib.channel_options())
        self.addCleanup(channel.close)
        return channel

    def insecure_channel(self, server):
        channel = grpc.insecure_channel(server.address, options=lib.channel_options())
        self.addCleanup(channel.close)
        return channel

    def write_tokens(self, lines):
        path = self.path("tokens")
        with open(path + ".tmp", "w") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(path + ".tmp", path)  # as an operator (or a secret mount) would
        return path

    # ---------------------------------------------------------------------------------------

    def test_tls_serves_clients_that_trust_its_ca_only(self):
        server = self.start(*self.tls_flags())
        self.assertEqual(self.list_layers(self.secure_channel(server)), grpc.StatusCode.OK)
        self.assertEqual(self.list_layers(self.secure_channel(server, ca="rogue")),
                         grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.list_layers(self.insecure_channel(server)),
                         grpc.StatusCode.UNAVAILABLE)

    def test_mutual_tls_refuses_clients_without_a_certificate_of_its_ca(self):
        server = self.start(*self.tls_flags(mutual=True))
        self.assertEqual(self.list_layers(self.secure_channel(server, cert="client")),
                         grpc.StatusCode.OK)
        self.assertEqual(self.list_layers(self.secure_channel(server)),
                         grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.list_layers(self.secure_channel(server, cert="rogueclient")),
                         grpc.StatusCode.UNAVAILABLE)

    def test_non_loopback_address_is_refused_without_tls_and_tokens(self):
        data = tempfile.mkdtemp(prefix="flowvi-security-data-")
        self.addCleanup(shutil.rmtree, data, True)
        rc, _, stderr = lib.run_server_expecting_exit(
            lib.ARGS.server, data, ["--listen=0.0.0.0:0", "--metrics-listen="])
        self.assertEqual(rc, 1, stderr)
        self.assertIn("refusing to serve gRPC on 0.0.0.0:0 without TLS", stderr)
        self.assertIn("--insecure", stderr)
        # With TLS but no tokens file: still refused.
        rc, _, stderr = lib.run_server_expecting_exit(
            lib.ARGS.server, data, ["--listen=0.0.0.0:0", "--metrics-listen="] +
            self.tls_flags())
        self.assertEqual(rc, 1, stderr)
        self.assertIn("without --tokens_file", stderr)
        # Metrics on every interface without basic auth: refused.
        rc, _, stderr = lib.run_server_expecting_exit(
            lib.ARGS.server, data, ["--metrics-listen=0.0.0.0:0"])
        self.assertEqual(rc, 1, stderr)
        self.assertIn("--metrics_auth_file", stderr)

    def test_insecure_from_the_environment_allows_it_with_warnings(self):
        # Tests bind to loopback only: the server runs in a network namespace of its own, where
        # "every interface" is a loopback interface that is down.
        if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
            self.skipTest("cannot make a network namespace here (unshare -n)")
        data = tempfile.mkdtemp(prefix="flowvi-security-data-")
        self.addCleanup(shutil.rmtree, data, True)
        env = dict(os.environ, FLOWVI_INSECURE="1")
        proc = subprocess.Popen(
            ["unshare", "-n", lib.ARGS.server, "--listen=0.0.0.0:0", "--metrics-listen=",
             f"--data_dir={data}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            first = proc.stdout.readline() if ready else ""
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=30)
        self.assertIn("listening on", first, stderr)
        self.assertIn("INSECURE: gRPC on 0.0.0.0:0 without TLS", stderr)
        self.assertIn("INSECURE: gRPC on 0.0.0.0:0 without --tokens_file", stderr)

    def test_tokens_are_reloaded_on_sighup_and_a_bad_file_keeps_the_old_ones(self):
        tokens = self.write_tokens([f"rita reader {sha256_hex(READER_TOKEN)}",
                                    f"ada admin {sha256_hex(ADMIN_TOKEN)}"])
        server = self.start(f"--tokens_file={tokens}")
        channel = self.insecure_channel(server)
        self.assertEqual(self.list_layers(channel), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.list_layers(channel, READER_TOKEN), grpc.StatusCode.OK)

        self.write_tokens([f"ada admin {sha256_hex(ADMIN_TOKEN)}"])
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while (self.list_layers(channel, READER_TOKEN) != grpc.StatusCode.UNAUTHENTICATED
               and time.monotonic() < deadline):
            time.sleep(0.05)
        self.assertEqual(self.list_layers(channel, READER_TOKEN),
                         grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.list_layers(channel, ADMIN_TOKEN), grpc.StatusCode.OK)
        self.assertIn("tokens file reloaded, 1 tokens", server.stderr_text())

        # A broken file (a clear token where the digest goes): the admin keeps working.
        self.write_tokens([f"ada admin {ADMIN_TOKEN}"])
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while "tokens not reloaded" not in server.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        stderr = server.stderr_text()
        self.assertIn("tokens not reloaded, the previous ones stay", stderr)
        self.assertIn("line 1", stderr)
        self.assertEqual(self.list_layers(channel, ADMIN_TOKEN), grpc.StatusCode.OK)
        self.assertTrue(server.running())
        for secret in (READER_TOKEN, ADMIN_TOKEN):
            self.assertNotIn(secret, stderr)

    def test_metrics_require_basic_auth_when_configured(self):
        auth = self.path("metrics-auth")
        with open(auth, "w") as f:
            f.write(f"prometheus {sha256_hex('scrape-pass')}\n")
        server = self.start(f"--metrics_auth_file={auth}")
        url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url, timeout=RPC_TIMEOUT_S)
        self.assertEqual(e.exception.code, 401)
        for user, password in (("prometheus", "wrong"), ("other", "scrape-pass")):
            request = urllib.request.Request(url, headers={
                "Authorization": "Basic " + base64.b64encode(
                    f"{user}:{password}".encode()).decode()})
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S)
            self.assertEqual(e.exception.code, 401)
        request = urllib.request.Request(url, headers={
            "Authorization": "Basic " + base64.b64encode(b"prometheus:scrape-pass").decode()})
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S) as r:
            self.assertEqual(r.status, 200)
            self.assertIn(b"flowvi_", r.read())

    def test_hash_token_prints_what_sha256sum_prints(self):
        r = subprocess.run([lib.ARGS.server, "--hash_token"], input=b"my token\n",
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().strip(), sha256_hex("my token"))
        r = subprocess.run([lib.ARGS.server, "--hash_token"], input=b"", capture_output=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)

    def test_cli_flags_and_exit_codes(self):
        tokens = self.write_tokens([f"rita reader {sha256_hex(READER_TOKEN)}"])
        server = self.start(f"--tokens_file={tokens}", *self.tls_flags(mutual=True))
        token_file = self.path("reader.token")
        with open(token_file, "w") as f:
            f.write(READER_TOKEN + "\n")
        base = [lib.ARGS.flowvi, "--server", f"127.0.0.1:{server.port}", "--timeout", "10",
                "--ca", self.path("ca.pem"), "--cert", self.path("client.pem"),
                "--key", self.path("client.key")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWVI_")}

        def run(*args, extra_env=None):
            return subprocess.run(base + list(args), capture_output=True, text=True,
                                  timeout=60, env={**env, **(extra_env or {})})

        r = run("layers", "--token-file", token_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("planar", r.stdout)
        r = run("layers", extra_env={"FLOWVI_TOKEN": READER_TOKEN})
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("layers")
        self.assertEqual(r.returncode, 8, r.stderr)
        self.assertIn("not authenticated", r.stderr)
        r = run("layers", "--token", "not-the-token")
        self.assertEqual(r.returncode, 8, r.stderr)
        self.assertNotIn("not-the-token", r.stderr)
        r = run("rm", "anything", "--token", READER_TOKEN)
        self.assertEqual(r.returncode, 9, r.stderr)
        self.assertIn("permission denied", r.stderr)
        self.assertIn("'rita'", r.stderr)
        # A CA that did not sign the server's certificate: unreachable, saying why.
        r = subprocess.run([lib.ARGS.flowvi, "--server", f"127.0.0.1:{server.port}",
                            "--timeout", "10", "--ca", self.path("rogue.pem"), "--token",
                            READER_TOKEN, "layers"], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(r.returncode, 3, r.stderr)
        r = subprocess.run([lib.ARGS.flowvi, "--cert", self.path("client.pem"), "layers"],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--cert and --key go together", r.stderr)


def main():
    def extra(parser):
        parser.add_argument("--flowvi", default=os.environ.get("FLOWVI_CLI_BINARY"),
                            help="path to the flowvi CLI")
    _, argv = lib.parse_args(extra)
    if not lib.ARGS.flowvi:
        sys.exit(f"{sys.argv[0]}: missing --flowvi")
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
