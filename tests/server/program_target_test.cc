// Targets written in the model language through the API: SubmitFit with a program and its data
// (or the 2-D expression), models that keep their source and data, samples and densities in the
// space the program declares, errors before anything is queued, and programs that survive a
// restart from the data directory.
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/server/test_server.h"

namespace flowvi::server::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// A normal mean and a <lower=0> scale: the scale's posterior is positive, and its unconstrained
// coordinate is log(sigma).
constexpr char kNormalModel[] = R"(data {
  int<lower=1> n;
  vector[n] y;
}
parameters {
  real mu;
  real<lower=0> sigma;
}
model {
  mu ~ normal(0, 10);
  sigma ~ lognormal(0, 1);
  y ~ normal(mu, sigma);
}
)";
constexpr char kNormalData[] = R"({"n": 5, "y": [1.2, 0.4, 2.1, 1.6, 0.9]})";

v1::SubmitFitRequest ProgramRequest(const std::string& name, const std::string& source,
                                    const std::string& data, int64_t iterations = 600) {
  v1::SubmitFitRequest r = FitRequest(name, iterations, "planar*2");
  r.mutable_target()->mutable_program()->set_source(source);
  r.mutable_target()->mutable_program()->set_data_json(data);
  return r;
}

class ProgramTargetTest : public ServerTest {
 protected:
  // Jobs the server knows of (none must be created by a rejected submission).
  int NumJobs() {
    v1::ListJobsRequest r;
    v1::ListJobsResponse resp;
    EXPECT_THAT(stub_->ListJobs(Context().get(), r, &resp), IsOk());
    return resp.jobs_size();
  }
};

TEST_F(ProgramTargetTest, FitsAndServesInTheDeclaredSpace) {
  const v1::Job job = FitAndWait(ProgramRequest("normal", kNormalModel, kNormalData));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
  EXPECT_EQ(job.dim(), 2);
  // Diagnostics are reported for the declared parameters, in their own space.
  ASSERT_THAT(job.diagnostics().coordinate_names(), ::testing::ElementsAre("mu", "sigma"));
  EXPECT_GT(job.diagnostics().mean(1), 0);

  // The model keeps the program and its data verbatim.
  v1::GetModelRequest gr;
  gr.set_model("normal");
  v1::Model model;
  ASSERT_THAT(stub_->GetModel(Context().get(), gr, &model), IsOk());
  EXPECT_EQ(model.target().program().source(), kNormalModel);
  EXPECT_EQ(model.target().program().data_json(), kNormalData);

  // Draws of sigma are positive; their log q (density in (mu, sigma)) is what LogDensity says.
  const SampleResult s = Sample("normal", 2000, 11);
  ASSERT_THAT(s.status, IsOk());
  ASSERT_THAT(s.values, SizeIs(4000));
  for (int i = 0; i < 2000; ++i) ASSERT_GT(s.values[2 * i + 1], 0) << "draw " << i;
  v1::LogDensityResponse resp;
  ASSERT_THAT(LogDensity("normal", 2, s.values, &resp), IsOk());
  ASSERT_THAT(resp.log_q(), SizeIs(2000));
  for (int i = 0; i < 2000; ++i) ASSERT_NEAR(resp.log_q(i), s.log_q[i], 1e-9) << "draw " << i;

  // The density in the declared space integrates to one: a Riemann sum over a grid in
  // (mu, sigma) covering the posterior.
  std::vector<double> grid;
  const int kGrid = 300;
  const double mu_lo = -3, mu_hi = 5, s_lo = 1e-3, s_hi = 6;
  const double dmu = (mu_hi - mu_lo) / kGrid, ds = (s_hi - s_lo) / kGrid;
  for (int i = 0; i < kGrid; ++i) {
    for (int j = 0; j < kGrid; ++j) {
      grid.push_back(mu_lo + (i + 0.5) * dmu);
      grid.push_back(s_lo + (j + 0.5) * ds);
    }
  }
  ASSERT_THAT(LogDensity("normal", 2, grid, &resp), IsOk());
  double mass = 0;
  for (double lq : resp.log_q()) mass += std::exp(lq) * dmu * ds;
  EXPECT_NEAR(mass, 1.0, 0.02);

  // A point outside the declared support is the client's error, named.
  grpc::Status bad = LogDensity("normal", 2, {0.5, -1.0}, &resp);
  EXPECT_THAT(bad, StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("sigma")));
}

