#include "server/metrics.h"

#include <chrono>

namespace flowvi::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

Histogram::BucketBoundaries LongBuckets() {
  return {0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200};
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(std::chrono::steady_clock::now()) {
    metrics_->RpcStarted(method_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      code_ = static_cast<int>(methods->GetSendStatus().error_code());
      status_seen_ = true;
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_CLOSE) &&
        !recorded_) {
      recorded_ = true;
      // A call the client dropped before the server answered ends CANCELLED.
      const int code = status_seen_ ? code_ : static_cast<int>(grpc::StatusCode::CANCELLED);
      metrics_->RpcHandled(
          method_, CodeName(code),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    methods->Proceed();
  }

 private:
  Metrics* metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
  int code_ = 0;
  bool status_seen_ = false;
  bool recorded_ = false;
};

}  // namespace

absl::string_view CodeName(int code) {
  static constexpr absl::string_view kNames[] = {"OK",
                                                 "CANCELLED",
                                                 "UNKNOWN",
                                                 "INVALID_ARGUMENT",
                                                 "DEADLINE_EXCEEDED",
                                                 "NOT_FOUND",
                                                 "ALREADY_EXISTS",
                                                 "PERMISSION_DENIED",
                                                 "RESOURCE_EXHAUSTED",
                                                 "FAILED_PRECONDITION",
                                                 "ABORTED",
                                                 "OUT_OF_RANGE",
                                                 "UNIMPLEMENTED",
                                                 "INTERNAL",
                                                 "UNAVAILABLE",
                                                 "DATA_LOSS",
                                                 "UNAUTHENTICATED"};
  if (code < 0 || code >= static_cast<int>(std::size(kNames))) return "UNKNOWN";
  return kNames[code];
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  rpc_started_ = &BuildCounter()
                      .Name("flowvi_rpc_started_total")
                      .Help("RPCs received, by method.")
                      .Register(r);
  rpc_handled_ = &BuildCounter()
                      .Name("flowvi_rpc_handled_total")
                      .Help("RPCs completed, by method and gRPC status code.")
                      .Register(r);
  rpc_duration_ = &BuildHistogram()
                       .Name("flowvi_rpc_duration_seconds")
                       .Help("Time from receiving an RPC to sending its status, by method.")
                       .Register(r);
  jobs_finished_ = &BuildCounter()
                        .Name("flowvi_jobs_finished_total")
                        .Help("Fit jobs that ended, by outcome (succeeded, failed, cancelled).")
                        .Register(r);
  // Every outcome exists from the start, so rate() and alerts see a zero rather than nothing.
  for (const char* outcome : {"succeeded", "failed", "cancelled"}) {
    jobs_finished_->Add({{"outcome", outcome}});
  }
  queue_depth_ = &BuildGauge()
                      .Name("flowvi_queue_depth")
                      .Help("Fit jobs waiting for a worker.")
                      .Register(r)
                      .Add({});
  running_jobs_ = &BuildGauge()
                       .Name("flowvi_running_jobs")
                       .Help("Fit jobs being trained now.")
                       .Register(r)
                       .Add({});
  models_ = &BuildGauge()
                 .Name("flowvi_models")
                 .Help("Model versions in the registry.")
                 .Register(r)
                 .Add({});
  queue_wait_ = &BuildHistogram()
                     .Name("flowvi_queue_wait_seconds")
                     .Help("Time fit jobs spent queued before a worker took them.")
                     .Register(r)
                     .Add({}, LongBuckets());
  fit_duration_ = &BuildHistogram()
                       .Name("flowvi_fit_duration_seconds")
                       .Help("Time from a worker taking a fit job to its end.")
                       .Register(r)
                       .Add({}, LongBuckets());
  iterations_ = &BuildCounter()
                     .Name("flowvi_training_iterations_total")
                     .Help("Optimizer iterations run by all fits.")
                     .Register(r)
                     .Add({});
  samples_ = &BuildCounter()
                  .Name("flowvi_samples_drawn_total")
                  .Help("Draws returned by Sample.")
                  .Register(r)
                  .Add({});
  density_points_ = &BuildCounter()
                         .Name("flowvi_density_points_total")
                         .Help("Points evaluated by LogDensity.")
                         .Register(r)
                         .Add({});
}

void Metrics::RpcStarted(absl::string_view method) {
  rpc_started_->Add({{"method", std::string(method)}}).Increment();
}

void Metrics::RpcHandled(absl::string_view method, absl::string_view code, double seconds) {
  rpc_handled_->Add({{"method", std::string(method)}, {"code", std::string(code)}}).Increment();
  rpc_duration_->Add({{"method", std::string(method)}}, LatencyBuckets()).Observe(seconds);
}

void Metrics::JobFinished(absl::string_view outcome) {
  jobs_finished_->Add({{"outcome", std::string(outcome)}}).Increment();
}

grpc::experimental::Interceptor* MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  // "/flowvi.v1.FlowVI/Sample" -> "flowvi.v1.FlowVI/Sample".
  std::string method = info->method() != nullptr ? info->method() : "unknown";
  if (!method.empty() && method[0] == '/') method.erase(0, 1);
  return new MetricsInterceptor(metrics_, std::move(method));
}

}  // namespace flowvi::server
