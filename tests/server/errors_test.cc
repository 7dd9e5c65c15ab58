// Every error the FlowVI API defines, with its exact status code and a message naming what was
// wrong; rejected requests change nothing; idempotent submission.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "tests/server/test_server.h"

namespace flowvi::server::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr grpc::StatusCode kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
constexpr grpc::StatusCode kNotFound = grpc::StatusCode::NOT_FOUND;

class ErrorsTest : public ServerTest {
 protected:
  // The jobs as ListJobs returns them, for before/after comparisons.
  std::string JobsFingerprint() {
    std::string out;
    for (const v1::Job& j : AllJobs()) absl::StrAppend(&out, j.id(), ":", j.state(), ";");
    return out;
  }
};

TEST_F(ErrorsTest, UnknownTargetIsInvalidAndListsTheKnownTargets) {
  v1::Job job;
  EXPECT_THAT(Submit(FitRequest("m", 100, "planar*2", "u9"), &job),
              StatusIs(kInvalid, AllOf(HasSubstr("u9"), HasSubstr("u1"), HasSubstr("funnel"),
                                       HasSubstr("eight_schools"))));
  v1::SubmitFitRequest no_target = FitRequest("m", 100);
  no_target.clear_target();
  EXPECT_THAT(Submit(no_target, &job), StatusIs(kInvalid, HasSubstr("target")));
}

TEST_F(ErrorsTest, UnknownLayerIsInvalid) {
  v1::Job job;
  EXPECT_THAT(Submit(FitRequest("m", 100, "plnar*2"), &job),
              StatusIs(kInvalid, AllOf(HasSubstr("plnar"), HasSubstr("planar"))));
  v1::SubmitFitRequest structured = FitRequest("m", 100);
  structured.mutable_flow()->clear_text();
  structured.mutable_flow()->add_layers()->set_type("plnar");
  EXPECT_THAT(Submit(structured, &job),
              StatusIs(kInvalid, AllOf(HasSubstr("plnar"), HasSubstr("planar"))));
  // Other malformed specs.
  EXPECT_THAT(Submit(FitRequest("m", 100, "planar*0"), &job), StatusIs(kInvalid));
  EXPECT_THAT(Submit(FitRequest("m", 100, "planar*2,"), &job), StatusIs(kInvalid));
  EXPECT_THAT(Submit(FitRequest("m", 100, "planar(nope=1)"), &job),
              StatusIs(kInvalid, HasSubstr("nope")));
  structured.mutable_flow()->mutable_layers(0)->set_type("planar");
  structured.mutable_flow()->mutable_layers(0)->set_count(-1);
  EXPECT_THAT(Submit(structured, &job), StatusIs(kInvalid, HasSubstr("count")));
  structured.mutable_flow()->mutable_layers(0)->set_count(1);
  (*structured.mutable_flow()->mutable_layers(0)->mutable_options())["nope"].set_int_value(1);
  EXPECT_THAT(Submit(structured, &job), StatusIs(kInvalid, HasSubstr("nope")));
  EXPECT_THAT(AllJobs(), IsEmpty());
}

