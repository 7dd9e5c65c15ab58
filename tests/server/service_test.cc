// Every FlowVI RPC working end to end against an in-process server: fit, watch, get and list
// jobs; list, get, alias, sample, evaluate and delete models; the catalogs; both flow forms.
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "tests/server/test_server.h"

namespace flowvi::server::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

class ServiceTest : public ServerTest {};

TEST_F(ServiceTest, SubmitFitReturnsTheQueuedJobWithEveryDefaultResolved) {
  v1::SubmitFitRequest request = FitRequest("m", 300);
  request.mutable_options()->clear_batch_size();  // left to the engine default
  request.set_priority(3);
  v1::Job job = SubmitOk(request);

  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  EXPECT_FALSE(job.done());
  EXPECT_EQ(job.model_name(), "m");
  EXPECT_EQ(job.priority(), 3);
  EXPECT_TRUE(job.has_create_time());
  EXPECT_EQ(job.target().builtin().name(), "u1");
  EXPECT_EQ(job.dim(), 2);
  EXPECT_GT(job.num_params(), 0);
  EXPECT_EQ(job.progress().total_iterations(), 300);
  // The flow in canonical form: both the text and the structure.
  EXPECT_EQ(job.flow().text(), "planar*2");
  ASSERT_THAT(job.flow().layers(), SizeIs(1));
  EXPECT_EQ(job.flow().layers(0).type(), "planar");
  EXPECT_EQ(job.flow().layers(0).count(), 2);
  // Options with every default resolved.
  const v1::FitOptions& o = job.options();
  EXPECT_TRUE(o.has_iterations() && o.has_batch_size() && o.has_learning_rate() && o.has_seed() &&
              o.has_anneal_iterations() && o.has_max_grad_norm() && o.has_diagnostic_draws())
      << o.ShortDebugString();
  EXPECT_EQ(o.iterations(), 300);
  EXPECT_EQ(o.batch_size(), 100);
  EXPECT_DOUBLE_EQ(o.learning_rate(), 1e-3);
  EXPECT_EQ(o.seed(), 7u);
  EXPECT_EQ(o.optimizer(), v1::OPTIMIZER_ADAM);
  EXPECT_EQ(o.diagnostic_draws(), TestServerOptions().default_diagnostic_draws);
}

TEST_F(ServiceTest, FitWatchedToCompletionIsSucceededWithDiagnostics) {
  const v1::Job submitted = SubmitOk(FitRequest("m", 500));
  const WatchResult w = Watch(submitted.id());
  ExpectWellFormedWatch(w, v1::JOB_STATE_SUCCEEDED);
  ASSERT_FALSE(w.events.empty());
  EXPECT_EQ(w.events.front().snapshot().id(), submitted.id());
  // The last progress reports the last iteration.
  const std::vector<int64_t> iterations = ProgressIterations(w);
  ASSERT_FALSE(iterations.empty());
  EXPECT_EQ(iterations.back(), 500);

  v1::Job job;
  ASSERT_THAT(GetJob(submitted.id(), &job), IsOk());
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(job.done());
  EXPECT_EQ(job.model_ref(), "m/1");
  EXPECT_EQ(job.error_code(), 0);
  EXPECT_EQ(job.error_message(), "");
  EXPECT_TRUE(job.has_start_time());
  EXPECT_TRUE(job.has_end_time());
  EXPECT_LE(ToTime(job.create_time()), ToTime(job.start_time()));
  EXPECT_LE(ToTime(job.start_time()), ToTime(job.end_time()));
  EXPECT_EQ(job.progress().iteration(), 500);
  EXPECT_EQ(job.progress().total_iterations(), 500);
  ASSERT_TRUE(job.has_diagnostics());
  const v1::Diagnostics& d = job.diagnostics();
  EXPECT_EQ(d.num_draws(), TestServerOptions().default_diagnostic_draws);
  EXPECT_TRUE(std::isfinite(d.elbo()));
  EXPECT_TRUE(std::isfinite(d.k_hat()));
  EXPECT_FALSE(d.k_hat_reading().empty());
  EXPECT_GT(d.ess(), 0);
  EXPECT_TRUE(d.has_kl());  // u1's log Z is known
  EXPECT_THAT(d.coordinate_names(), SizeIs(2));
  EXPECT_THAT(d.mean(), SizeIs(2));
  EXPECT_THAT(d.sd(), SizeIs(2));
  // The final event is the same job.
  EXPECT_TRUE(MessageDifferencer::Equals(w.events.back().final(), job))
      << w.events.back().final().ShortDebugString() << "\nvs\n"
      << job.ShortDebugString();
}

