// Bearer-token authentication and roles, end to end through an in-process server: every RPC of
// the service against every kind of caller (no token, malformed header, unknown token, each
// role, a revoked token after a reload), with exact codes; a submitter's own jobs; health open;
// tokens absent from errors and metrics.
//
// The tokens file holds digests made with `printf %s TOKEN | sha256sum` (coreutils), not by the
// code under test.
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/server/generic_call.h"
#include "tests/server/test_server.h"

namespace flowvi::server::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Metadata = std::vector<std::pair<std::string, std::string>>;

constexpr char kReaderToken[] = "reader-token-1";
constexpr char kSubmitterToken[] = "submitter-token-1";
constexpr char kOtherSubmitterToken[] = "submitter-token-2";
constexpr char kAdminToken[] = "admin-token-1";
constexpr char kNewReaderToken[] = "reader-token-2";

constexpr char kTokensFile[] =
    "# name role sha256(token)\n"
    "rita reader 8ed7a3cb498a69b97157eb5c685b8831eabdc118fce9a4c75425920ab3ddf6e0\n"
    "sam submitter dc4183de8b441bed71a0f3443c2ec83c7382f740cab209450c3e73affa62269a\n"
    "\n"
    "sue  submitter\t2861b8d85ee2611caabacfb8c3288a8e0d248e7da9467711f65c328a02f85f05\n"
    "ada admin 01A9119CA65B23539BBC977F36D9318334C72052593C35EDB34CF3B162EC7136\n";

// rita revoked, rob added.
constexpr char kTokensFileAfterRevoke[] =
    "sam submitter dc4183de8b441bed71a0f3443c2ec83c7382f740cab209450c3e73affa62269a\n"
    "sue submitter 2861b8d85ee2611caabacfb8c3288a8e0d248e7da9467711f65c328a02f85f05\n"
    "ada admin 01a9119ca65b23539bbc977f36d9318334c72052593c35edb34cf3b162ec7136\n"
    "rob reader 2d079e21fdbe461516311be4938e2cff3d5c021ab78729f9f3f8407b18c43227\n";

Metadata Bearer(const std::string& token) { return {{"authorization", "Bearer " + token}}; }

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

// One RPC as the matrix test makes it: its request, the least role that may call it, and the
// code an allowed caller gets (set up by the fixture: model "m", a finished job of sam's).
struct RpcCase {
  std::string request;
  int least_role;  // 0 reader, 1 submitter, 2 admin
  grpc::StatusCode allowed_code;
};

class AuthTest : public ServerTest {
 protected:
  // Per process: ctest runs tests of this binary in parallel processes.
  AuthTest() : tokens_path_(absl::StrCat(::testing::TempDir(), "/auth_test_tokens_", getpid())) {
    WriteFile(tokens_path_, kTokensFile);
  }

  ServerOptions Options() const override {
    ServerOptions o = TestServerOptions();
    o.tokens_file = tokens_path_;
    return o;
  }

  void SetUp() override {
    ServerTest::SetUp();
    ASSERT_NE(server_, nullptr);
    // Model "m" (by the admin) and a finished job of sam's.
    v1::Job job;
    grpc::Status s = CallAs(kAdminToken, FitRequest("m", 200), &job, &v1::FlowVI::Stub::SubmitFit);
    ASSERT_THAT(s, IsOk());
    ASSERT_EQ(WaitDoneAs(job.id()).state(), v1::JOB_STATE_SUCCEEDED);
    s = CallAs(kSubmitterToken, FitRequest("sams", 100), &job, &v1::FlowVI::Stub::SubmitFit);
    ASSERT_THAT(s, IsOk());
    sams_job_ = job.id();
    ASSERT_EQ(WaitDoneAs(sams_job_).state(), v1::JOB_STATE_SUCCEEDED);
  }

  template <typename Req, typename Resp>
  grpc::Status CallAs(const std::string& token, const Req& request, Resp* response,
                      grpc::Status (v1::FlowVI::Stub::*method)(grpc::ClientContext*, const Req&,
                                                               Resp*)) {
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return (stub_.get()->*method)(ctx.get(), request, response);
  }

  v1::Job WaitDoneAs(const std::string& id) {
    const absl::Time deadline = absl::Now() + kWaitTimeout;
    v1::GetJobRequest r;
    r.set_job_id(id);
    v1::Job job;
    while (absl::Now() < deadline) {
      EXPECT_THAT(CallAs(kReaderToken, r, &job, &v1::FlowVI::Stub::GetJob), IsOk());
      if (job.done()) return job;
      absl::SleepFor(absl::Milliseconds(5));
    }
    ADD_FAILURE() << "job " << id << " not done";
    return job;
  }

