// Data-set targets through the API: SubmitFit with inline points and SubmitFitStream in chunks,
// the fitted density model's Sample and LogDensity in the data's units, data errors naming row
// and column with nothing queued, the --max_data_values limit, and a restart serving the same
// model.
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <numbers>
#include <random>

#include "tests/server/test_server.h"

namespace flowvi::server::testing {
namespace {

using ::testing::HasSubstr;

// Draws from N(mu, Sigma) with mu = (3, -1), Sigma = [[4, 1.2], [1.2, 1]] (std::mt19937_64, so
// the data do not depend on the code under test).
constexpr double kMu[2] = {3.0, -1.0};
constexpr double kL00 = 2.0, kL10 = 0.6, kL11 = 0.8;  // Cholesky factor of Sigma

std::vector<double> GaussianPoints(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    const double e0 = normal(rng), e1 = normal(rng);
    out.push_back(kMu[0] + kL00 * e0);
    out.push_back(kMu[1] + kL10 * e0 + kL11 * e1);
  }
  return out;
}

// The true density's mean log density (minus its entropy): -(D/2)(1 + log 2 pi) - log|L|.
double TrueMeanLogDensity() {
  return -(1.0 + std::log(2 * std::numbers::pi)) - std::log(kL00 * kL11);
}

v1::SubmitFitRequest DataRequest(const std::string& name, const std::vector<double>& values,
                                 int dim = 2, const std::string& flow = "realnvp(hidden=16)*4",
                                 int64_t iterations = 800) {
  v1::SubmitFitRequest r;
  r.set_model_name(name);
  r.mutable_flow()->set_text(flow);
  r.mutable_target()->mutable_data()->set_dim(dim);
  r.mutable_target()->mutable_data()->mutable_values()->Add(values.begin(), values.end());
  r.mutable_options()->set_iterations(iterations);
  r.mutable_options()->set_batch_size(128);
  r.mutable_options()->set_learning_rate(5e-3);
  r.mutable_options()->set_seed(3);
  r.mutable_options()->set_eval_interval(50);
  return r;
}

class DensityTargetTest : public ServerTest {
 protected:
  // `extra_declared` makes num_values disagree with what is sent.
  grpc::Status SubmitStream(const v1::SubmitFitRequest& request, int values_per_chunk, v1::Job* job,
                            int extra_declared = 0) {
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    std::unique_ptr<grpc::ClientWriter<v1::SubmitFitChunk>> writer =
        stub_->SubmitFitStream(ctx.get(), job);
    v1::SubmitFitChunk first;
    *first.mutable_request() = request;
    if (request.target().has_data()) {
      first.mutable_request()->mutable_target()->mutable_data()->clear_values();
    }
    first.set_num_values(request.target().data().values_size() + extra_declared);
    if (!writer->Write(first)) return writer->Finish();
    const auto& values = request.target().data().values();
    for (int start = 0; start < values.size(); start += values_per_chunk) {
      v1::SubmitFitChunk c;
      for (int i = start; i < std::min(values.size(), start + values_per_chunk); ++i) {
        c.add_values(values[i]);
      }
      if (!writer->Write(c)) break;  // the server has answered (an error)
    }
    writer->WritesDone();
    return writer->Finish();
  }