TEST_F(ErrorsTest, BadTargetParameterIsInvalidAndNamed) {
  v1::Job job;
  v1::SubmitFitRequest r = FitRequest("m", 100, "planar*2", "eight_schools");
  (*r.mutable_target()->mutable_builtin()->mutable_params())["schools"].set_int_value(9);
  EXPECT_THAT(Submit(r, &job), StatusIs(kInvalid, HasSubstr("'schools'")));
  (*r.mutable_target()->mutable_builtin()->mutable_params())["schools"].set_text("nine");
  EXPECT_THAT(Submit(r, &job), StatusIs(kInvalid, HasSubstr("'schools'")));
  (*r.mutable_target()->mutable_builtin()->mutable_params())["schools"].set_real_value(2.5);
  EXPECT_THAT(Submit(r, &job), StatusIs(kInvalid, HasSubstr("schools")));
  (*r.mutable_target()->mutable_builtin()->mutable_params())["schools"].Clear();
  EXPECT_THAT(Submit(r, &job), StatusIs(kInvalid, HasSubstr("schools")));
  r.mutable_target()->mutable_builtin()->mutable_params()->clear();
  (*r.mutable_target()->mutable_builtin()->mutable_params())["shcools"].set_int_value(3);
  EXPECT_THAT(Submit(r, &job), StatusIs(kInvalid, HasSubstr("shcools")));

  // The text form is parsed by the declared type: schools=3 works.
  r.mutable_target()->mutable_builtin()->mutable_params()->clear();
  (*r.mutable_target()->mutable_builtin()->mutable_params())["schools"].set_text("3");
  job = SubmitOk(r);
  EXPECT_EQ(job.dim(), 5);
  EXPECT_EQ(job.target().builtin().params().at("schools").int_value(), 3);
}

TEST_F(ErrorsTest, BadOptionsAreInvalidAndNamed) {
  struct Case {
    const char* field;
    void (*set)(v1::FitOptions*);
  };
  const Case cases[] = {
      {"learning_rate", [](v1::FitOptions* o) { o->set_learning_rate(0); }},
      {"learning_rate", [](v1::FitOptions* o) { o->set_learning_rate(-1); }},
      {"learning_rate",
       [](v1::FitOptions* o) { o->set_learning_rate(std::numeric_limits<double>::quiet_NaN()); }},
      {"batch_size", [](v1::FitOptions* o) { o->set_batch_size(0); }},
      {"batch_size", [](v1::FitOptions* o) { o->set_batch_size(-5); }},
      {"iterations", [](v1::FitOptions* o) { o->set_iterations(0); }},
      {"anneal_iterations", [](v1::FitOptions* o) { o->set_anneal_iterations(-1); }},
      {"max_grad_norm", [](v1::FitOptions* o) { o->set_max_grad_norm(-1); }},
      {"diagnostic_draws", [](v1::FitOptions* o) { o->set_diagnostic_draws(10); }},
      {"optimizer", [](v1::FitOptions* o) { o->set_optimizer(static_cast<v1::Optimizer>(99)); }},
  };
  for (const Case& c : cases) {
    v1::SubmitFitRequest r = FitRequest("m", 100);
    c.set(r.mutable_options());
    v1::Job job;
    EXPECT_THAT(Submit(r, &job), StatusIs(kInvalid, HasSubstr(c.field)))
        << r.options().ShortDebugString();
  }
  EXPECT_THAT(AllJobs(), IsEmpty());
}

TEST_F(ErrorsTest, BadModelNameIsInvalid) {
  for (const std::string& name :
       {std::string(""), std::string("-leading-dash"), std::string("has space"),
        std::string("slash/y"), std::string("at@x"), std::string(101, 'a')}) {
    v1::Job job;
    EXPECT_THAT(Submit(FitRequest(name, 100), &job), StatusIs(kInvalid, HasSubstr("model")))
        << "'" << name << "'";
  }
  v1::SubmitFitRequest long_id = FitRequest("m", 100);
  long_id.set_client_request_id(std::string(129, 'x'));
  v1::Job job;
  EXPECT_THAT(Submit(long_id, &job), StatusIs(kInvalid, HasSubstr("client_request_id")));
  EXPECT_THAT(AllJobs(), IsEmpty());
  // The longest name is fine.
  SubmitOk(FitRequest(std::string(100, 'a'), 10));
  SubmitOk(FitRequest("a.b_c-1", 10));
}

