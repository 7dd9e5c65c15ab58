// The standard gRPC health service (grpc.health.v1.Health) and the Prometheus /metrics page.
//
// Debian ships neither grpc/health/v1/health.proto nor generated stubs for it, so the health
// calls go through grpc::GenericStub with the two tiny messages encoded by hand:
// HealthCheckRequest{string service = 1} and HealthCheckResponse{ServingStatus status = 1}
// (UNKNOWN = 0, SERVING = 1, NOT_SERVING = 2, SERVICE_UNKNOWN = 3).
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "tests/server/test_server.h"

namespace flowvi::server::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

constexpr int kServing = 1;
constexpr int kNotServing = 2;

std::string EncodeHealthRequest(const std::string& service) {
  if (service.empty()) return "";   // proto3 leaves a default string out
  EXPECT_LT(service.size(), 128u);  // a one-byte length varint
  return absl::StrCat(std::string(1, '\x0a'), std::string(1, static_cast<char>(service.size())),
                      service);
}

// The status of a HealthCheckResponse; -1 if it is not one.
int DecodeHealthResponse(const std::string& bytes) {
  if (bytes.empty()) return 0;
  if (bytes.size() != 2 || bytes[0] != '\x08') return -1;
  return static_cast<unsigned char>(bytes[1]);
}

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// grpc.health.v1.Health/Check; returns the RPC status and the serving status.
grpc::Status HealthCheck(grpc::GenericStub* stub, const std::string& service, int* serving) {
  std::unique_ptr<grpc::ClientContext> ctx = Context();
  const grpc::ByteBuffer request = ToByteBuffer(EncodeHealthRequest(service));
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub->UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                  &response, [&](grpc::Status s) {
                    status = std::move(s);
                    done.Notify();
                  });
  done.WaitForNotification();
  *serving = status.ok() ? DecodeHealthResponse(FromByteBuffer(response)) : -1;
  return status;
}

// A grpc.health.v1.Health/Watch stream: records every status it is sent.
class HealthWatcher : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  HealthWatcher(grpc::GenericStub* stub, const std::string& service)
      : request_(ToByteBuffer(EncodeHealthRequest(service))) {
    ctx_.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(kRpcTimeout));
    stub->PrepareBidiStreamingCall(&ctx_, "/grpc.health.v1.Health/Watch", grpc::StubOptions(),
                                   this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    {
      absl::MutexLock lock(&mu_);
      statuses_.push_back(DecodeHealthResponse(FromByteBuffer(response_)));
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& s) override {
    absl::MutexLock lock(&mu_);
    final_status_ = s;
    done_ = true;
  }

  // Waits until the stream has sent `status` (true) or the timeout passes (false).
  bool WaitFor(int status, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto seen = [this, status]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::find(statuses_.begin(), statuses_.end(), status) != statuses_.end();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
  }

  void Cancel() { ctx_.TryCancel(); }

  // Waits for OnDone; returns the stream's status.
  grpc::Status Await() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return final_status_;
  }

  std::vector<int> statuses() {
    absl::MutexLock lock(&mu_);
    return statuses_;
  }

 private:
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  absl::Mutex mu_;
  std::vector<int> statuses_ ABSL_GUARDED_BY(mu_);
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

class HealthTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    generic_ = std::make_unique<grpc::GenericStub>(channel_);
  }
  std::unique_ptr<grpc::GenericStub> generic_;
};

TEST_F(HealthTest, ServingWhileRunning) {
  int serving = -1;
  ASSERT_THAT(HealthCheck(generic_.get(), "", &serving), IsOk());
  EXPECT_EQ(serving, kServing);
  // Unknown services are NOT_FOUND, as the health protocol says.
  EXPECT_THAT(HealthCheck(generic_.get(), "no.such.Service", &serving),
              StatusIs(grpc::StatusCode::NOT_FOUND));
  // Still serving while a fit runs.
  const v1::Job job = SubmitOk(LongFitRequest("long"));
  WaitRunning(job.id());
  ASSERT_THAT(HealthCheck(generic_.get(), "", &serving), IsOk());
  EXPECT_EQ(serving, kServing);
}

// Shutdown turns health NOT_SERVING before it stops accepting calls: a health watcher (as a
// load balancer would have) sees SERVING, then NOT_SERVING once Shutdown begins. The watcher
// then hangs up so that Shutdown need not wait out its grace period.
TEST_F(HealthTest, ShutdownTurnsNotServingFirst) {
  HealthWatcher watcher(generic_.get(), "");
  ASSERT_TRUE(watcher.WaitFor(kServing, absl::Seconds(10)))
      << ::testing::PrintToString(watcher.statuses());

  std::thread shutdown([this] { server_->Shutdown(); });
  const bool saw_not_serving = watcher.WaitFor(kNotServing, absl::Seconds(10));
  watcher.Cancel();
  const grpc::Status final_status = watcher.Await();
  shutdown.join();
  EXPECT_TRUE(saw_not_serving) << ::testing::PrintToString(watcher.statuses());
  EXPECT_EQ(watcher.statuses().front(), kServing);
  EXPECT_FALSE(final_status.ok());

  // Calls after Shutdown fail.
  int serving = -1;
  EXPECT_FALSE(HealthCheck(generic_.get(), "", &serving).ok());
}

// GET http://127.0.0.1:<port><path> over a plain socket; returns the body (empty on failure).
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if (send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      char buf[8192];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  EXPECT_THAT(response, HasSubstr(" 200 ")) << response.substr(0, 200);
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of one series (e.g. `flowvi_models` or `x_total{code="OK"}`) in a text exposition.
std::optional<double> SeriesValue(const std::string& page, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      return std::strtod(std::string(line.substr(series.size() + 1)).c_str(), nullptr);
    }
  }
  return std::nullopt;
}