  int NumJobs() { return static_cast<int>(AllJobs().size()); }
};

TEST_F(DensityTargetTest, InlineFitLearnsTheGaussianAndServesItInDataUnits) {
  const v1::Job job = FitAndWait(DataRequest("gauss", GaussianPoints(2000, 11)));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
  EXPECT_FALSE(job.has_diagnostics());  // they do not apply to a data set
  ASSERT_TRUE(job.has_density_fit());
  EXPECT_EQ(job.target().data().num_points(), 2000);
  EXPECT_EQ(job.target().data().values_size(), 0);  // not echoed
  EXPECT_EQ(job.density_fit().train_points() + job.density_fit().held_out_points(), 2000);
  ASSERT_TRUE(job.density_fit().has_held_out_log_likelihood());
  EXPECT_NEAR(job.density_fit().held_out_log_likelihood(), TrueMeanLogDensity(), 0.3)
      << job.density_fit().ShortDebugString();
  EXPECT_NEAR(job.density_fit().train_log_likelihood(), TrueMeanLogDensity(), 0.3)
      << job.density_fit().ShortDebugString();
  EXPECT_TRUE(job.progress().has_train_log_likelihood()) << job.progress().ShortDebugString();
  ASSERT_EQ(job.density_fit().mean_size(), 2);
  EXPECT_NEAR(job.density_fit().mean(0), kMu[0], 0.3);
  EXPECT_NEAR(job.density_fit().sd(0), kL00, 0.3);
  EXPECT_DOUBLE_EQ(job.options().validation_fraction(), 0.1);

  v1::Model model;
  ASSERT_THAT(GetModel("gauss", &model), IsOk());
  EXPECT_EQ(model.density_fit().held_out_log_likelihood(),
            job.density_fit().held_out_log_likelihood());

  // Samples are in the data's units: their mean and sd are the data's, and the log q reported
  // with each draw is what LogDensity says at it.
  const SampleResult s = Sample("gauss", 4000, 9);
  ASSERT_THAT(s.status, IsOk());
  ASSERT_EQ(s.values.size(), 8000u);
  double m0 = 0, m1 = 0;
  for (size_t i = 0; i < 4000; ++i) {
    m0 += s.values[2 * i] / 4000;
    m1 += s.values[2 * i + 1] / 4000;
  }
  EXPECT_NEAR(m0, kMu[0], 0.25);
  EXPECT_NEAR(m1, kMu[1], 0.15);
  const std::vector<double> some(s.values.begin(), s.values.begin() + 200);
  v1::LogDensityResponse lq;
  ASSERT_THAT(LogDensity("gauss", 2, some, &lq), IsOk());
  ASSERT_EQ(lq.log_q_size(), 100);
  for (int i = 0; i < 100; ++i) EXPECT_NEAR(lq.log_q(i), s.log_q[i], 1e-6) << i;

  // Same seed, same draws.
  const SampleResult again = Sample("gauss", 4000, 9, 7);
  EXPECT_EQ(again.values, s.values);
}

TEST_F(DensityTargetTest, StreamedDataGivesTheSameModelAsInline) {
  const std::vector<double> points = GaussianPoints(600, 5);
  const v1::SubmitFitRequest inline_request = DataRequest("inline", points, 2, "realnvp*2", 200);
  v1::SubmitFitRequest streamed_request = inline_request;
  streamed_request.set_model_name("streamed");
  const v1::Job a = FitAndWait(inline_request);
  v1::Job b;
  ASSERT_THAT(SubmitStream(streamed_request, 77, &b), IsOk());  // rows split across chunks
  b = WaitDone(b.id());
  ASSERT_EQ(a.state(), v1::JOB_STATE_SUCCEEDED) << a.ShortDebugString();
  ASSERT_EQ(b.state(), v1::JOB_STATE_SUCCEEDED) << b.ShortDebugString();
  EXPECT_EQ(b.target().data().num_points(), 600);
  v1::Model ma, mb;
  ASSERT_THAT(GetModel("inline", &ma, true), IsOk());
  ASSERT_THAT(GetModel("streamed", &mb, true), IsOk());
  EXPECT_GT(ma.parameters_size(), 0);
  EXPECT_EQ(std::vector<double>(ma.parameters().begin(), ma.parameters().end()),
            std::vector<double>(mb.parameters().begin(), mb.parameters().end()));
}

TEST_F(DensityTargetTest, BadDataNamesRowAndColumnAndQueuesNothing) {
  const int before = NumJobs();
  std::vector<double> points = GaussianPoints(50, 1);
  v1::Job job;

  std::vector<double> with_nan = points;
  with_nan[2 * 6 + 1] = std::numeric_limits<double>::quiet_NaN();  // row 7, column 2
  EXPECT_THAT(Submit(DataRequest("bad", with_nan), &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("row 7, column 2")));

  std::vector<double> with_inf = points;
  with_inf[0] = std::numeric_limits<double>::infinity();
  EXPECT_THAT(Submit(DataRequest("bad", with_inf), &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("row 1, column 1")));

  std::vector<double> ragged = points;
  ragged.push_back(1.0);  // a 51st row with one value
  grpc::Status s = Submit(DataRequest("bad", ragged), &job);
  EXPECT_THAT(s, StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("row 51")));
  EXPECT_THAT(s.error_message(), HasSubstr("column 2"));