TEST_F(ServiceTest, ListJobsFiltersByStateAndPagesNewestFirst) {
  std::vector<std::string> succeeded;
  for (int i = 0; i < 3; ++i) {
    const v1::Job job = FitAndWait(FitRequest(absl::StrCat("m", i), 200));
    ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.ShortDebugString();
    succeeded.push_back(job.id());
  }
  const v1::Job long_job = SubmitOk(LongFitRequest("long"));
  v1::Job cancelled;
  ASSERT_THAT(CancelJob(long_job.id(), &cancelled), IsOk());
  ASSERT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);

  auto ids = [](const v1::ListJobsResponse& r) {
    std::vector<std::string> out;
    for (const v1::Job& j : r.jobs()) out.push_back(j.id());
    return out;
  };

  v1::ListJobsResponse all;
  ASSERT_THAT(ListJobs(v1::ListJobsRequest(), &all), IsOk());
  EXPECT_THAT(ids(all), ElementsAre(long_job.id(), succeeded[2], succeeded[1], succeeded[0]));
  EXPECT_EQ(all.next_page_token(), "");

  v1::ListJobsRequest only_succeeded;
  only_succeeded.add_states(v1::JOB_STATE_SUCCEEDED);
  v1::ListJobsResponse resp;
  ASSERT_THAT(ListJobs(only_succeeded, &resp), IsOk());
  EXPECT_THAT(ids(resp), ElementsAre(succeeded[2], succeeded[1], succeeded[0]));

  v1::ListJobsRequest only_cancelled;
  only_cancelled.add_states(v1::JOB_STATE_CANCELLED);
  ASSERT_THAT(ListJobs(only_cancelled, &resp), IsOk());
  EXPECT_THAT(ids(resp), ElementsAre(long_job.id()));

  v1::ListJobsRequest only_queued;
  only_queued.add_states(v1::JOB_STATE_QUEUED);
  only_queued.add_states(v1::JOB_STATE_RUNNING);
  ASSERT_THAT(ListJobs(only_queued, &resp), IsOk());
  EXPECT_THAT(resp.jobs(), IsEmpty());
  EXPECT_EQ(resp.next_page_token(), "");

  // Paging one at a time visits every job once, newest first; the last page has no token.
  for (const v1::ListJobsRequest& base : {v1::ListJobsRequest(), only_succeeded}) {
    std::vector<std::string> paged;
    v1::ListJobsRequest page = base;
    page.set_page_size(1);
    for (int pages = 0; pages < 10; ++pages) {
      ASSERT_THAT(ListJobs(page, &resp), IsOk());
      ASSERT_THAT(resp.jobs(), SizeIs(1)) << "page " << pages;
      paged.push_back(resp.jobs(0).id());
      if (resp.next_page_token().empty()) break;
      page.set_page_token(resp.next_page_token());
    }
    std::vector<std::string> expected;
    for (const v1::Job& j : all.jobs()) {
      if (base.states_size() == 0 || j.state() == v1::JOB_STATE_SUCCEEDED) {
        expected.push_back(j.id());
      }
    }
    EXPECT_EQ(paged, expected);
  }

  // Pages of two.
  v1::ListJobsRequest two;
  two.set_page_size(2);
  ASSERT_THAT(ListJobs(two, &resp), IsOk());
  EXPECT_THAT(ids(resp), ElementsAre(long_job.id(), succeeded[2]));
  ASSERT_FALSE(resp.next_page_token().empty());
  two.set_page_token(resp.next_page_token());
  ASSERT_THAT(ListJobs(two, &resp), IsOk());
  EXPECT_THAT(ids(resp), ElementsAre(succeeded[1], succeeded[0]));
  EXPECT_EQ(resp.next_page_token(), "");

  // Tokens the server did not issue, and negative page sizes, are INVALID_ARGUMENT.
  v1::ListJobsRequest bad;
  bad.set_page_token("not-a-token");
  EXPECT_THAT(ListJobs(bad, &resp),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("page_token")));
  bad.Clear();
  bad.set_page_size(-1);
  EXPECT_THAT(ListJobs(bad, &resp),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("page_size")));
}

