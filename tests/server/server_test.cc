// Server lifecycle: BuildAndStart's checks and errors, ports, and Shutdown while work is in
// flight.
#include <string>
#include <thread>

#include "tests/server/test_server.h"

namespace flowvi::server::testing {
namespace {

using ::testing::HasSubstr;

TEST(ServerStartTest, RejectsBadOptions) {
  ServerOptions o = TestServerOptions();
  o.workers = 0;
  absl::StatusOr<std::unique_ptr<Server>> s = Server::BuildAndStart(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("workers"));

  o = TestServerOptions();
  o.max_queued = 0;
  s = Server::BuildAndStart(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("max_queued"));

  o = TestServerOptions();
  o.listen = "not an address";
  o.insecure = true;  // past the loopback rule (security_test.cc), to gRPC's own check
  s = Server::BuildAndStart(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("not an address"));
}

TEST(ServerStartTest, AddressInUseIsUnavailable) {
  ServerOptions o = TestServerOptions();
  o.metrics_listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<Server>> first = Server::BuildAndStart(o);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->address(), absl::StrCat("127.0.0.1:", (*first)->port()));

  // The gRPC port of a running server.
  ServerOptions same_port = TestServerOptions();
  same_port.listen = (*first)->address();
  absl::StatusOr<std::unique_ptr<Server>> second = Server::BuildAndStart(same_port);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_THAT(second.status().message(), HasSubstr(same_port.listen));

  // Its metrics port.
  ServerOptions same_metrics = TestServerOptions();
  same_metrics.metrics_listen = absl::StrCat("127.0.0.1:", (*first)->metrics_port());
  second = Server::BuildAndStart(same_metrics);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_THAT(second.status().message(), HasSubstr(same_metrics.metrics_listen));

  // The first server is unaffected.
  auto stub = v1::FlowVI::NewStub(
      grpc::CreateChannel((*first)->address(), grpc::InsecureChannelCredentials()));
  v1::ListTargetsResponse targets;
  EXPECT_THAT(stub->ListTargets(Context().get(), v1::ListTargetsRequest(), &targets), IsOk());
  (*first)->Shutdown();
}

class ShutdownTest : public ServerTest {};

// Shutdown stops a running fit within an iteration (without a data directory it ends
// CANCELLED), ends its watchers' streams, and returns well within the grace period.
TEST_F(ShutdownTest, StopsRunningFitsAndEndsWatches) {
  const v1::Job running = SubmitOk(LongFitRequest("long"));
  ASSERT_EQ(WaitRunning(running.id()).state(), v1::JOB_STATE_RUNNING);
  WatchResult watched;
  std::thread watcher([&] { watched = Watch(running.id()); });
  absl::SleepFor(absl::Milliseconds(50));  // let the watcher attach

  const absl::Time start = absl::Now();
  server_->Shutdown();
  const absl::Duration took = absl::Now() - start;
  watcher.join();
  EXPECT_LT(took, TestServerOptions().shutdown_grace) << took;
  ASSERT_FALSE(watched.events.empty());
  EXPECT_TRUE(watched.events.front().has_snapshot());
  EXPECT_EQ(server_->jobs().Get(running.id()).value()->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(server_->registry().List(), ::testing::IsEmpty());

  // Shutdown is idempotent, and the server no longer answers.
  server_->Shutdown();
  v1::Job job;
  EXPECT_THAT(GetJob(running.id(), &job), StatusIs(grpc::StatusCode::UNAVAILABLE));
}

}  // namespace
}  // namespace flowvi::server::testing