TEST_F(ErrorsTest, UnknownJobIsNotFound) {
  v1::Job job;
  EXPECT_THAT(GetJob("job-999999", &job), StatusIs(kNotFound, HasSubstr("job-999999")));
  EXPECT_THAT(GetJob("", &job), StatusIs(kNotFound));
  EXPECT_THAT(CancelJob("job-999999", &job), StatusIs(kNotFound, HasSubstr("job-999999")));
  const WatchResult w = Watch("job-999999");
  EXPECT_THAT(w.status, StatusIs(kNotFound, HasSubstr("job-999999")));
  EXPECT_THAT(w.events, IsEmpty());
}

TEST_F(ErrorsTest, MissingModelIsNotFound) {
  ASSERT_EQ(FitAndWait(FitRequest("m", 100)).model_ref(), "m/1");
  for (const char* ref : {"nope", "nope/1", "nope@prod", "m/2", "m@prod"}) {
    v1::Model model;
    EXPECT_THAT(GetModel(ref, &model), StatusIs(kNotFound)) << ref;
    EXPECT_THAT(Sample(ref, 10, 1).status, StatusIs(kNotFound)) << ref;
    v1::LogDensityResponse ld;
    EXPECT_THAT(LogDensity(ref, 2, {0, 0}, &ld), StatusIs(kNotFound)) << ref;
    v1::DeleteModelResponse del;
    EXPECT_THAT(DeleteModel(ref, &del), StatusIs(kNotFound)) << ref;
  }
  EXPECT_THAT(AllModels(), SizeIs(1));
}

TEST_F(ErrorsTest, MalformedModelReferenceIsInvalid) {
  ASSERT_EQ(FitAndWait(FitRequest("a", 100)).model_ref(), "a/1");
  for (const char* ref :
       {"a/b/c", "x/0", "a/0", "a/-1", "a/", "", "a@", "a@1x", "a/1@p", "/1", "@p", "bad name"}) {
    v1::Model model;
    EXPECT_THAT(GetModel(ref, &model), StatusIs(kInvalid)) << "'" << ref << "'";
    EXPECT_THAT(Sample(ref, 10, 1).status, StatusIs(kInvalid)) << "'" << ref << "'";
    v1::LogDensityResponse ld;
    EXPECT_THAT(LogDensity(ref, 2, {0, 0}, &ld), StatusIs(kInvalid)) << "'" << ref << "'";
    v1::DeleteModelResponse del;
    EXPECT_THAT(DeleteModel(ref, &del), StatusIs(kInvalid)) << "'" << ref << "'";
  }
  EXPECT_THAT(AllModels(), SizeIs(1));
}

TEST_F(ErrorsTest, SetAliasErrors) {
  ASSERT_EQ(FitAndWait(FitRequest("m", 100)).model_ref(), "m/1");
  v1::ModelSummary summary;
  EXPECT_THAT(SetAlias("m", "prod", 2, &summary), StatusIs(kNotFound, HasSubstr("2")));
  EXPECT_THAT(SetAlias("m", "prod", 0, &summary), StatusIs(kNotFound));
  EXPECT_THAT(SetAlias("nope", "prod", 1, &summary), StatusIs(kNotFound, HasSubstr("nope")));
  EXPECT_THAT(SetAlias("m", "1x", 1, &summary), StatusIs(kInvalid, HasSubstr("alias")));
  EXPECT_THAT(SetAlias("m", "", 1, &summary), StatusIs(kInvalid, HasSubstr("alias")));
  EXPECT_THAT(SetAlias("m", "a.b", 1, &summary), StatusIs(kInvalid, HasSubstr("alias")));
  EXPECT_THAT(SetAlias("bad name", "prod", 1, &summary), StatusIs(kInvalid));
  const std::vector<v1::ModelSummary> models = AllModels();
  ASSERT_THAT(models, SizeIs(1));
  EXPECT_THAT(models[0].aliases(), IsEmpty());
}