TEST_F(ProgramTargetTest, TargetLogDensityOfAProgramIsInTheDeclaredSpace) {
  v1::TargetLogDensityRequest r;
  r.mutable_target()->mutable_program()->set_source(kNormalModel);
  r.mutable_target()->mutable_program()->set_data_json(kNormalData);
  r.set_dim(2);
  const double mu = 1.1, sigma = 0.7;
  r.add_points(mu);
  r.add_points(sigma);
  v1::TargetLogDensityResponse resp;
  ASSERT_THAT(stub_->TargetLogDensity(Context().get(), r, &resp), IsOk());
  ASSERT_THAT(resp.log_p(), SizeIs(1));
  // The model as written, with every normalizing constant (the language keeps them).
  const double y[] = {1.2, 0.4, 2.1, 1.6, 0.9};
  const double kLogSqrt2Pi = 0.5 * std::log(2 * M_PI);
  double expected = -kLogSqrt2Pi - std::log(10.0) - 0.5 * std::pow(mu / 10, 2);
  expected += -kLogSqrt2Pi - std::log(sigma) - 0.5 * std::pow(std::log(sigma), 2);
  for (double v : y)
    expected += -kLogSqrt2Pi - std::log(sigma) - 0.5 * std::pow((v - mu) / sigma, 2);
  EXPECT_NEAR(resp.log_p(0), expected, 1e-12);
}

TEST_F(ProgramTargetTest, ExpressionTargetFitsAndEvaluates) {
  v1::SubmitFitRequest r = FitRequest("expr", 400, "planar*2");
  r.mutable_target()->set_expression("-0.5 * (z1^2 + square(z2 - z1))");
  const v1::Job job = FitAndWait(r);
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
  EXPECT_THAT(job.diagnostics().coordinate_names(), ::testing::ElementsAre("z1", "z2"));

  v1::TargetLogDensityRequest tr;
  *tr.mutable_target() = r.target();
  tr.set_dim(2);
  for (double v : {0.3, -1.2}) tr.add_points(v);
  v1::TargetLogDensityResponse resp;
  ASSERT_THAT(stub_->TargetLogDensity(Context().get(), tr, &resp), IsOk());
  EXPECT_NEAR(resp.log_p(0), -0.5 * (0.09 + 1.5 * 1.5), 1e-14);
}

TEST_F(ProgramTargetTest, CompileErrorsAreInvalidArgumentWithTheLineAndNothingIsQueued) {
  v1::Job job;
  // A parse error: line:col, the line and a caret.
  grpc::Status s = Submit(ProgramRequest("bad", "parameters { real mu }\nmodel { }", ""), &job);
  EXPECT_THAT(s, StatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                          AllOf(HasSubstr("target.program: 1:"), HasSubstr("^"))));
  // Unknown distribution.
  s = Submit(ProgramRequest("bad", "parameters { real mu; }\nmodel { mu ~ nromal(0, 1); }", ""),
             &job);
  EXPECT_THAT(s, StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("nromal")));
  // Missing data.
  s = Submit(ProgramRequest("bad", kNormalModel, R"({"n": 5})"), &job);
  EXPECT_THAT(s, StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("y")));
  // An empty program, and no target at all.
  s = Submit(ProgramRequest("bad", "", ""), &job);
  EXPECT_THAT(s, StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("source is empty")));
  v1::SubmitFitRequest none = FitRequest("bad");
  none.clear_target();
  s = Submit(none, &job);
  EXPECT_THAT(s, StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("give a built-in")));
  EXPECT_EQ(NumJobs(), 0);
}