TEST_F(ServiceTest, ListModelsAndGetModel) {
  const v1::Job first = FitAndWait(FitRequest("m", 300));
  ASSERT_EQ(first.model_ref(), "m/1");
  const v1::Job second = FitAndWait(FitRequest("m", 300));
  ASSERT_EQ(second.model_ref(), "m/2");
  ASSERT_EQ(FitAndWait(FitRequest("other", 200)).model_ref(), "other/1");

  const std::vector<v1::ModelSummary> models = AllModels();
  ASSERT_THAT(models, SizeIs(2));
  std::map<std::string, v1::ModelSummary> by_name;
  for (const v1::ModelSummary& s : models) by_name[s.name()] = s;
  ASSERT_TRUE(by_name.contains("m"));
  EXPECT_EQ(by_name["m"].latest_version(), 2);
  EXPECT_THAT(by_name["m"].versions(), ElementsAre(1, 2));
  EXPECT_THAT(by_name["m"].aliases(), IsEmpty());
  ASSERT_TRUE(by_name.contains("other"));
  EXPECT_THAT(by_name["other"].versions(), ElementsAre(1));

  v1::Model latest;
  ASSERT_THAT(GetModel("m", &latest), IsOk());
  EXPECT_EQ(latest.name(), "m");
  EXPECT_EQ(latest.version(), 2);
  EXPECT_EQ(latest.job_id(), second.id());

  v1::Model model;
  ASSERT_THAT(GetModel("m/1", &model), IsOk());
  EXPECT_EQ(model.name(), "m");
  EXPECT_EQ(model.version(), 1);
  EXPECT_EQ(model.job_id(), first.id());
  EXPECT_TRUE(MessageDifferencer::Equals(model.target(), first.target()));
  EXPECT_TRUE(MessageDifferencer::Equals(model.flow(), first.flow()));
  EXPECT_TRUE(MessageDifferencer::Equals(model.options(), first.options()))
      << model.options().ShortDebugString();
  EXPECT_TRUE(model.options().has_batch_size() && model.options().has_learning_rate());
  EXPECT_TRUE(MessageDifferencer::Equals(model.diagnostics(), first.diagnostics()));
  EXPECT_EQ(model.flow().text(), "planar*2");
  EXPECT_FALSE(model.elbo_trace().empty());
  EXPECT_GE(model.trace_stride(), 1);
  EXPECT_EQ(model.dim(), 2);
  EXPECT_EQ(model.num_params(), first.num_params());
  EXPECT_TRUE(model.has_create_time());
  EXPECT_THAT(model.parameters(), IsEmpty());
  EXPECT_THAT(model.aliases(), IsEmpty());

  v1::Model with_params;
  ASSERT_THAT(GetModel("m/1", &with_params, /*params=*/true), IsOk());
  ASSERT_EQ(with_params.parameters_size(), model.num_params());
  for (double p : with_params.parameters()) EXPECT_TRUE(std::isfinite(p));
  // Two fits with the same request and seed are the same model, bit for bit.
  v1::Model second_params;
  ASSERT_THAT(GetModel("m/2", &second_params, /*params=*/true), IsOk());
  EXPECT_THAT(second_params.parameters(), ::testing::ElementsAreArray(with_params.parameters()));
}