TEST_F(ErrorsTest, LogDensityBadPointsAreInvalid) {
  ASSERT_EQ(FitAndWait(FitRequest("m", 100)).model_ref(), "m/1");
  v1::LogDensityResponse resp;
  EXPECT_THAT(LogDensity("m", 3, {0, 0, 0}, &resp), StatusIs(kInvalid, HasSubstr("dim")));
  EXPECT_THAT(LogDensity("m", 0, {}, &resp), StatusIs(kInvalid, HasSubstr("dim")));
  EXPECT_THAT(LogDensity("m", 2, {0, 0, 0}, &resp),
              StatusIs(kInvalid, HasSubstr("not a multiple")));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_THAT(LogDensity("m", 2, {0, 0, 1, nan}, &resp), StatusIs(kInvalid, HasSubstr("point 1")));
  EXPECT_THAT(LogDensity("m", 2, {inf, 0}, &resp), StatusIs(kInvalid, HasSubstr("point 0")));
  EXPECT_THAT(LogDensity("m", 2, {0, -inf}, &resp), StatusIs(kInvalid, HasSubstr("finite")));
}

TEST_F(ErrorsTest, SampleBadCountIsInvalid) {
  ASSERT_EQ(FitAndWait(FitRequest("m", 100)).model_ref(), "m/1");
  SampleResult s = Sample("m", 0, 1);
  EXPECT_THAT(s.status, StatusIs(kInvalid, HasSubstr("n must be")));
  EXPECT_THAT(s.chunks, IsEmpty());
  EXPECT_THAT(Sample("m", -1, 1).status, StatusIs(kInvalid, HasSubstr("n must be")));
  EXPECT_THAT(Sample("m", 10, 1, -1).status, StatusIs(kInvalid, HasSubstr("chunk_size")));
  // A bad n is reported even for a missing model (the request is checked first).
  EXPECT_THAT(Sample("nope", 0, 1).status, StatusIs(kInvalid));
}

TEST_F(ErrorsTest, WatchFromNegativeIterationIsInvalid) {
  const v1::Job job = FitAndWait(FitRequest("m", 100));
  EXPECT_THAT(Watch(job.id(), -1).status, StatusIs(kInvalid, HasSubstr("from_iteration")));
}

TEST_F(ErrorsTest, CancelOfAFinishedJobIsFailedPrecondition) {
  const v1::Job done = FitAndWait(FitRequest("m", 100));
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  v1::Job job;
  EXPECT_THAT(CancelJob(done.id(), &job),
              StatusIs(grpc::StatusCode::FAILED_PRECONDITION, HasSubstr("SUCCEEDED")));
  ASSERT_THAT(GetJob(done.id(), &job), IsOk());
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);

  // A cancelled job cannot be cancelled again.
  const v1::Job long_job = SubmitOk(LongFitRequest("long"));
  ASSERT_THAT(CancelJob(long_job.id(), &job), IsOk());
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(CancelJob(long_job.id(), &job),
              StatusIs(grpc::StatusCode::FAILED_PRECONDITION, HasSubstr("CANCELLED")));
}

// A fit whose loss or gradient stays non-finite ends FAILED with the engine's message, and
// registers nothing.
TEST_F(ErrorsTest, DivergingFitEndsFailedWithTheEnginesMessage) {
  v1::SubmitFitRequest r = FitRequest("diverges", 2000, "radial*8");
  r.mutable_options()->set_learning_rate(1e6);
  const v1::Job job = FitAndWait(r);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED) << job.ShortDebugString();
  EXPECT_TRUE(job.done());
  EXPECT_THAT(job.error_message(), HasSubstr("diverged"));
  EXPECT_EQ(job.error_code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_EQ(job.model_ref(), "");
  EXPECT_FALSE(job.has_diagnostics());
  EXPECT_TRUE(job.has_end_time());
  EXPECT_THAT(AllModels(), IsEmpty());
  const WatchResult w = Watch(job.id());
  ExpectWellFormedWatch(w, v1::JOB_STATE_FAILED);
}