class MetricsTest : public ServerTest {
 protected:
  ServerOptions Options() const override {
    ServerOptions o = TestServerOptions();
    o.metrics_listen = "127.0.0.1:0";
    return o;
  }

  // Polls /metrics until `series` has `value` (RPCs are counted as their calls close, which
  // may be just after the client has its answer); returns the last value seen.
  std::optional<double> WaitForSeries(const std::string& series, double value) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    std::optional<double> v;
    while (true) {
      v = SeriesValue(HttpGet(server_->metrics_port(), "/metrics"), series);
      if ((v.has_value() && *v == value) || absl::Now() > deadline) return v;
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
};

TEST_F(MetricsTest, CountsRpcsByCodeAndWork) {
  ASSERT_GT(server_->metrics_port(), 0);
  const std::string not_found_get_job =
      "flowvi_rpc_handled_total{code=\"NOT_FOUND\",method=\"flowvi.v1.FlowVI/GetJob\"}";
  const std::string samples = "flowvi_samples_drawn_total";
  const std::string page = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_THAT(page, HasSubstr("# TYPE flowvi_samples_drawn_total counter"));
  EXPECT_EQ(SeriesValue(page, not_found_get_job), std::nullopt);
  EXPECT_EQ(SeriesValue(page, samples), 0.0);
  EXPECT_EQ(SeriesValue(page, "flowvi_models"), 0.0);

  v1::Job job;
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(GetJob(absl::StrCat("job-none-", i), &job), StatusIs(grpc::StatusCode::NOT_FOUND));
  }
  EXPECT_EQ(WaitForSeries(not_found_get_job, 3), 3.0);

  // A fit, a rejected fit, a Sample, a LogDensity and a missing watch.
  const v1::Job fitted = FitAndWait(FitRequest("m", 200));
  ASSERT_EQ(fitted.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_THAT(Submit(FitRequest("m", 0), &job), StatusIs(grpc::StatusCode::INVALID_ARGUMENT));
  const SampleResult s = Sample("m", 1234, 1);
  ASSERT_THAT(s.status, IsOk());
  v1::LogDensityResponse ld;
  ASSERT_THAT(LogDensity("m", 2, {0, 1, 1, 0, 2, 2}, &ld), IsOk());
  EXPECT_THAT(Watch("job-none").status, StatusIs(grpc::StatusCode::NOT_FOUND));

  EXPECT_EQ(WaitForSeries(samples, 1234), 1234.0);
  EXPECT_EQ(WaitForSeries("flowvi_density_points_total", 3), 3.0);
  EXPECT_EQ(WaitForSeries("flowvi_training_iterations_total", 200), 200.0);
  EXPECT_EQ(WaitForSeries("flowvi_jobs_finished_total{outcome=\"succeeded\"}", 1), 1.0);
  EXPECT_EQ(WaitForSeries("flowvi_models", 1), 1.0);
  EXPECT_EQ(WaitForSeries("flowvi_queue_depth", 0), 0.0);
  EXPECT_EQ(WaitForSeries("flowvi_running_jobs", 0), 0.0);
  EXPECT_EQ(WaitForSeries("flowvi_rpc_handled_total{code=\"OK\",method=\"flowvi.v1.FlowVI/"
                          "SubmitFit\"}",
                          1),
            1.0);
  EXPECT_EQ(WaitForSeries("flowvi_rpc_handled_total{code=\"INVALID_ARGUMENT\",method=\"flowvi."
                          "v1.FlowVI/SubmitFit\"}",
                          1),
            1.0);
  EXPECT_EQ(WaitForSeries("flowvi_rpc_handled_total{code=\"OK\",method=\"flowvi.v1.FlowVI/"
                          "Sample\"}",
                          1),
            1.0);
  EXPECT_EQ(WaitForSeries("flowvi_rpc_handled_total{code=\"NOT_FOUND\",method=\"flowvi.v1."
                          "FlowVI/WatchJob\"}",
                          1),
            1.0);
  EXPECT_EQ(WaitForSeries(not_found_get_job, 3), 3.0);
  EXPECT_EQ(WaitForSeries("flowvi_rpc_started_total{method=\"flowvi.v1.FlowVI/Sample\"}", 1), 1.0);
  const std::string final_page = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_THAT(final_page, HasSubstr("flowvi_rpc_duration_seconds_bucket{method=\"flowvi.v1.FlowVI/"
                                    "GetJob\""));
  EXPECT_THAT(final_page, HasSubstr("flowvi_fit_duration_seconds_count 1"));
}

// Two servers in one process each get their own free metrics port and their own counters.
TEST_F(MetricsTest, EachServerHasItsOwnRegistry) {
  absl::StatusOr<std::unique_ptr<Server>> other = Server::BuildAndStart(Options());
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE((*other)->metrics_port(), server_->metrics_port());
  EXPECT_NE((*other)->port(), server_->port());
  v1::Job job;
  EXPECT_THAT(GetJob("job-none", &job), StatusIs(grpc::StatusCode::NOT_FOUND));
  const std::string series =
      "flowvi_rpc_handled_total{code=\"NOT_FOUND\",method=\"flowvi.v1.FlowVI/GetJob\"}";
  EXPECT_EQ(WaitForSeries(series, 1), 1.0);
  EXPECT_EQ(SeriesValue(HttpGet((*other)->metrics_port(), "/metrics"), series), std::nullopt);
  (*other)->Shutdown();
}

}  // namespace
}  // namespace flowvi::server::testing
