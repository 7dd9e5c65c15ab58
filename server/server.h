// Server: flowvi-server's parts wired together — the gRPC server (FlowVI service, the standard
// health service, reflection), the job manager and its workers, the model registry, and the
// Prometheus exposer — in the manner of TensorFlow Serving's Server: Options, BuildAndStart,
// Wait, Shutdown.
//
// Thread-safe: Shutdown may be called from any thread (e.g. a signal watcher) while another
// thread is in Wait.
#ifndef FLOWVI_SERVER_SERVER_H_
#define FLOWVI_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/job_manager.h"
#include "server/limits.h"

namespace grpc {
class Server;
}
namespace prometheus {
class Exposer;
}

namespace flowvi::server {

class Authenticator;
class DataStore;
class FlowVIService;
class Metrics;
class ModelRegistry;

struct ServerOptions {
  // gRPC address; port 0 picks a free port (see Server::port()).
  std::string listen = "127.0.0.1:50051";
  // Prometheus /metrics address; empty disables the exposer; port 0 picks a free port.
  std::string metrics_listen = "127.0.0.1:9464";
  // Where jobs, checkpoints and models are kept; empty keeps everything in memory only.
  std::string data_dir;
  // Running fits checkpoint this often.
  absl::Duration checkpoint_interval = absl::Seconds(5);
  // Finished jobs kept (models stay until deleted).
  int max_finished_jobs = 1000;
  int workers = 2;
  int max_queued = 64;
  int64_t default_diagnostic_draws = 20000;
  absl::Duration progress_interval = absl::Milliseconds(100);
  // How long Shutdown lets in-flight RPCs finish before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // gRPC server reflection lets anyone who reaches the port list the API; off unless asked.
  bool enable_reflection = false;
  Limits limits;

  // Security (README, "Security"). With a certificate and key the gRPC port speaks TLS only;
  // with a client CA as well, it requires and verifies client certificates (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Bearer tokens with roles (TokenTable); empty: no authentication, every caller is admin.
  std::string tokens_file;
  // `<user> <sha256-hex-of-password>` for HTTP basic auth on /metrics; empty: open.
  std::string metrics_auth_file;
  // Safe defaults: an address other than loopback needs TLS and a tokens file (and /metrics
  // on such an address needs basic auth), unless this is set; each omission is then logged.
  bool insecure = false;
};

class Server {
 public:
  // Builds and starts everything; with a data directory, first rebuilds the registry and the
  // jobs from it (damaged records are reported on stderr and skipped). Health is SERVING once
  // this returns OK. Errors: InvalidArgument (options, including an unsafe listen address —
  // see `insecure` — and unusable TLS or tokens files), NotFound / PermissionDenied (a
  // security file that cannot be read), Unavailable (address in use, naming it), the data
  // directory's errors (see DataStore::Open).
  static absl::StatusOr<std::unique_ptr<Server>> BuildAndStart(const ServerOptions& options);
  ~Server();

  // The bound ports (useful with port 0).
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const;

  // Re-reads the tokens file (e.g. on SIGHUP). On error the tokens in force stay and the
  // status says why; FailedPrecondition without a tokens file. Returns the number of tokens.
  absl::StatusOr<size_t> ReloadTokens();

  // Blocks until Shutdown (called by another thread) has completed.
  void Wait();
  // Health NOT_SERVING, stop accepting, stop fits, drain RPCs for the grace period, stop.
  void Shutdown();

  ModelRegistry& registry() { return *registry_; }
  JobManager& jobs() { return *jobs_; }
  Metrics& metrics() { return *metrics_; }

 private:
  Server() = default;

  ServerOptions options_;
  std::unique_ptr<DataStore> store_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<FlowVIService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  int metrics_port_ = 0;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_complete_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_SERVER_H_