TEST_F(ErrorsTest, RejectedSubmitChangesNothing) {
  const v1::Job first = FitAndWait(FitRequest("m", 100));
  ASSERT_EQ(first.state(), v1::JOB_STATE_SUCCEEDED);
  const v1::Job running = SubmitOk(LongFitRequest("long"));
  ASSERT_EQ(WaitRunning(running.id()).state(), v1::JOB_STATE_RUNNING);
  const std::string before = JobsFingerprint();
  const std::vector<v1::ModelSummary> models_before = AllModels();

  std::vector<v1::SubmitFitRequest> bad;
  bad.push_back(FitRequest("m", 100, "planar*2", "nope"));
  bad.push_back(FitRequest("m", 100, "nope*2"));
  bad.push_back(FitRequest("bad name", 100));
  bad.push_back(FitRequest("m", 0));
  v1::SubmitFitRequest lr = FitRequest("m", 100);
  lr.mutable_options()->set_learning_rate(0);
  lr.set_client_request_id("bad-request");
  bad.push_back(lr);
  for (const v1::SubmitFitRequest& r : bad) {
    v1::Job job;
    EXPECT_THAT(Submit(r, &job), StatusIs(kInvalid)) << r.ShortDebugString();
  }
  EXPECT_EQ(JobsFingerprint(), before);
  const std::vector<v1::ModelSummary> models_after = AllModels();
  ASSERT_EQ(models_after.size(), models_before.size());
  for (size_t i = 0; i < models_after.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(models_after[i], models_before[i]));
  }
  // The rejected request's idempotency key was not consumed.
  v1::SubmitFitRequest good = FitRequest("m", 100);
  good.set_client_request_id("bad-request");
  const v1::Job accepted = SubmitOk(good);
  EXPECT_NE(accepted.id(), first.id());
  EXPECT_NE(accepted.id(), running.id());
  v1::Job job;
  ASSERT_THAT(CancelJob(running.id(), &job), IsOk());
}

