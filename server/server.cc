#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/exposer.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "absl/strings/str_cat.h"
#include "server/auth.h"
#include "server/basic_auth.h"
#include "server/data_store.h"
#include "server/metrics.h"
#include "server/parse_error_interceptor.h"
#include "server/registry.h"
#include "server/security.h"
#include "server/service.h"

namespace flowvi::server {

absl::StatusOr<std::unique_ptr<Server>> Server::BuildAndStart(const ServerOptions& options) {
  if (options.workers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("workers must be >= 1, got ", options.workers));
  }
  if (options.max_queued < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queued must be >= 1, got ", options.max_queued));
  }
  if (absl::Status st = options.limits.model.Validate(); !st.ok()) return st;
  std::vector<std::string> warnings;
  if (absl::Status st = CheckSecurityOptions(options, &warnings); !st.ok()) return st;
  for (const std::string& w : warnings) std::fprintf(stderr, "flowvi-server: %s\n", w.c_str());
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options);
  if (!credentials.ok()) return credentials.status();
  std::optional<BasicAuthCredential> metrics_auth;
  if (!options.metrics_auth_file.empty()) {
    absl::StatusOr<BasicAuthCredential> c = BasicAuthCredential::Load(options.metrics_auth_file);
    if (!c.ok()) return c.status();
    metrics_auth = *std::move(c);
  }
  std::unique_ptr<Server> s(new Server());
  s->options_ = options;
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::Create(options.tokens_file);
  if (!auth.ok()) return auth.status();
  s->auth_ = *std::move(auth);
  s->metrics_ = std::make_unique<Metrics>();
  DataStore::Contents contents;
  if (!options.data_dir.empty()) {
    absl::StatusOr<std::unique_ptr<DataStore>> store = DataStore::Open(options.data_dir);
    if (!store.ok()) return store.status();
    s->store_ = *std::move(store);
    contents = s->store_->Load();
  }
  s->registry_ = std::make_unique<ModelRegistry>(s->store_.get(), options.limits.model);
  std::vector<std::string> problems = contents.problems;
  s->registry_->Restore(contents, &problems);
  s->metrics_->models().Set(static_cast<double>(s->registry_->num_versions()));
  JobManagerOptions jm;
  jm.workers = options.workers;
  jm.max_queued = options.max_queued;
  jm.default_diagnostic_draws = options.default_diagnostic_draws;
  jm.progress_interval = options.progress_interval;
  jm.limits = options.limits;
  jm.checkpoint_interval = options.checkpoint_interval;
  jm.max_finished_jobs = options.max_finished_jobs;
  jm.store = s->store_.get();
  s->jobs_ = std::make_unique<JobManager>(jm, s->registry_.get(), s->metrics_.get());
  s->jobs_->Recover(contents, &problems);
  for (const std::string& p : problems)
    std::fprintf(stderr, "flowvi-server: data: %s\n", p.c_str());
  s->service_ = std::make_unique<FlowVIService>(s->jobs_.get(), s->registry_.get(),
                                                s->metrics_.get(), options.limits, s->auth_.get());

  if (!options.metrics_listen.empty()) {
    try {
      s->exposer_ = std::make_unique<prometheus::Exposer>(options.metrics_listen);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", options.metrics_listen, ": ", e.what()));
    }
    if (metrics_auth.has_value()) {
      s->exposer_->RegisterAuth(
          [cred = *metrics_auth](const std::string& user, const std::string& password) {
            return cred.Matches(user, password);
          },
          "flowvi metrics");
    }
    s->exposer_->RegisterCollectable(s->metrics_->registry());
    const std::vector<int> ports = s->exposer_->GetListeningPorts();
    s->metrics_port_ = ports.empty() ? 0 : ports.front();
  }

  grpc::EnableDefaultHealthCheckService(true);
  if (options.enable_reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default on Linux, which would let a second server bind a port
  // this one already serves (and the kernel split connections between them); fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.listen, *credentials, &s->port_);
  builder.RegisterService(s->service_.get());
  builder.SetMaxReceiveMessageSize(options.limits.max_receive_message_bytes);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  // First, so that the metrics count the status it corrects.
  interceptors.push_back(std::make_unique<ParseErrorInterceptorFactory>());
  interceptors.push_back(std::make_unique<MetricsInterceptorFactory>(s->metrics_.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  s->grpc_server_ = builder.BuildAndStart();
  if (s->grpc_server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        options.tls_cert_file.empty()
            ? " (address in use or not valid)"
            : " (address in use or not valid, or the TLS certificate and key do not match)"));
  }
  grpc::HealthCheckServiceInterface* health = s->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(false);
  s->jobs_->Start();
  health->SetServingStatus(true);
  return s;
}

Server::~Server() { Shutdown(); }

absl::StatusOr<size_t> Server::ReloadTokens() { return auth_->Reload(); }

std::string Server::address() const {
  const size_t colon = options_.listen.rfind(':');
  return absl::StrCat(options_.listen.substr(0, colon), ":", port_);
}

void Server::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
  // gRPC's Wait returns once it has stopped; the rest of Shutdown may still be running.
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&shutdown_complete_));
}

void Server::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (grpc_server_ != nullptr) grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  if (jobs_ != nullptr) jobs_->Shutdown();
  if (grpc_server_ != nullptr) {
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoSeconds(options_.shutdown_grace));
  }
  exposer_.reset();
  absl::MutexLock lock(&mu_);
  shutdown_complete_ = true;
}

}  // namespace flowvi::server