TEST_F(ServiceTest, AliasesAndEveryReferenceForm) {
  ASSERT_EQ(FitAndWait(FitRequest("m", 200)).model_ref(), "m/1");
  v1::SubmitFitRequest other_seed = FitRequest("m", 200);
  other_seed.mutable_options()->set_seed(8);
  ASSERT_EQ(FitAndWait(other_seed).model_ref(), "m/2");

  v1::ModelSummary summary;
  ASSERT_THAT(SetAlias("m", "prod", 1, &summary), IsOk());
  EXPECT_EQ(summary.name(), "m");
  EXPECT_THAT(summary.aliases(), UnorderedElementsAre(Pair("prod", 1)));
  ASSERT_THAT(SetAlias("m", "canary", 2, &summary), IsOk());
  EXPECT_THAT(summary.aliases(), UnorderedElementsAre(Pair("prod", 1), Pair("canary", 2)));

  v1::Model model;
  ASSERT_THAT(GetModel("m@prod", &model), IsOk());
  EXPECT_EQ(model.version(), 1);
  EXPECT_THAT(model.aliases(), ElementsAre("prod"));
  ASSERT_THAT(GetModel("m", &model), IsOk());
  EXPECT_EQ(model.version(), 2);
  EXPECT_THAT(model.aliases(), ElementsAre("canary"));

  // LogDensity says which version answered, for every reference form.
  const std::vector<double> point = {0.5, -1.0};
  v1::LogDensityResponse resp;
  for (const auto& [ref, answered] : std::vector<std::pair<std::string, std::string>>{
           {"m", "m/2"}, {"m/1", "m/1"}, {"m/2", "m/2"}, {"m@prod", "m/1"}, {"m@canary", "m/2"}}) {
    ASSERT_THAT(LogDensity(ref, 2, point, &resp), IsOk()) << ref;
    EXPECT_EQ(resp.model_ref(), answered) << ref;
    ASSERT_THAT(resp.log_q(), SizeIs(1));
  }
  // Different versions are different models.
  v1::LogDensityResponse v1_resp, v2_resp;
  ASSERT_THAT(LogDensity("m/1", 2, point, &v1_resp), IsOk());
  ASSERT_THAT(LogDensity("m/2", 2, point, &v2_resp), IsOk());
  EXPECT_NE(v1_resp.log_q(0), v2_resp.log_q(0));

  // Moving an alias.
  ASSERT_THAT(SetAlias("m", "prod", 2, &summary), IsOk());
  EXPECT_THAT(summary.aliases(), UnorderedElementsAre(Pair("prod", 2), Pair("canary", 2)));
  ASSERT_THAT(LogDensity("m@prod", 2, point, &resp), IsOk());
  EXPECT_EQ(resp.model_ref(), "m/2");
  const std::vector<v1::ModelSummary> models = AllModels();
  ASSERT_THAT(models, SizeIs(1));
  EXPECT_THAT(models[0].aliases(), UnorderedElementsAre(Pair("prod", 2), Pair("canary", 2)));
}