TEST_F(ErrorsTest, SameClientRequestIdReturnsTheSameJob) {
  v1::SubmitFitRequest r = FitRequest("m", 200);
  r.set_client_request_id("req-1");
  const v1::Job first = SubmitOk(r);
  const v1::Job retry = SubmitOk(r);
  EXPECT_EQ(retry.id(), first.id());
  EXPECT_EQ(retry.client_request_id(), "req-1");
  EXPECT_THAT(AllJobs(), SizeIs(1));

  // After it finished too.
  const v1::Job done = WaitDone(first.id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  const v1::Job late_retry = SubmitOk(r);
  EXPECT_EQ(late_retry.id(), first.id());
  EXPECT_EQ(late_retry.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_THAT(AllJobs(), SizeIs(1));
  EXPECT_THAT(AllModels(), SizeIs(1));

  // The same key with a different request.
  v1::SubmitFitRequest different = r;
  different.mutable_options()->set_iterations(201);
  v1::Job job;
  EXPECT_THAT(Submit(different, &job), StatusIs(grpc::StatusCode::ALREADY_EXISTS,
                                                AllOf(HasSubstr("req-1"), HasSubstr(first.id()))));
  different = r;
  different.set_model_name("other");
  EXPECT_THAT(Submit(different, &job), StatusIs(grpc::StatusCode::ALREADY_EXISTS));
  EXPECT_THAT(AllJobs(), SizeIs(1));

  // Another key: another job.
  r.set_client_request_id("req-2");
  const v1::Job second = SubmitOk(r);
  EXPECT_NE(second.id(), first.id());
  // No key: every submit is a new job.
  r.clear_client_request_id();
  EXPECT_NE(SubmitOk(r).id(), SubmitOk(r).id());
  EXPECT_THAT(AllJobs(), SizeIs(4));
}

// A server with small limits: requests over them are RESOURCE_EXHAUSTED naming the limit and
// its flag; requests at them are accepted.
class LimitsTest : public ServerTest {
 protected:
  ServerOptions Options() const override {
    ServerOptions o = TestServerOptions();
    o.limits.max_dim = 4;
    o.limits.max_layers = 3;
    o.limits.max_batch = 64;
    o.limits.max_iterations = 1000;
    o.limits.max_diagnostic_draws = 5000;
    o.limits.max_samples = 100;
    o.limits.max_points = 10;
    return o;
  }
};

TEST_F(LimitsTest, RequestsOverTheLimitsAreResourceExhausted) {
  const auto over_limit = [](absl::string_view what) {
    return StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED,
                    AllOf(HasSubstr(std::string(what)), HasSubstr("limit"), HasSubstr("(--max_")));
  };
  v1::Job job;
  // max_dim: funnel with dim 5 (and eight_schools, dim 10 by default).
  v1::SubmitFitRequest funnel = FitRequest("funnel", 100, "planar*2", "funnel");
  (*funnel.mutable_target()->mutable_builtin()->mutable_params())["dim"].set_int_value(5);
  EXPECT_THAT(Submit(funnel, &job), over_limit("dimension"));
  EXPECT_THAT(Submit(FitRequest("m", 100, "planar*2", "eight_schools"), &job),
              over_limit("dimension"));
  // max_layers: in either form.
  EXPECT_THAT(Submit(FitRequest("m", 100, "planar*2,radial*2"), &job), over_limit("layer"));
  v1::SubmitFitRequest structured = FitRequest("m", 100);
  structured.mutable_flow()->clear_text();
  v1::LayerGroup* g = structured.mutable_flow()->add_layers();
  g->set_type("planar");
  g->set_count(4);
  EXPECT_THAT(Submit(structured, &job), over_limit("layer"));
  // max_batch, max_iterations, max_diagnostic_draws.
  v1::SubmitFitRequest batch = FitRequest("m", 100);
  batch.mutable_options()->set_batch_size(65);
  EXPECT_THAT(Submit(batch, &job), over_limit("batch_size"));
  EXPECT_THAT(Submit(FitRequest("m", 1001), &job), over_limit("iterations"));
  v1::SubmitFitRequest draws = FitRequest("m", 100);
  draws.mutable_options()->set_diagnostic_draws(5001);
  EXPECT_THAT(Submit(draws, &job), over_limit("diagnostic_draws"));
  v1::SubmitFitRequest default_iterations = FitRequest("m", 100);
  default_iterations.mutable_options()->clear_iterations();  // the default, 10000, is over
  EXPECT_THAT(Submit(default_iterations, &job), over_limit("iterations"));
  EXPECT_THAT(AllJobs(), IsEmpty());

  // At the limits: accepted.
  v1::SubmitFitRequest at = FitRequest("m", 1000, "planar*2,radial");
  at.mutable_options()->set_batch_size(64);
  at.mutable_options()->set_diagnostic_draws(5000);
  (*funnel.mutable_target()->mutable_builtin()->mutable_params())["dim"].set_int_value(4);
  const v1::Job fitted = FitAndWait(at);
  ASSERT_EQ(fitted.state(), v1::JOB_STATE_SUCCEEDED) << fitted.ShortDebugString();
  SubmitOk(funnel);

  // max_samples.
  EXPECT_THAT(Sample("m", 101, 1).status, over_limit("100"));
  const SampleResult s = Sample("m", 100, 1);
  EXPECT_THAT(s.status, IsOk());
  EXPECT_THAT(s.log_q, SizeIs(100));
  // max_points.
  v1::LogDensityResponse resp;
  EXPECT_THAT(LogDensity("m", 2, std::vector<double>(22, 0.5), &resp), over_limit("points"));
  EXPECT_THAT(LogDensity("m", 2, std::vector<double>(20, 0.5), &resp), IsOk());
  EXPECT_THAT(resp.log_q(), SizeIs(10));
}

}  // namespace
}  // namespace flowvi::server::testing