  // The same through the stream.
  EXPECT_THAT(SubmitStream(DataRequest("bad", with_nan), 10, &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("row 7, column 2")));

  // Coupling layers need two coordinates.
  EXPECT_THAT(Submit(DataRequest("bad", points, 1, "realnvp"), &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT));
  // dim 0, no points, VI-only options.
  EXPECT_THAT(Submit(DataRequest("bad", points, 0), &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("target.data.dim")));
  EXPECT_THAT(Submit(DataRequest("bad", {}), &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("no rows")));
  v1::SubmitFitRequest anneal = DataRequest("bad", points);
  anneal.mutable_options()->set_anneal_iterations(10);
  EXPECT_THAT(Submit(anneal, &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("anneal_iterations")));
  v1::SubmitFitRequest vi = FitRequest("bad");
  vi.mutable_options()->set_patience(3);
  EXPECT_THAT(Submit(vi, &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("only to data-set targets")));
  // A stream cut short (fewer values than declared) submits nothing.
  EXPECT_THAT(SubmitStream(DataRequest("bad", points), 10, &job, 5),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("num_values is 105")));
  // A stream whose first chunk has no data-set request.
  EXPECT_THAT(SubmitStream(FitRequest("bad"), 10, &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("first chunk")));

  EXPECT_EQ(NumJobs(), before);
  EXPECT_TRUE(AllModels().empty());
}

TEST_F(DensityTargetTest, CancelStopsADensityFitAndRegistersNothing) {
  v1::SubmitFitRequest r = DataRequest("long", GaussianPoints(300, 8), 2, "realnvp*2", 10000000);
  r.mutable_options()->set_patience(0);  // never stops early
  const v1::Job job = SubmitOk(r);
  const v1::Job running = WaitRunning(job.id(), 10);
  EXPECT_TRUE(running.progress().has_train_log_likelihood())
      << running.progress().ShortDebugString();
  v1::Job cancelled;
  ASSERT_THAT(CancelJob(job.id(), &cancelled), IsOk());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED) << cancelled.ShortDebugString();
  EXPECT_FALSE(cancelled.has_density_fit());
  EXPECT_TRUE(AllModels().empty());
}

class DensityLimitTest : public DensityTargetTest {
 protected:
  ServerOptions Options() const override {
    ServerOptions o = TestServerOptions();
    o.limits.max_data_values = 1000;
    return o;
  }
};

TEST_F(DensityLimitTest, DataOverMaxDataValuesIsRefusedInlineAndStreamed) {
  const std::vector<double> points = GaussianPoints(501, 2);  // 1002 values
  v1::Job job;
  EXPECT_THAT(Submit(DataRequest("big", points), &job),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       HasSubstr("1002 values (points x dim), over this server's limit of 1000 "
                                 "(--max_data_values)")));
  // Declared over the limit: refused at the first chunk; declared under it but sent over it:
  // refused as the values arrive.
  EXPECT_THAT(SubmitStream(DataRequest("big", points), 100, &job),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("1002 values")));
  EXPECT_THAT(SubmitStream(DataRequest("big", points), 100, &job, -100),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("--max_data_values")));
  EXPECT_EQ(NumJobs(), 0);
  // Just under it is fine.
  const std::vector<double> fits(points.begin(), points.begin() + 1000);
  EXPECT_THAT(SubmitStream(DataRequest("ok", fits, 2, "realnvp", 20), 300, &job), IsOk());
}