TEST_F(ServiceTest, SampleStreamsChunksReproducibly) {
  ASSERT_EQ(FitAndWait(FitRequest("m", 300)).model_ref(), "m/1");

  const SampleResult a = Sample("m", 10000, 42, /*chunk_size=*/1000);
  ASSERT_THAT(a.status, IsOk());
  ASSERT_THAT(a.chunks, SizeIs(10));
  for (size_t i = 0; i < a.chunks.size(); ++i) {
    EXPECT_EQ(a.chunks[i].dim(), 2);
    EXPECT_EQ(a.chunks[i].offset(), static_cast<int64_t>(i) * 1000);
    EXPECT_EQ(a.chunks[i].values_size(), 2000);
    EXPECT_EQ(a.chunks[i].log_q_size(), 1000);
  }
  ASSERT_THAT(a.values, SizeIs(20000));
  ASSERT_THAT(a.log_q, SizeIs(10000));
  for (double v : a.values) ASSERT_TRUE(std::isfinite(v));
  for (double v : a.log_q) ASSERT_TRUE(std::isfinite(v));

  // Same model, n and seed: the same draws, whatever the chunking.
  const SampleResult again = Sample("m", 10000, 42, 1000);
  ASSERT_THAT(again.status, IsOk());
  EXPECT_EQ(again.values, a.values);
  EXPECT_EQ(again.log_q, a.log_q);
  const SampleResult default_chunks = Sample("m/1", 10000, 42);
  ASSERT_THAT(default_chunks.status, IsOk());
  EXPECT_EQ(default_chunks.values, a.values);
  EXPECT_EQ(default_chunks.log_q, a.log_q);
  int64_t offset = 0;
  for (const v1::SampleChunk& c : default_chunks.chunks) {
    EXPECT_EQ(c.offset(), offset);
    offset += c.log_q_size();
  }
  EXPECT_EQ(offset, 10000);

  // Another seed: other draws.
  const SampleResult b = Sample("m", 10000, 43, 1000);
  ASSERT_THAT(b.status, IsOk());
  ASSERT_THAT(b.values, SizeIs(20000));
  int same = 0;
  for (size_t i = 0; i < a.values.size(); ++i) same += a.values[i] == b.values[i];
  EXPECT_EQ(same, 0);

  // An odd n and chunk size.
  const SampleResult odd = Sample("m", 7, 42, 3);
  ASSERT_THAT(odd.status, IsOk());
  EXPECT_THAT(odd.log_q, SizeIs(7));
  EXPECT_THAT(odd.values, SizeIs(14));
}

TEST_F(ServiceTest, SampledLogQEqualsLogDensityAtTheDraws) {
  ASSERT_EQ(FitAndWait(FitRequest("m", 500)).model_ref(), "m/1");
  const SampleResult s = Sample("m", 10000, 5);
  ASSERT_THAT(s.status, IsOk());
  ASSERT_THAT(s.log_q, SizeIs(10000));

  v1::LogDensityResponse resp;
  ASSERT_THAT(LogDensity("m/1", 2, s.values, &resp), IsOk());
  EXPECT_EQ(resp.model_ref(), "m/1");
  ASSERT_THAT(resp.log_q(), SizeIs(10000));
  int bad = 0;
  for (int i = 0; i < 10000; ++i) {
    if (!(std::abs(resp.log_q(i) - s.log_q[i]) <= 1e-9)) {
      if (++bad <= 5) {
        ADD_FAILURE() << "draw " << i << " (" << s.values[2 * i] << ", " << s.values[2 * i + 1]
                      << "): sampled log q " << s.log_q[i] << ", LogDensity " << resp.log_q(i);
      }
    }
  }
  EXPECT_EQ(bad, 0);

  // An empty request is answered with nothing.
  ASSERT_THAT(LogDensity("m", 2, {}, &resp), IsOk());
  EXPECT_THAT(resp.log_q(), IsEmpty());
}

