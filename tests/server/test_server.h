// Shared fixture for the server tests: an in-process flowvi::server::Server on ephemeral loopback
// ports, a channel and FlowVI stub to it, request builders, and RPC helpers that wait, watch
// and sample with deadlines (so a hung server fails a test instead of hanging it).
//
// Header-only because tests/server/CMakeLists.txt builds every *_test.cc into one binary.
#ifndef FLOWVI_TESTS_SERVER_TEST_SERVER_H_
#define FLOWVI_TESTS_SERVER_TEST_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flowvi/v1/service.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics.h"
#include "server/server.h"

namespace flowvi::server::testing {

// Every RPC a test makes carries this deadline.
inline constexpr absl::Duration kRpcTimeout = absl::Seconds(30);
// How long a test waits for a job to reach a state before failing.
inline constexpr absl::Duration kWaitTimeout = absl::Seconds(30);

// Matches a grpc::Status by code (and optionally message), printing both on a mismatch.
MATCHER_P(StatusIs, code, "") {
  *result_listener << "whose code is " << CodeName(static_cast<int>(arg.error_code()))
                   << " and message \"" << arg.error_message() << "\"";
  return arg.error_code() == code;
}
MATCHER_P2(StatusIs, code, message_matcher, "") {
  *result_listener << "whose code is " << CodeName(static_cast<int>(arg.error_code()))
                   << " and message \"" << arg.error_message() << "\"";
  return arg.error_code() == code &&
         ::testing::Matches(::testing::Matcher<std::string>(message_matcher))(arg.error_message());
}
MATCHER(IsOk, "") {
  *result_listener << "whose code is " << CodeName(static_cast<int>(arg.error_code()))
                   << " and message \"" << arg.error_message() << "\"";
  return arg.ok();
}

// A server for tests: loopback, ephemeral ports, fast progress, small diagnostics, no metrics
// exposer (tests that need one set metrics_listen).
inline ServerOptions TestServerOptions() {
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "";
  o.workers = 2;
  o.max_queued = 64;
  o.default_diagnostic_draws = 4000;
  o.progress_interval = absl::Milliseconds(10);
  o.shutdown_grace = absl::Seconds(1);
  o.enable_reflection = false;
  return o;
}

// A fit request for a built-in target with the text flow form.
inline v1::SubmitFitRequest FitRequest(const std::string& model_name, int64_t iterations = 500,
                                       const std::string& flow = "planar*2",
                                       const std::string& target = "u1") {
  v1::SubmitFitRequest r;
  r.mutable_target()->mutable_builtin()->set_name(target);
  r.mutable_flow()->set_text(flow);
  r.mutable_options()->set_iterations(iterations);
  r.mutable_options()->set_batch_size(50);
  r.mutable_options()->set_seed(7);
  r.set_model_name(model_name);
  return r;
}

// A fit that runs until it is cancelled (or the server stops).
inline v1::SubmitFitRequest LongFitRequest(const std::string& model_name) {
  v1::SubmitFitRequest r = FitRequest(model_name, 10000000, "planar*8");
  r.mutable_options()->set_batch_size(100);
  return r;
}

inline std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = kRpcTimeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  return ctx;
}