  // Every FlowVI method by name.
  std::map<std::string, RpcCase> Cases() const {
    std::map<std::string, RpcCase> c;
    v1::SubmitFitRequest submit = FitRequest("authfit", 100);
    c["SubmitFit"] = {submit.SerializeAsString(), 1, grpc::StatusCode::OK};
    v1::SubmitFitChunk chunk;
    v1::SubmitFitRequest* data_fit = chunk.mutable_request();
    data_fit->set_model_name("authdata");
    data_fit->mutable_flow()->set_text("meanfield");
    data_fit->mutable_options()->set_iterations(10);
    data_fit->mutable_target()->mutable_data()->set_dim(1);
    for (double x : {0.1, -0.3, 0.7, 1.2, -0.8, 0.4}) {
      data_fit->mutable_target()->mutable_data()->add_values(x);
    }
    chunk.set_num_values(6);
    c["SubmitFitStream"] = {chunk.SerializeAsString(), 1, grpc::StatusCode::OK};
    v1::WatchJobRequest watch;
    watch.set_job_id(sams_job_);
    c["WatchJob"] = {watch.SerializeAsString(), 0, grpc::StatusCode::OK};
    v1::GetJobRequest get_job;
    get_job.set_job_id(sams_job_);
    c["GetJob"] = {get_job.SerializeAsString(), 0, grpc::StatusCode::OK};
    c["ListJobs"] = {v1::ListJobsRequest().SerializeAsString(), 0, grpc::StatusCode::OK};
    v1::CancelJobRequest cancel;
    cancel.set_job_id(sams_job_);  // sam's own, already ended
    c["CancelJob"] = {cancel.SerializeAsString(), 1, grpc::StatusCode::FAILED_PRECONDITION};
    c["ListModels"] = {v1::ListModelsRequest().SerializeAsString(), 0, grpc::StatusCode::OK};
    v1::GetModelRequest get_model;
    get_model.set_model("m");
    c["GetModel"] = {get_model.SerializeAsString(), 0, grpc::StatusCode::OK};
    v1::DeleteModelRequest del;
    del.set_model("no-such-model");
    c["DeleteModel"] = {del.SerializeAsString(), 2, grpc::StatusCode::NOT_FOUND};
    v1::SetAliasRequest alias;
    alias.set_name("m");
    alias.set_alias("prod");
    alias.set_version(1);
    c["SetAlias"] = {alias.SerializeAsString(), 2, grpc::StatusCode::OK};
    v1::SampleRequest sample;
    sample.set_model("m");
    sample.set_n(10);
    c["Sample"] = {sample.SerializeAsString(), 0, grpc::StatusCode::OK};
    v1::LogDensityRequest density;
    density.set_model("m");
    density.set_dim(2);
    density.add_points(0.5);
    density.add_points(-0.5);
    c["LogDensity"] = {density.SerializeAsString(), 0, grpc::StatusCode::OK};
    v1::TargetLogDensityRequest target_density;
    target_density.mutable_target()->mutable_builtin()->set_name("u1");
    target_density.set_dim(2);
    target_density.add_points(0.5);
    target_density.add_points(-0.5);
    c["TargetLogDensity"] = {target_density.SerializeAsString(), 0, grpc::StatusCode::OK};
    c["ListTargets"] = {v1::ListTargetsRequest().SerializeAsString(), 0, grpc::StatusCode::OK};
    c["ListLayers"] = {v1::ListLayersRequest().SerializeAsString(), 0, grpc::StatusCode::OK};
    return c;
  }

  GenericResult Call(const std::string& method, const std::string& request,
                     const Metadata& metadata) {
    return GenericCall(channel_, absl::StrCat("/flowvi.v1.FlowVI/", method), request, metadata);
  }

  std::string tokens_path_;
  std::string sams_job_;
};

TEST_F(AuthTest, TheMatrixCoversEveryMethodOfTheService) {
  std::set<std::string> service_methods;
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("flowvi.v1.FlowVI");
  for (int i = 0; i < service->method_count(); ++i) {
    service_methods.insert(service->method(i)->name());
  }
  std::set<std::string> covered;
  for (const auto& [name, c] : Cases()) covered.insert(name);
  EXPECT_EQ(covered, service_methods);
}

TEST_F(AuthTest, EveryRpcWithoutAValidTokenIsUnauthenticated) {
  const std::vector<std::pair<std::string, Metadata>> callers = {
      {"no token", {}},
      {"unknown token", Bearer("not-a-token")},
      {"a token's digest as the token",
       Bearer("8ed7a3cb498a69b97157eb5c685b8831eabdc118fce9a4c75425920ab3ddf6e0")},
      {"basic scheme", {{"authorization", std::string("Basic ") + kAdminToken}}},
      {"no scheme", {{"authorization", kAdminToken}}},
      {"empty bearer", {{"authorization", "Bearer "}}},
      {"two headers",
       {{"authorization", std::string("Bearer ") + kAdminToken},
        {"authorization", std::string("Bearer ") + kAdminToken}}},
  };
  for (const auto& [method, c] : Cases()) {
    for (const auto& [who, metadata] : callers) {
      GenericResult r = Call(method, c.request, metadata);
      EXPECT_THAT(r.status, StatusIs(grpc::StatusCode::UNAUTHENTICATED)) << method << ", " << who;
      EXPECT_TRUE(r.responses.empty()) << method << ", " << who;
    }
  }
}