TEST_F(ServiceTest, DeleteOneVersionThenTheWholeModel) {
  ASSERT_EQ(FitAndWait(FitRequest("m", 200)).model_ref(), "m/1");
  ASSERT_EQ(FitAndWait(FitRequest("m", 200)).model_ref(), "m/2");
  ASSERT_EQ(FitAndWait(FitRequest("keep", 200)).model_ref(), "keep/1");
  v1::ModelSummary summary;
  ASSERT_THAT(SetAlias("m", "prod", 1, &summary), IsOk());

  v1::DeleteModelResponse deleted;
  ASSERT_THAT(DeleteModel("m/1", &deleted), IsOk());
  EXPECT_THAT(deleted.deleted_versions(), ElementsAre(1));
  v1::Model model;
  EXPECT_THAT(GetModel("m/1", &model), StatusIs(grpc::StatusCode::NOT_FOUND));
  // The alias went with its version.
  EXPECT_THAT(GetModel("m@prod", &model), StatusIs(grpc::StatusCode::NOT_FOUND));
  ASSERT_THAT(GetModel("m", &model), IsOk());
  EXPECT_EQ(model.version(), 2);
  std::vector<v1::ModelSummary> models = AllModels();
  ASSERT_THAT(models, SizeIs(2));
  for (const v1::ModelSummary& s : models) {
    if (s.name() == "m") {
      EXPECT_THAT(s.versions(), ElementsAre(2));
      EXPECT_THAT(s.aliases(), IsEmpty());
    }
  }
  // Deleting it again: nothing to delete.
  EXPECT_THAT(DeleteModel("m/1", &deleted), StatusIs(grpc::StatusCode::NOT_FOUND));

  ASSERT_THAT(DeleteModel("m", &deleted), IsOk());
  EXPECT_THAT(deleted.deleted_versions(), ElementsAre(2));
  EXPECT_THAT(GetModel("m", &model), StatusIs(grpc::StatusCode::NOT_FOUND));
  EXPECT_THAT(DeleteModel("m", &deleted), StatusIs(grpc::StatusCode::NOT_FOUND));
  models = AllModels();
  ASSERT_THAT(models, SizeIs(1));
  EXPECT_EQ(models[0].name(), "keep");
  const SampleResult s = Sample("m", 10, 1);
  EXPECT_THAT(s.status, StatusIs(grpc::StatusCode::NOT_FOUND));

  // Versions are never reused.
  EXPECT_EQ(FitAndWait(FitRequest("m", 200)).model_ref(), "m/3");
}

TEST_F(ServiceTest, ListTargetsDescribesTheCatalog) {
  v1::ListTargetsResponse resp;
  ASSERT_THAT(stub_->ListTargets(Context().get(), v1::ListTargetsRequest(), &resp), IsOk());
  ASSERT_FALSE(resp.targets().empty());
  std::map<std::string, v1::TargetInfo> by_name;
  for (const v1::TargetInfo& t : resp.targets()) {
    EXPECT_FALSE(t.description().empty()) << t.name();
    EXPECT_GT(t.default_dim(), 0) << t.name();
    EXPECT_THAT(t.coordinate_names(), SizeIs(t.default_dim())) << t.name();
    for (const v1::ParamInfo& p : t.params()) {
      EXPECT_FALSE(p.description().empty()) << t.name() << "." << p.name();
      EXPECT_FALSE(p.type().empty()) << t.name() << "." << p.name();
    }
    by_name[t.name()] = t;
  }
  EXPECT_EQ(by_name.size(), static_cast<size_t>(resp.targets_size())) << "duplicate names";

  ASSERT_TRUE(by_name.contains("u1"));
  const v1::TargetInfo& u1 = by_name["u1"];
  EXPECT_EQ(u1.default_dim(), 2);
  ASSERT_TRUE(u1.has_log_z());
  EXPECT_NEAR(u1.log_z(), 1.877502, 1e-6);
  EXPECT_TRUE(u1.proper());

  ASSERT_TRUE(by_name.contains("u2"));
  EXPECT_FALSE(by_name["u2"].proper());
  EXPECT_FALSE(by_name["u2"].has_log_z());

  ASSERT_TRUE(by_name.contains("eight_schools"));
  const v1::TargetInfo& es = by_name["eight_schools"];
  EXPECT_EQ(es.default_dim(), 10);
  bool has_schools = false;
  for (const v1::ParamInfo& p : es.params()) {
    if (p.name() == "schools") {
      has_schools = true;
      EXPECT_EQ(p.type(), "int");
      EXPECT_EQ(p.default_value(), "8");
    }
  }
  EXPECT_TRUE(has_schools);
  EXPECT_TRUE(by_name.contains("funnel"));
}