TEST(DensityRestartTest, ADensityModelIsServedTheSameAfterARestart) {
  char tmpl[] = "/tmp/flowvi-density-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ServerOptions o = TestServerOptions();
  o.data_dir = dir;
  auto sample = [](Server& server, std::vector<double>* values, std::vector<double>* log_q) {
    auto stub = v1::FlowVI::NewStub(
        grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
    v1::SampleRequest r;
    r.set_model("d");
    r.set_n(100);
    r.set_seed(5);
    auto ctx = Context();
    auto reader = stub->Sample(ctx.get(), r);
    v1::SampleChunk c;
    while (reader->Read(&c)) {
      values->insert(values->end(), c.values().begin(), c.values().end());
      log_q->insert(log_q->end(), c.log_q().begin(), c.log_q().end());
    }
    return reader->Finish();
  };
  std::vector<double> before, after, lq_before, lq_after;
  {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(o);
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = v1::FlowVI::NewStub(
        grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
    v1::Job job;
    ASSERT_THAT(
        stub->SubmitFit(Context().get(),
                        DataRequest("d", GaussianPoints(400, 4), 2, "realnvp*2", 100), &job),
        IsOk());
    job = WaitDone(*stub, job.id());
    ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
    ASSERT_THAT(sample(**server, &before, &lq_before), IsOk());
    (*server)->Shutdown();
  }
  {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(o);
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_THAT(sample(**server, &after, &lq_after), IsOk());
    (*server)->Shutdown();
  }
  EXPECT_FALSE(before.empty());
  EXPECT_EQ(before, after);
  EXPECT_EQ(lq_before, lq_after);
  std::filesystem::remove_all(dir);
}

TEST(DensityRestartTest, AFitInterruptedByARestartRunsAgainToTheSameModel) {
  char tmpl[] = "/tmp/flowvi-density-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ServerOptions o = TestServerOptions();
  o.data_dir = dir;
  v1::SubmitFitRequest r = DataRequest("cut", GaussianPoints(300, 6), 2, "realnvp*2", 1500);
  r.mutable_options()->set_patience(0);
  auto wait = [](v1::FlowVI::Stub* stub, const std::string& id, bool running) {
    v1::GetJobRequest gr;
    gr.set_job_id(id);
    v1::Job job;
    const absl::Time deadline = absl::Now() + kWaitTimeout;
    while (absl::Now() < deadline) {
      EXPECT_THAT(stub->GetJob(Context().get(), gr, &job), IsOk());
      if (job.done() || (running && job.progress().iteration() > 0)) break;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return job;
  };
  std::string id;
  {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(o);
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = v1::FlowVI::NewStub(
        grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
    v1::Job job;
    ASSERT_THAT(stub->SubmitFit(Context().get(), r, &job), IsOk());
    id = job.id();
    job = wait(stub.get(), id, true);
    (*server)->Shutdown();  // drains: the fit stops, the job stays RUNNING on disk
    if (job.done()) GTEST_SKIP() << "the fit ended before the restart";
  }
  absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(o);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::FlowVI::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  const v1::Job resumed = wait(stub.get(), id, false);
  ASSERT_EQ(resumed.state(), v1::JOB_STATE_SUCCEEDED) << resumed.ShortDebugString();
  // The same request run without interruption.
  r.set_model_name("whole");
  v1::Job whole;
  ASSERT_THAT(stub->SubmitFit(Context().get(), r, &whole), IsOk());
  whole = wait(stub.get(), whole.id(), false);
  ASSERT_EQ(whole.state(), v1::JOB_STATE_SUCCEEDED) << whole.ShortDebugString();
  v1::Model a, b;
  v1::GetModelRequest ga, gb;
  ga.set_model("cut");
  ga.set_include_parameters(true);
  gb.set_model("whole");
  gb.set_include_parameters(true);
  ASSERT_THAT(stub->GetModel(Context().get(), ga, &a), IsOk());
  ASSERT_THAT(stub->GetModel(Context().get(), gb, &b), IsOk());
  EXPECT_GT(a.parameters_size(), 0);
  EXPECT_EQ(std::vector<double>(a.parameters().begin(), a.parameters().end()),
            std::vector<double>(b.parameters().begin(), b.parameters().end()));
  EXPECT_EQ(a.density_fit().held_out_log_likelihood(), b.density_fit().held_out_log_likelihood());
  (*server)->Shutdown();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flowvi::server::testing