TEST_F(AuthTest, EveryRpcAgainstEveryRole) {
  const std::vector<std::pair<std::string, int>> roles = {
      {kReaderToken, 0}, {kSubmitterToken, 1}, {kAdminToken, 2}};
  for (const auto& [method, c] : Cases()) {
    for (const auto& [token, role] : roles) {
      GenericResult r = Call(method, c.request, Bearer(token));
      if (role >= c.least_role) {
        EXPECT_EQ(r.status.error_code(), c.allowed_code)
            << method << " as role " << role << ": " << r.status.error_message();
      } else {
        EXPECT_THAT(r.status, StatusIs(grpc::StatusCode::PERMISSION_DENIED,
                                       HasSubstr(role == 0 ? "'rita'" : "'sam'")))
            << method << " as role " << role;
        EXPECT_TRUE(r.responses.empty()) << method;
      }
    }
  }
}

TEST_F(AuthTest, ARevokedTokenIsRefusedAfterReloadAndANewOneAccepted) {
  GenericResult before = Call("ListTargets", "", Bearer(kReaderToken));
  ASSERT_THAT(before.status, IsOk());
  EXPECT_THAT(Call("ListTargets", "", Bearer(kNewReaderToken)).status,
              StatusIs(grpc::StatusCode::UNAUTHENTICATED));

  WriteFile(tokens_path_, kTokensFileAfterRevoke);
  absl::StatusOr<size_t> n = server_->ReloadTokens();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 4u);
  for (const auto& [method, c] : Cases()) {
    EXPECT_THAT(Call(method, c.request, Bearer(kReaderToken)).status,
                StatusIs(grpc::StatusCode::UNAUTHENTICATED))
        << method;
  }
  EXPECT_THAT(Call("ListTargets", "", Bearer(kNewReaderToken)).status, IsOk());
  EXPECT_THAT(Call("DeleteModel", Cases()["DeleteModel"].request, Bearer(kNewReaderToken)).status,
              StatusIs(grpc::StatusCode::PERMISSION_DENIED, HasSubstr("'rob'")));
}

TEST_F(AuthTest, AFailedReloadKeepsTheTokensInForce) {
  WriteFile(tokens_path_, "rita reader not-a-digest\n");
  absl::StatusOr<size_t> n = server_->ReloadTokens();
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument) << n.status();
  EXPECT_THAT(std::string(n.status().message()), HasSubstr("line 1"));
  EXPECT_THAT(Call("ListTargets", "", Bearer(kReaderToken)).status, IsOk());

  ASSERT_EQ(std::remove(tokens_path_.c_str()), 0);
  n = server_->ReloadTokens();
  EXPECT_EQ(n.status().code(), absl::StatusCode::kNotFound) << n.status();
  EXPECT_THAT(Call("ListTargets", "", Bearer(kReaderToken)).status, IsOk());
  EXPECT_THAT(Call("SetAlias", Cases()["SetAlias"].request, Bearer(kAdminToken)).status, IsOk());
}

