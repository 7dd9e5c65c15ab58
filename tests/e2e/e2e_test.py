#!/usr/bin/env python3
"""flowvi end to end, with the real flowvi-server binary (issue #3).

    python3 tests/e2e/e2e_test.py --server build/server/flowvi-server --proto-dir proto \
        [--promtool /usr/bin/promtool] [unittest options]

Starts the server on 127.0.0.1:0 (metrics on 127.0.0.1:0), fits planar*8 to u1, watches it to
the end, samples, checks that log q of the draws equals what LogDensity gives for them, and that
the Prometheus counters moved accordingly between two scrapes of /metrics; runs
`promtool check metrics` on a scrape; and checks that SIGTERM stops the server with exit code 0
within a few seconds (also with a fit running and a WatchJob stream open).
"""

import math
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flowvi_testlib as lib  # noqa: E402

import grpc  # noqa: E402

RPC_TIMEOUT_S = 30.0
FIT_TIMEOUT_S = 120.0
# flowvi-server's exit after SIGTERM: prometheus-cpp's exposer (civetweb) alone takes ~2 s to
# stop; with a client channel still open, gRPC's graceful GOAWAY adds up to ~4 s more (bounded by
# the server's --shutdown_grace_s, 10 s by default).
SIGTERM_DEADLINE_S = 5.0
SIGTERM_OPEN_CHANNEL_DEADLINE_S = 9.0
N_DRAWS = 4000
ITERATIONS = 3000
SERVICE = "flowvi.v1.FlowVI"


def fit_request(pb, model_name, iterations=ITERATIONS, seed=1):
    t, s = pb.types_pb2, pb.service_pb2
    return s.SubmitFitRequest(target=t.Target(builtin=t.BuiltinTarget(name="u1")),
                              flow=t.FlowSpec(text="planar*8"),
                              options=t.FitOptions(iterations=iterations, seed=seed),
                              model_name=model_name)


class EndToEndTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pb = lib.generate_stubs(lib.ARGS.proto_dir)
        cls.addClassCleanup(lib.remove_stubs)

    def start_server(self, *flags):
        server = lib.ServerProcess(lib.ARGS.server, flags)
        self.addCleanup(server.cleanup)
        server.start()
        self.assertIsNotNone(server.metrics_port, f"no metrics port in {server.first_line!r}")
        channel, stub = lib.connect(server, self.pb)
        self.addCleanup(channel.close)
        return server, channel, stub

    def wait_for_metrics(self, port, expected, timeout=5.0):
        """Scrapes until every (name, labels) in `expected` has exactly its value, or the
        timeout passes; returns the last scrape. (The server updates some series just after
        answering: an RPC is counted once its status has been sent, and a job's end is counted
        and running_jobs decremented after the watchers have seen the final event.)"""
        deadline = time.monotonic() + timeout
        while True:
            text, _ = lib.scrape_metrics(port)
            samples = lib.parse_prometheus_text(text)
            if all(lib.metric(samples, k[0], **dict(k[1])) == v for k, v in expected.items()):
                return text, samples
            if time.monotonic() > deadline:
                return text, samples
            time.sleep(0.05)

    def test_end_to_end(self):
        pb = self.pb
        s, t = pb.service_pb2, pb.types_pb2
        server, channel, stub = self.start_server()

        # /metrics answers before any RPC, in the Prometheus text format.
        before_text, headers = lib.scrape_metrics(server.metrics_port)
        self.assertTrue(headers.get("Content-Type", "").startswith("text/plain"), headers)
        before = lib.parse_prometheus_text(before_text)
        for family in ("flowvi_samples_drawn_total", "flowvi_density_points_total",
                       "flowvi_training_iterations_total", "flowvi_queue_depth",
                       "flowvi_running_jobs", "flowvi_models"):
            self.assertIn((family, frozenset()), before, f"{family} missing before any RPC")

        # Fit, watch to the end.
        job = stub.SubmitFit(fit_request(pb, "e2e-u1"), timeout=RPC_TIMEOUT_S)
        events = list(stub.WatchJob(s.WatchJobRequest(job_id=job.id), timeout=FIT_TIMEOUT_S))
        kinds = [e.WhichOneof("event") for e in events]
        self.assertEqual(kinds[0], "snapshot", kinds)
        self.assertEqual(kinds[-1], "final", kinds)
        final = events[-1].final
        self.assertEqual(final.state, t.JOB_STATE_SUCCEEDED,
                         f"{t.JobState.Name(final.state)}: {final.error_message}")
        iterations = [e.progress.iteration for e in events if e.HasField("progress")]
        self.assertEqual(iterations, sorted(iterations))
        self.assertEqual(iterations[-1], ITERATIONS)
        model_ref = final.model_ref
        self.assertEqual(model_ref, "e2e-u1/1")

        # Sample; the draws' log q equals LogDensity at them.
        chunks = list(stub.Sample(s.SampleRequest(model=model_ref, n=N_DRAWS, seed=99),
                                  timeout=RPC_TIMEOUT_S))
        dim = chunks[0].dim
        values = [v for c in chunks for v in c.values]
        log_q = [v for c in chunks for v in c.log_q]
        self.assertEqual(dim, 2)
        self.assertEqual(len(log_q), N_DRAWS)
        self.assertEqual(len(values), N_DRAWS * dim)
        density = stub.LogDensity(s.LogDensityRequest(model=model_ref, dim=dim, points=values),
                                  timeout=RPC_TIMEOUT_S)
        self.assertEqual(density.model_ref, model_ref)
        self.assertEqual(len(density.log_q), N_DRAWS)
        worst = max(abs(a - b) / max(1.0, abs(a)) for a, b in zip(log_q, density.log_q))
        self.assertLessEqual(worst, 1e-9, "Sample's log_q and LogDensity disagree")
        self.assertTrue(all(math.isfinite(v) for v in density.log_q))

        # One error, to see a non-OK code counted.
        with self.assertRaises(grpc.RpcError) as cm:
            stub.GetModel(s.GetModelRequest(model="missing"), timeout=RPC_TIMEOUT_S)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

        # The counters moved by exactly what we did.
        def rpc(method, code="OK"):
            return ("flowvi_rpc_handled_total",
                    frozenset({"method": f"{SERVICE}/{method}", "code": code}.items()))

        deltas = {
            rpc("SubmitFit"): 1, rpc("WatchJob"): 1, rpc("Sample"): 1, rpc("LogDensity"): 1,
            rpc("GetModel", "NOT_FOUND"): 1,
            ("flowvi_rpc_started_total", frozenset({"method": f"{SERVICE}/Sample"}.items())): 1,
            ("flowvi_samples_drawn_total", frozenset()): N_DRAWS,
            ("flowvi_density_points_total", frozenset()): N_DRAWS,
            ("flowvi_training_iterations_total", frozenset()): ITERATIONS,
            ("flowvi_jobs_finished_total", frozenset({"outcome": "succeeded"}.items())): 1,
        }
        expected = {k: lib.metric(before, k[0], **dict(k[1])) + d for k, d in deltas.items()}
        # Gauges and histograms after the fit.
        expected.update({
            ("flowvi_models", frozenset()): 1,
            ("flowvi_running_jobs", frozenset()): 0,
            ("flowvi_queue_depth", frozenset()): 0,
            ("flowvi_fit_duration_seconds_count", frozenset()): 1,
            ("flowvi_queue_wait_seconds_count", frozenset()): 1,
        })
        after_text, after = self.wait_for_metrics(server.metrics_port, expected)
        for key, want in expected.items():
            with self.subTest(series=f"{key[0]}{dict(key[1])}"):
                self.assertEqual(lib.metric(after, key[0], **dict(key[1])), want)
        self.assertGreaterEqual(
            lib.metric(after, "flowvi_rpc_duration_seconds_count",
                       method=f"{SERVICE}/WatchJob"), 1)
        self.assertEqual(lib.metric(after, "flowvi_jobs_finished_total", outcome="failed"), 0)

        # promtool accepts the exposition.
        self.check_with_promtool(after_text)

        # SIGTERM after the client has hung up: exit code 0, quickly. (With an idle channel
        # still open, gRPC's graceful GOAWAY waits for the client to close the connection, which
        # an idle grpcio channel does only seconds later; test_sigterm_during_fit_and_watch
        # covers an open channel.)
        channel.close()
        rc = server.stop(timeout=SIGTERM_DEADLINE_S + 10)
        sys.stderr.write(f"\n[SIGTERM, client gone: exit {rc} after {server.stop_seconds:.2f}s]\n")
        self.assertFalse(server.killed, "the server ignored SIGTERM")
        self.assertEqual(rc, 0, server.stderr_text())
        self.assertLess(server.stop_seconds, SIGTERM_DEADLINE_S,
                        f"SIGTERM took {server.stop_seconds:.1f}s")

    def check_with_promtool(self, text):
        promtool = shutil.which(lib.ARGS.promtool)
        if promtool is None:
            self.fail(f"promtool not found ({lib.ARGS.promtool!r}); install Debian's prometheus "
                      "package (deploy/install-deps.sh)")
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        report = (r.stdout + r.stderr).strip()
        sys.stderr.write(f"\n[promtool check metrics: exit {r.returncode}]"
                         f"{(chr(10) + report) if report else ' (no output)'}\n")
        # 0: clean; 3: lint findings (printed above); anything else: not a valid exposition.
        self.assertEqual(r.returncode, 0, f"promtool check metrics:\n{report}")

    def test_sigterm_during_fit_and_watch(self):
        """SIGTERM with a long fit running and a WatchJob stream open: the watch gets `stopping`
        and ends UNAVAILABLE, and the server exits 0 within a few seconds."""
        pb = self.pb
        s = pb.service_pb2
        server, channel, stub = self.start_server()
        job = stub.SubmitFit(fit_request(pb, "long", iterations=5_000_000),
                             timeout=RPC_TIMEOUT_S)
        watch = stub.WatchJob(s.WatchJobRequest(job_id=job.id), timeout=60)
        first = next(watch)
        self.assertEqual(first.WhichOneof("event"), "snapshot")
        # Wait until it is really training.
        for event in watch:
            if event.HasField("progress") and event.progress.iteration > 0:
                break

        server.proc.terminate()
        t0 = time.monotonic()
        rest, stream_error = [], None
        try:
            for event in watch:
                rest.append(event)
        except grpc.RpcError as e:
            stream_error = e
        rc = server.stop(timeout=SIGTERM_OPEN_CHANNEL_DEADLINE_S + 10)
        elapsed = time.monotonic() - t0
        sys.stderr.write(f"\n[SIGTERM, fit running, watch open: exit {rc} after {elapsed:.2f}s; "
                         f"watch got {[e.WhichOneof('event') for e in rest]}"
                         f"{', then ' + stream_error.code().name if stream_error else ''}]\n")
        self.assertFalse(server.killed, "the server ignored SIGTERM")
        self.assertEqual(rc, 0, server.stderr_text())
        self.assertLess(elapsed, SIGTERM_OPEN_CHANNEL_DEADLINE_S, f"SIGTERM took {elapsed:.1f}s")
        # With a data directory the job is checkpointed, not cancelled: the watch's last event
        # is `stopping` (resume from last_iteration after a restart), then UNAVAILABLE.
        kinds = [e.WhichOneof("event") for e in rest]
        self.assertTrue(kinds and kinds[-1] == "stopping", kinds)
        self.assertTrue(all(k == "progress" for k in kinds[:-1]), kinds)
        self.assertGreater(rest[-1].stopping.last_iteration, 0)
        self.assertIsNotNone(stream_error, "the watch ended OK after `stopping`")
        self.assertEqual(stream_error.code(), grpc.StatusCode.UNAVAILABLE, stream_error.details())


def main():
    _, argv = lib.parse_args()
    unittest.main(module=__name__, argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
