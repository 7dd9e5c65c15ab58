// Metrics: the server's Prometheus instruments (prometheus-cpp), named the Prometheus way
// (base units, _total counters, no job ids as labels), and a gRPC interceptor that counts and
// times every RPC by method and status code.
//
// Thread-safe: prometheus-cpp instruments are safe to update from any thread.
#ifndef FLOWVI_SERVER_METRICS_H_
#define FLOWVI_SERVER_METRICS_H_

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace flowvi::server {

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void RpcStarted(absl::string_view method);
  void RpcHandled(absl::string_view method, absl::string_view code, double seconds);
  // outcome: "succeeded", "failed", "cancelled".
  void JobFinished(absl::string_view outcome);

  prometheus::Gauge& queue_depth() { return *queue_depth_; }
  prometheus::Gauge& running_jobs() { return *running_jobs_; }
  prometheus::Gauge& models() { return *models_; }
  prometheus::Histogram& queue_wait_seconds() { return *queue_wait_; }
  prometheus::Histogram& fit_duration_seconds() { return *fit_duration_; }
  prometheus::Counter& training_iterations() { return *iterations_; }
  prometheus::Counter& samples_drawn() { return *samples_; }
  prometheus::Counter& density_points() { return *density_points_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* rpc_started_;
  prometheus::Family<prometheus::Counter>* rpc_handled_;
  prometheus::Family<prometheus::Histogram>* rpc_duration_;
  prometheus::Family<prometheus::Counter>* jobs_finished_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* running_jobs_;
  prometheus::Gauge* models_;
  prometheus::Histogram* queue_wait_;
  prometheus::Histogram* fit_duration_;
  prometheus::Counter* iterations_;
  prometheus::Counter* samples_;
  prometheus::Counter* density_points_;
};

// Records RpcStarted/RpcHandled for every RPC the server receives.
class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics* metrics_;
};

// The text name of a status code as Prometheus labels use it ("OK", "NOT_FOUND", ...).
absl::string_view CodeName(int code);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_METRICS_H_