inline absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// Polls GetJob through `stub` until the job is done (ADD_FAILURE on timeout); returns its last
// state. (For tests that run servers of their own; TestServer::WaitDone uses its stub.)
inline v1::Job WaitDone(v1::FlowVI::Stub& stub, const std::string& id,
                        absl::Duration timeout = kWaitTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  v1::GetJobRequest r;
  r.set_job_id(id);
  v1::Job job;
  while (true) {
    grpc::Status s = stub.GetJob(Context().get(), r, &job);
    if (!s.ok()) {
      ADD_FAILURE() << "GetJob(" << id << "): " << s.error_message();
      return job;
    }
    if (job.done()) return job;
    if (absl::Now() > deadline) {
      ADD_FAILURE() << "job " << id << " not done after " << timeout << ": "
                    << job.ShortDebugString();
      return job;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

struct WatchResult {
  std::vector<v1::WatchJobEvent> events;
  grpc::Status status;
};

struct SampleResult {
  std::vector<v1::SampleChunk> chunks;
  grpc::Status status;
  // All the chunks' draws and log q, concatenated.
  std::vector<double> values;
  std::vector<double> log_q;
};

// Checks the shape every complete watch stream must have: a snapshot first, then progress with
// increasing iterations, then one final event in `final_state`, and an OK status.
inline void ExpectWellFormedWatch(const WatchResult& w, v1::JobState final_state) {
  EXPECT_THAT(w.status, IsOk());
  ASSERT_GE(w.events.size(), 2u);
  EXPECT_TRUE(w.events.front().has_snapshot()) << w.events.front().DebugString();
  ASSERT_TRUE(w.events.back().has_final()) << w.events.back().DebugString();
  EXPECT_EQ(w.events.back().final().state(), final_state)
      << w.events.back().final().ShortDebugString();
  EXPECT_TRUE(w.events.back().final().done());
  int64_t last = -1;
  for (size_t i = 1; i + 1 < w.events.size(); ++i) {
    ASSERT_TRUE(w.events[i].has_progress()) << "event " << i << ": " << w.events[i].DebugString();
    EXPECT_GT(w.events[i].progress().iteration(), last) << "event " << i;
    last = w.events[i].progress().iteration();
  }
}

inline std::vector<int64_t> ProgressIterations(const WatchResult& w) {
  std::vector<int64_t> out;
  for (const v1::WatchJobEvent& e : w.events) {
    if (e.has_progress()) out.push_back(e.progress().iteration());
  }
  return out;
}

class ServerTest : public ::testing::Test {
 protected:
  // Tests that need other options override this; SetUp starts the server with them.
  virtual ServerOptions Options() const { return TestServerOptions(); }

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Server>> server = Server::BuildAndStart(Options());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::FlowVI::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  grpc::Status Submit(const v1::SubmitFitRequest& request, v1::Job* job) {
    return stub_->SubmitFit(Context().get(), request, job);
  }

  // Submits a request that must be accepted; returns the job (empty on failure).
  v1::Job SubmitOk(const v1::SubmitFitRequest& request) {
    v1::Job job;
    grpc::Status s = Submit(request, &job);
    EXPECT_THAT(s, IsOk()) << request.ShortDebugString();
    EXPECT_FALSE(job.id().empty());
    return job;
  }

  grpc::Status GetJob(const std::string& id, v1::Job* job) {
    v1::GetJobRequest r;
    r.set_job_id(id);
    return stub_->GetJob(Context().get(), r, job);
  }

  grpc::Status CancelJob(const std::string& id, v1::Job* job) {
    v1::CancelJobRequest r;
    r.set_job_id(id);
    return stub_->CancelJob(Context().get(), r, job);
  }

  // Polls GetJob until the job is done (ADD_FAILURE on timeout); returns its last state.
  v1::Job WaitDone(const std::string& id, absl::Duration timeout = kWaitTimeout) {
    return ::flowvi::server::testing::WaitDone(*stub_, id, timeout);
  }

  // Polls until the job is RUNNING with at least `min_iteration` iterations reported.
  v1::Job WaitRunning(const std::string& id, int64_t min_iteration = 1,
                      absl::Duration timeout = kWaitTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    v1::Job job;
    while (true) {
      grpc::Status s = GetJob(id, &job);
      if (!s.ok()) {
        ADD_FAILURE() << "GetJob(" << id << "): " << s.error_message();
        return job;
      }
      if (job.state() == v1::JOB_STATE_RUNNING && job.progress().iteration() >= min_iteration) {
        return job;
      }
      if (job.done() || absl::Now() > deadline) {
        ADD_FAILURE() << "job " << id << " did not reach RUNNING with " << min_iteration
                      << " iterations: " << job.ShortDebugString();
        return job;
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
  }

  // Submits a short fit and waits for it; returns the finished job.
  v1::Job FitAndWait(const v1::SubmitFitRequest& request) {
    v1::Job job = SubmitOk(request);
    if (job.id().empty()) return job;
    return WaitDone(job.id());
  }

  WatchResult Watch(const std::string& id, int64_t from_iteration = 0) {
    WatchResult w;
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    v1::WatchJobRequest r;
    r.set_job_id(id);
    r.set_from_iteration(from_iteration);
    std::unique_ptr<grpc::ClientReader<v1::WatchJobEvent>> reader = stub_->WatchJob(ctx.get(), r);
    v1::WatchJobEvent e;
    while (reader->Read(&e)) w.events.push_back(e);
    w.status = reader->Finish();
    return w;
  }

  SampleResult Sample(const std::string& model, int64_t n, uint64_t seed, int chunk_size = 0) {
    SampleResult out;
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    v1::SampleRequest r;
    r.set_model(model);
    r.set_n(n);
    r.set_seed(seed);
    r.set_chunk_size(chunk_size);
    std::unique_ptr<grpc::ClientReader<v1::SampleChunk>> reader = stub_->Sample(ctx.get(), r);
    v1::SampleChunk c;
    while (reader->Read(&c)) {
      out.values.insert(out.values.end(), c.values().begin(), c.values().end());
      out.log_q.insert(out.log_q.end(), c.log_q().begin(), c.log_q().end());
      out.chunks.push_back(c);
    }
    out.status = reader->Finish();
    return out;
  }

  grpc::Status ListJobs(const v1::ListJobsRequest& request, v1::ListJobsResponse* response) {
    return stub_->ListJobs(Context().get(), request, response);
  }

  // Every job, newest first.
  std::vector<v1::Job> AllJobs() {
    v1::ListJobsResponse resp;
    EXPECT_THAT(ListJobs(v1::ListJobsRequest(), &resp), IsOk());
    EXPECT_TRUE(resp.next_page_token().empty());
    return {resp.jobs().begin(), resp.jobs().end()};
  }

  std::vector<v1::ModelSummary> AllModels() {
    v1::ListModelsResponse resp;
    EXPECT_THAT(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &resp), IsOk());
    return {resp.models().begin(), resp.models().end()};
  }

  grpc::Status GetModel(const std::string& ref, v1::Model* model, bool params = false) {
    v1::GetModelRequest r;
    r.set_model(ref);
    r.set_include_parameters(params);
    return stub_->GetModel(Context().get(), r, model);
  }

  grpc::Status LogDensity(const std::string& ref, int dim, const std::vector<double>& points,
                          v1::LogDensityResponse* response) {
    v1::LogDensityRequest r;
    r.set_model(ref);
    r.set_dim(dim);
    r.mutable_points()->Add(points.begin(), points.end());
    return stub_->LogDensity(Context().get(), r, response);
  }

  grpc::Status DeleteModel(const std::string& ref, v1::DeleteModelResponse* response) {
    v1::DeleteModelRequest r;
    r.set_model(ref);
    return stub_->DeleteModel(Context().get(), r, response);
  }

  grpc::Status SetAlias(const std::string& name, const std::string& alias, int64_t version,
                        v1::ModelSummary* response) {
    v1::SetAliasRequest r;
    r.set_name(name);
    r.set_alias(alias);
    r.set_version(version);
    return stub_->SetAlias(Context().get(), r, response);
  }

  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FlowVI::Stub> stub_;
};

}  // namespace flowvi::server::testing

#endif  // FLOWVI_TESTS_SERVER_TEST_SERVER_H_