TEST_F(AuthTest, ASubmitterListsAndCancelsOnlyItsOwnJobs) {
  v1::Job sams, sues;
  ASSERT_THAT(CallAs(kSubmitterToken, LongFitRequest("a"), &sams, &v1::FlowVI::Stub::SubmitFit),
              IsOk());
  ASSERT_THAT(
      CallAs(kOtherSubmitterToken, LongFitRequest("b"), &sues, &v1::FlowVI::Stub::SubmitFit),
      IsOk());
  EXPECT_EQ(sams.submitted_by(), "sam");
  EXPECT_EQ(sues.submitted_by(), "sue");

  auto list_as = [&](const std::string& token) {
    v1::ListJobsResponse resp;
    EXPECT_THAT(CallAs(token, v1::ListJobsRequest(), &resp, &v1::FlowVI::Stub::ListJobs), IsOk());
    std::set<std::string> ids;
    for (const v1::Job& j : resp.jobs()) ids.insert(j.id());
    return ids;
  };
  EXPECT_EQ(list_as(kSubmitterToken), (std::set<std::string>{sams_job_, sams.id()}));
  EXPECT_EQ(list_as(kOtherSubmitterToken), (std::set<std::string>{sues.id()}));
  EXPECT_EQ(list_as(kAdminToken).size(), 4u);
  EXPECT_EQ(list_as(kReaderToken).size(), 4u);

  v1::CancelJobRequest cancel;
  cancel.set_job_id(sues.id());
  v1::Job out;
  EXPECT_THAT(CallAs(kSubmitterToken, cancel, &out, &v1::FlowVI::Stub::CancelJob),
              StatusIs(grpc::StatusCode::PERMISSION_DENIED, HasSubstr("own")));
  cancel.set_job_id("job-999999");
  EXPECT_THAT(CallAs(kSubmitterToken, cancel, &out, &v1::FlowVI::Stub::CancelJob),
              StatusIs(grpc::StatusCode::NOT_FOUND));
  cancel.set_job_id(sues.id());
  ASSERT_THAT(CallAs(kOtherSubmitterToken, cancel, &out, &v1::FlowVI::Stub::CancelJob), IsOk());
  EXPECT_EQ(out.state(), v1::JOB_STATE_CANCELLED);
  cancel.set_job_id(sams.id());
  ASSERT_THAT(CallAs(kAdminToken, cancel, &out, &v1::FlowVI::Stub::CancelJob), IsOk());
  EXPECT_EQ(out.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(out.submitted_by(), "sam");
}

TEST_F(AuthTest, TheSubmitterIsKeptAcrossARestart) {
  const std::string data_dir = absl::StrCat(::testing::TempDir(), "/auth_test_data_", getpid());
  std::filesystem::remove_all(data_dir);
  ServerOptions o = Options();
  o.data_dir = data_dir;
  std::string id;
  {
    absl::StatusOr<std::unique_ptr<Server>> s = Server::BuildAndStart(o);
    ASSERT_TRUE(s.ok()) << s.status();
    absl::StatusOr<v1::Job> job = (*s)->jobs().Submit(FitRequest("kept", 100), "sam");
    ASSERT_TRUE(job.ok()) << job.status();
    id = job->id();
    (*s)->Shutdown();
  }
  absl::StatusOr<std::unique_ptr<Server>> s = Server::BuildAndStart(o);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::shared_ptr<Job>> job = (*s)->jobs().Get(id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ((*job)->submitted_by(), "sam");
  EXPECT_EQ((*job)->Snapshot().submitted_by(), "sam");
  absl::StatusOr<v1::ListJobsResponse> own = (*s)->jobs().List(v1::ListJobsRequest(), "sam");
  ASSERT_TRUE(own.ok());
  ASSERT_EQ(own->jobs_size(), 1);
  EXPECT_EQ(own->jobs(0).id(), id);
  EXPECT_EQ((*s)->jobs().List(v1::ListJobsRequest(), "sue")->jobs_size(), 0);
  (*s)->Shutdown();
  std::filesystem::remove_all(data_dir);
}

TEST_F(AuthTest, ClientRequestIdsAreScopedToTheirSubmitter) {
  v1::SubmitFitRequest r = FitRequest("keyed", 100);
  r.set_client_request_id("same-key");
  v1::Job a, b, again;
  ASSERT_THAT(CallAs(kSubmitterToken, r, &a, &v1::FlowVI::Stub::SubmitFit), IsOk());
  ASSERT_THAT(CallAs(kOtherSubmitterToken, r, &b, &v1::FlowVI::Stub::SubmitFit), IsOk());
  ASSERT_THAT(CallAs(kSubmitterToken, r, &again, &v1::FlowVI::Stub::SubmitFit), IsOk());
  EXPECT_NE(a.id(), b.id());
  EXPECT_EQ(a.id(), again.id());
  EXPECT_EQ(b.submitted_by(), "sue");
}

TEST_F(AuthTest, HealthNeedsNoToken) {
  // HealthCheckRequest{} is the empty message; SERVING is {status: 1} = 08 01.
  GenericResult r = GenericCall(channel_, "/grpc.health.v1.Health/Check", "");
  ASSERT_THAT(r.status, IsOk());
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0], std::string("\x08\x01", 2));
}

TEST_F(AuthTest, TokensAppearInNoErrorAndNoMetric) {
  const std::string wrong = "wrong-secret-2f9c";
  for (const auto& [method, c] : Cases()) {
    for (const std::string& token : {wrong, std::string(kReaderToken)}) {
      GenericResult r = Call(method, c.request, Bearer(token));
      EXPECT_THAT(r.status.error_message(), Not(HasSubstr(token))) << method;
    }
  }
  const std::string metrics =
      prometheus::TextSerializer().Serialize(server_->metrics().registry()->Collect());
  for (const char* token : {wrong.c_str(), kReaderToken, kSubmitterToken, kAdminToken}) {
    EXPECT_THAT(metrics, Not(HasSubstr(token)));
  }
  EXPECT_THAT(metrics, HasSubstr("UNAUTHENTICATED"));  // the failures are counted, by code
}

}  // namespace
}  // namespace flowvi::server::testing