TEST_F(ServiceTest, ListLayersDescribesTheCatalog) {
  v1::ListLayersResponse resp;
  ASSERT_THAT(stub_->ListLayers(Context().get(), v1::ListLayersRequest(), &resp), IsOk());
  ASSERT_FALSE(resp.layers().empty());
  std::set<std::string> types;
  for (const v1::LayerInfo& l : resp.layers()) {
    EXPECT_FALSE(l.description().empty()) << l.type();
    types.insert(l.type());
  }
  EXPECT_TRUE(types.contains("planar"));
  EXPECT_TRUE(types.contains("radial"));
}

TEST_F(ServiceTest, TextAndStructuredFlowFormsAreTheSameFlow) {
  const v1::SubmitFitRequest text = FitRequest("text", 200);
  v1::SubmitFitRequest structured = FitRequest("structured", 200);
  structured.mutable_flow()->clear_text();
  v1::LayerGroup* g = structured.mutable_flow()->add_layers();
  g->set_type("planar");
  g->set_count(2);

  const v1::Job a = FitAndWait(text);
  const v1::Job b = FitAndWait(structured);
  ASSERT_EQ(a.state(), v1::JOB_STATE_SUCCEEDED) << a.ShortDebugString();
  ASSERT_EQ(b.state(), v1::JOB_STATE_SUCCEEDED) << b.ShortDebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(a.flow(), b.flow()))
      << a.flow().ShortDebugString() << " vs " << b.flow().ShortDebugString();
  EXPECT_EQ(b.flow().text(), "planar*2");
  EXPECT_EQ(a.num_params(), b.num_params());
  // Same canonical spec and seed: the same trained parameters.
  v1::Model ma, mb;
  ASSERT_THAT(GetModel("text", &ma, true), IsOk());
  ASSERT_THAT(GetModel("structured", &mb, true), IsOk());
  EXPECT_THAT(mb.parameters(), ::testing::ElementsAreArray(ma.parameters()));

  // A mixed structured spec, with a count of 0 meaning 1.
  v1::SubmitFitRequest mixed = FitRequest("mixed", 100);
  mixed.mutable_flow()->clear_text();
  mixed.mutable_flow()->add_layers()->set_type("radial");
  g = mixed.mutable_flow()->add_layers();
  g->set_type("planar");
  g->set_count(3);
  const v1::Job c = SubmitOk(mixed);
  EXPECT_EQ(c.flow().text(), "radial,planar*3");
  ASSERT_THAT(c.flow().layers(), SizeIs(2));
  EXPECT_EQ(c.flow().layers(0).count(), 1);

  // "meanfield": no layers.
  const v1::Job mf = SubmitOk(FitRequest("mf", 100, "meanfield"));
  EXPECT_EQ(mf.flow().text(), "meanfield");
  EXPECT_THAT(mf.flow().layers(), IsEmpty());
}

TEST_F(ServiceTest, FlowSpecWithBothFormsOrNeitherIsInvalid) {
  v1::SubmitFitRequest both = FitRequest("m", 100);
  both.mutable_flow()->add_layers()->set_type("planar");
  v1::Job job;
  EXPECT_THAT(Submit(both, &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("exactly one")));

  v1::SubmitFitRequest neither = FitRequest("m", 100);
  neither.mutable_flow()->clear_text();
  EXPECT_THAT(Submit(neither, &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("exactly one")));

  v1::SubmitFitRequest no_flow = FitRequest("m", 100);
  no_flow.clear_flow();
  EXPECT_THAT(Submit(no_flow, &job), StatusIs(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(AllJobs(), IsEmpty());
}

}  // namespace
}  // namespace flowvi::server::testing