TEST_F(ProgramTargetTest, OutOfSupportScaleIsRejectedBeforeQueueing) {
  // sigma is declared without <lower=0>: half of the initial draws make it negative.
  const std::string source = R"(data { int n; vector[n] y; }
parameters { real mu; real sigma; }
model { y ~ normal(mu, sigma); }
)";
  v1::Job job;
  grpc::Status s = Submit(ProgramRequest("oos", source, kNormalData), &job);
  EXPECT_THAT(
      s, StatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                  AllOf(HasSubstr("out of support"), HasSubstr("sigma"), HasSubstr("lower=0"))));
  EXPECT_EQ(NumJobs(), 0);
}

class ProgramLimitsTest : public ProgramTargetTest {
 protected:
  ServerOptions Options() const override {
    ServerOptions o = TestServerOptions();
    o.limits.model.max_program_bytes = 100;
    o.limits.model.max_data_bytes = 20;
    return o;
  }
};

TEST_F(ProgramLimitsTest, ProgramAndDataOverTheLimitsAreRejectedNamingTheFlag) {
  v1::Job job;
  EXPECT_THAT(Submit(ProgramRequest("big", kNormalModel, kNormalData), &job),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       AllOf(HasSubstr("target.program.source"), HasSubstr("--max_program_kb"))));
  EXPECT_THAT(Submit(ProgramRequest("big", "parameters { real mu; }\nmodel { mu ~ normal(0, 1); }",
                                    kNormalData),
                     &job),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       AllOf(HasSubstr("target.program.data_json"), HasSubstr("--max_data_mb"))));
  v1::SubmitFitRequest expr = FitRequest("big");
  expr.mutable_target()->set_expression(std::string(101, ' ') + "z1");
  EXPECT_THAT(Submit(expr, &job),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("--max_program_kb")));
  EXPECT_EQ(NumJobs(), 0);
}

class ProgramTapeLimitTest : public ProgramTargetTest {
 protected:
  ServerOptions Options() const override {
    ServerOptions o = TestServerOptions();
    o.limits.model.max_tape_nodes = 1;
    return o;
  }
};

TEST_F(ProgramTapeLimitTest, AProgramOverTheTapeLimitIsResourceExhausted) {
  v1::Job job;
  EXPECT_THAT(Submit(ProgramRequest("big", kNormalModel, kNormalData), &job),
              StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("max_tape_nodes")));
  EXPECT_EQ(NumJobs(), 0);
}

TEST(ProgramRestartTest, ProgramModelsAreServedAfterARestart) {
  char tmpl[] = "/tmp/flowvi-program-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ServerOptions o = TestServerOptions();
  o.data_dir = dir;
  auto sample = [](Server& server, std::vector<double>* values) {
    auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
    auto stub = v1::FlowVI::NewStub(channel);
    v1::SampleRequest r;
    r.set_model("normal");
    r.set_n(100);
    r.set_seed(5);
    auto ctx = Context();
    auto reader = stub->Sample(ctx.get(), r);
    v1::SampleChunk c;
    while (reader->Read(&c)) values->insert(values->end(), c.values().begin(), c.values().end());
    return reader->Finish();
  };
  std::vector<double> before, after;
  {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(o);
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = v1::FlowVI::NewStub(
        grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
    v1::Job job;
    ASSERT_THAT(stub->SubmitFit(Context().get(),
                                ProgramRequest("normal", kNormalModel, kNormalData, 300), &job),
                IsOk());
    job = WaitDone(*stub, job.id());
    ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
    ASSERT_THAT(sample(**server, &before), IsOk());
    (*server)->Shutdown();
  }
  {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(o);
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_THAT(sample(**server, &after), IsOk());
    (*server)->Shutdown();
  }
  EXPECT_THAT(before, SizeIs(200));
  EXPECT_EQ(before, after);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flowvi::server::testing
