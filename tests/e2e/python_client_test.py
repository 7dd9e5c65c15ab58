#!/usr/bin/env python3
"""A second, independent flowvi client in Python, against the real flowvi-server.

    python3 tests/e2e/python_client_test.py --server build/server/flowvi-server \
        --proto-dir proto [unittest options, e.g. -v]

Python stubs are generated from proto/flowvi/v1/*.proto into a temporary directory at run time.
The server runs on 127.0.0.1:0 (metrics on 127.0.0.1:0) with a temporary data directory and is
always stopped (SIGTERM, then SIGKILL after a timeout).
"""

import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flowvi_testlib as lib  # noqa: E402

import grpc  # noqa: E402

RPC_TIMEOUT_S = 30.0
FIT_TIMEOUT_S = 120.0
MODEL_NAME = "py-u1"
N_DRAWS = 5000
SAMPLE_SEED = 20240607


class PythonClientTest(unittest.TestCase):
    """One server and one fit (planar*8 on u1) shared by the tests of this class."""

    @classmethod
    def setUpClass(cls):
        cls.pb = lib.generate_stubs(lib.ARGS.proto_dir)
        cls.addClassCleanup(lib.remove_stubs)
        # A 3000-iteration planar*8 fit takes ~50 ms, under the default 100 ms between progress
        # events: ask for progress every millisecond so the watch has several to check.
        cls.server = lib.ServerProcess(lib.ARGS.server, ["--progress_interval_ms=1"])
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.channel, cls.stub = lib.connect(cls.server, cls.pb)
        cls.addClassCleanup(cls.channel.close)
        cls._fit = None
        cls._fit_error = None
        cls._draws = None

    # -- shared steps, run once and remembered -----------------------------------------------

    @classmethod
    def fit(cls):
        """SubmitFit + WatchJob to the end; returns (submitted job, events)."""
        if cls._fit_error is not None:
            raise RuntimeError(f"the shared fit failed earlier: {cls._fit_error}")
        if cls._fit is None:
            try:
                t, s = cls.pb.types_pb2, cls.pb.service_pb2
                request = s.SubmitFitRequest(
                    target=t.Target(builtin=t.BuiltinTarget(name="u1")),
                    flow=t.FlowSpec(text="planar*8"),
                    options=t.FitOptions(iterations=3000, seed=1),
                    model_name=MODEL_NAME)
                job = cls.stub.SubmitFit(request, timeout=RPC_TIMEOUT_S)
                events = list(cls.stub.WatchJob(s.WatchJobRequest(job_id=job.id),
                                                timeout=FIT_TIMEOUT_S))
                cls._fit = (job, events)
            except Exception as e:
                cls._fit_error = repr(e)
                raise
        return cls._fit

    @classmethod
    def draws(cls):
        """(dim, values, log_q, chunks) of Sample(n=N_DRAWS, seed=SAMPLE_SEED)."""
        if cls._draws is None:
            job, events = cls.fit()
            cls._draws = cls.sample(events[-1].final.model_ref, N_DRAWS, SAMPLE_SEED)
        return cls._draws

    @classmethod
    def sample(cls, model, n, seed, chunk_size=0):
        chunks = list(cls.stub.Sample(
            cls.pb.service_pb2.SampleRequest(model=model, n=n, seed=seed, chunk_size=chunk_size),
            timeout=RPC_TIMEOUT_S))
        values, log_q = [], []
        for c in chunks:
            values.extend(c.values)
            log_q.extend(c.log_q)
        dim = chunks[0].dim if chunks else 0
        return dim, values, log_q, chunks

    # -- tests ---------------------------------------------------------------------------------

    def test_1_submit_and_watch(self):
        t = self.pb.types_pb2
        job, events = self.fit()
        self.assertTrue(job.id)
        self.assertIn(job.state, (t.JOB_STATE_QUEUED, t.JOB_STATE_RUNNING))
        self.assertFalse(job.done)
        self.assertEqual(job.model_name, MODEL_NAME)
        # Options come back resolved; the flow in both forms.
        self.assertEqual(job.options.iterations, 3000)
        self.assertEqual(job.options.seed, 1)
        self.assertTrue(job.options.HasField("batch_size"))
        self.assertEqual(job.flow.text, "planar*8")
        self.assertTrue(len(job.flow.layers) >= 1)
        self.assertEqual(job.dim, 2)

        kinds = [e.WhichOneof("event") for e in events]
        self.assertGreaterEqual(len(events), 2, kinds)
        self.assertEqual(kinds[0], "snapshot", kinds)
        self.assertEqual(kinds[-1], "final", kinds)
        self.assertTrue(all(k == "progress" for k in kinds[1:-1]), kinds)
        self.assertEqual(events[0].snapshot.id, job.id)

        iterations = [e.progress.iteration for e in events if e.HasField("progress")]
        self.assertGreaterEqual(len(iterations), 2, f"progress events: {iterations}")
        self.assertEqual(iterations, sorted(iterations), "progress went backwards")
        self.assertEqual(iterations[-1], 3000)
        for e in events[1:-1]:
            self.assertEqual(e.progress.total_iterations, 3000)
            self.assertTrue(0 < e.progress.iteration <= 3000)
            self.assertTrue(math.isfinite(e.progress.elbo), e.progress)
            self.assertGreaterEqual(e.progress.elapsed_seconds, 0)

        final = events[-1].final
        self.assertEqual(final.state, t.JOB_STATE_SUCCEEDED, final.error_message)
        self.assertTrue(final.done)
        self.assertEqual(final.model_ref, f"{MODEL_NAME}/1")
        self.assertTrue(final.HasField("diagnostics"))
        self.assertEqual(final.progress.iteration, 3000)
        self.assertTrue(final.HasField("end_time"))

        # GetJob agrees with the watch's final event.
        got = self.stub.GetJob(self.pb.service_pb2.GetJobRequest(job_id=job.id),
                               timeout=RPC_TIMEOUT_S)
        self.assertEqual(got.state, t.JOB_STATE_SUCCEEDED)
        self.assertEqual(got.model_ref, final.model_ref)

    def test_2_sample(self):
        dim, values, log_q, chunks = self.draws()
        self.assertEqual(dim, 2)
        self.assertEqual(len(log_q), N_DRAWS)
        self.assertEqual(len(values), N_DRAWS * dim)
        expected_offset = 0
        for c in chunks:
            self.assertEqual(c.dim, dim)
            self.assertEqual(c.offset, expected_offset)
            self.assertEqual(len(c.values), len(c.log_q) * dim)
            self.assertGreater(len(c.log_q), 0)
            expected_offset += len(c.log_q)
        self.assertEqual(expected_offset, N_DRAWS)
        self.assertTrue(all(math.isfinite(v) for v in values))
        self.assertTrue(all(math.isfinite(v) for v in log_q))
        # A fit to u1 puts its mass on the ring |z| ~ 2.
        radii = [math.hypot(values[2 * i], values[2 * i + 1]) for i in range(N_DRAWS)]
        mean_r = sum(radii) / N_DRAWS
        self.assertTrue(1.5 < mean_r < 2.5, f"mean |z| = {mean_r}")

        # Same model, n and seed: the same draws, whatever the chunking; another seed differs.
        model = self.fit()[1][-1].final.model_ref
        _, values2, log_q2, _ = self.sample(model, N_DRAWS, SAMPLE_SEED)
        self.assertEqual(values2, values)
        self.assertEqual(log_q2, log_q)
        _, values3, log_q3, chunks3 = self.sample(model, N_DRAWS, SAMPLE_SEED, chunk_size=1000)
        self.assertEqual(len(chunks3), 5)
        self.assertEqual(values3, values)
        self.assertEqual(log_q3, log_q)
        _, values4, _, _ = self.sample(model, N_DRAWS, SAMPLE_SEED + 1)
        self.assertNotEqual(values4, values)

    def test_3_log_density_matches_sample(self):
        dim, values, log_q, _ = self.draws()
        model = self.fit()[1][-1].final.model_ref
        resp = self.stub.LogDensity(
            self.pb.service_pb2.LogDensityRequest(model=MODEL_NAME, dim=dim, points=values),
            timeout=RPC_TIMEOUT_S)
        self.assertEqual(resp.model_ref, model)
        self.assertEqual(len(resp.log_q), N_DRAWS)
        worst, worst_i = 0.0, -1
        for i, (a, b) in enumerate(zip(log_q, resp.log_q)):
            err = abs(a - b) / max(1.0, abs(a))
            if not err <= worst:
                worst, worst_i = err, i
        self.assertLessEqual(
            worst, 1e-9,
            f"draw {worst_i}: Sample log_q {log_q[worst_i]!r} vs LogDensity "
            f"{resp.log_q[worst_i]!r}")

    def test_4_model_diagnostics(self):
        _, events = self.fit()
        s = self.pb.service_pb2
        model = self.stub.GetModel(s.GetModelRequest(model=MODEL_NAME), timeout=RPC_TIMEOUT_S)
        self.assertEqual(model.name, MODEL_NAME)
        self.assertEqual(model.version, 1)
        self.assertEqual(model.dim, 2)
        self.assertEqual(model.job_id, events[0].snapshot.id)
        self.assertEqual(len(model.parameters), 0)  # only with include_parameters
        self.assertTrue(model.elbo_trace)
        self.assertGreater(model.trace_stride, 0)

        d = model.diagnostics
        self.assertTrue(model.HasField("diagnostics"))
        self.assertGreater(d.num_draws, 0)
        for name in ("elbo", "elbo_se", "k_hat", "ess", "log_z", "log_z_se"):
            self.assertTrue(math.isfinite(getattr(d, name)), f"{name} = {getattr(d, name)}")
        self.assertTrue(0 < d.ess <= d.num_draws, f"ess = {d.ess}")
        self.assertIn(d.k_hat_reading, ("good", "ok", "bad", "very bad"))
        self.assertEqual(len(d.mean), 2)
        self.assertEqual(len(d.sd), 2)

        # kl = log Z - ELBO with u1's known log Z, and the importance-weighted log Z near it.
        targets = self.stub.ListTargets(s.ListTargetsRequest(), timeout=RPC_TIMEOUT_S)
        u1 = next(t for t in targets.targets if t.name == "u1")
        self.assertEqual(list(d.coordinate_names), list(u1.coordinate_names))
        self.assertTrue(d.HasField("kl"), "kl missing although u1's log Z is known")
        self.assertAlmostEqual(d.kl, u1.log_z - d.elbo, delta=1e-9)
        self.assertGreaterEqual(d.kl, -5 * d.elbo_se)
        self.assertLess(d.kl, 0.5, "planar*8 should fit u1 to well under 0.5 nats")
        self.assertAlmostEqual(d.log_z, u1.log_z, delta=0.05 + 5 * d.log_z_se)

        # The parameters, when asked for, match the job's num_params.
        with_params = self.stub.GetModel(
            s.GetModelRequest(model=events[-1].final.model_ref, include_parameters=True),
            timeout=RPC_TIMEOUT_S)
        self.assertEqual(len(with_params.parameters), with_params.num_params)
        self.assertGreater(with_params.num_params, 0)

    def test_5_list_targets(self):
        s = self.pb.service_pb2
        targets = self.stub.ListTargets(s.ListTargetsRequest(), timeout=RPC_TIMEOUT_S)
        by_name = {t.name: t for t in targets.targets}
        self.assertIn("u1", by_name)
        u1 = by_name["u1"]
        self.assertEqual(u1.default_dim, 2)
        self.assertTrue(u1.proper)
        self.assertTrue(u1.HasField("log_z"))
        self.assertAlmostEqual(u1.log_z, 1.8775016, delta=1e-6)
        for improper in ("u2", "u3", "u4"):
            if improper in by_name:
                self.assertFalse(by_name[improper].proper, improper)
                self.assertFalse(by_name[improper].HasField("log_z"), improper)
        layers = self.stub.ListLayers(s.ListLayersRequest(), timeout=RPC_TIMEOUT_S)
        self.assertIn("planar", [l.type for l in layers.layers])

    def test_6_errors(self):
        s = self.pb.service_pb2
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.GetModel(s.GetModelRequest(model="no-such-model"), timeout=RPC_TIMEOUT_S)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND, cm.exception.details())
        self.assertIn("no-such-model", cm.exception.details())

        # A streaming call reports its error when iterated.
        with self.assertRaises(grpc.RpcError) as cm:
            list(self.stub.Sample(s.SampleRequest(model="no-such-model", n=10),
                                  timeout=RPC_TIMEOUT_S))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND, cm.exception.details())


def main():
    _, argv = lib.parse_args()
    unittest.main(module=__name__, argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
