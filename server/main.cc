// flowvi-server: the flowvi gRPC service. Every flag has an environment-variable equivalent,
// FLOWVI_<FLAG NAME IN CAPITALS> (e.g. FLOWVI_LISTEN, FLOWVI_METRICS_LISTEN); a flag given on
// the command line wins. Flag names may be written with '-' or '_' (--metrics-listen).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "server/server.h"
#include "server/token_table.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC listen address (host:port)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Prometheus /metrics listen address (host:port); empty disables it");
ABSL_FLAG(std::string, data_dir, "./flowvi-data", "directory for jobs, checkpoints and models");
ABSL_FLAG(int, workers, 2, "fit worker threads");
ABSL_FLAG(int, max_queued, 64, "jobs that may wait in the queue (more: RESOURCE_EXHAUSTED)");
ABSL_FLAG(int, max_dim, 1000, "largest target dimension accepted");
ABSL_FLAG(int, max_layers, 1000, "most layers in a flow spec");
ABSL_FLAG(int, max_batch, 100000, "largest batch_size accepted");
ABSL_FLAG(int64_t, max_iterations, 10000000, "most iterations a fit may ask for");
ABSL_FLAG(int64_t, max_samples, 100000000, "most draws one Sample call may ask for");
ABSL_FLAG(int64_t, max_points, 1000000, "most points one LogDensity call may send");
ABSL_FLAG(int64_t, max_diagnostic_draws, 1000000, "most diagnostic draws a fit may ask for");
ABSL_FLAG(int64_t, diagnostic_draws, 20000, "diagnostic draws when a fit does not say");
ABSL_FLAG(int, max_receive_message_mb, 64, "largest request message in MiB");
ABSL_FLAG(int64_t, max_program_kb, 1024,
          "largest model program or expression (or text in a built-in's parameters), in KiB");
ABSL_FLAG(int64_t, max_data_values, 4 << 20,
          "most numbers a target may hold: a data set's points x dim (inline or streamed), "
          "a built-in's vector parameters");
ABSL_FLAG(int64_t, progress_interval_ms, 100, "least time between progress events of a fit");
ABSL_FLAG(int64_t, shutdown_grace_s, 10, "seconds in-flight RPCs get to finish on shutdown");
ABSL_FLAG(bool, reflection, false, "serve gRPC server reflection (lists the API to anyone)");
ABSL_FLAG(int64_t, checkpoint_interval_ms, 5000, "how often running fits write a checkpoint");
ABSL_FLAG(int, max_finished_jobs, 1000, "finished jobs kept (oldest dropped first)");
ABSL_FLAG(int64_t, max_job_memory_mb, 1024, "estimated working memory one fit may use");
ABSL_FLAG(int64_t, max_data_mb, 64, "largest model data JSON (a program's data) in MiB");
ABSL_FLAG(int64_t, max_tape_nodes, 1000000, "most nodes a compiled model program may have");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate (chain) for TLS on the gRPC port");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA: require and verify client certificates signed by it (mutual TLS)");
ABSL_FLAG(std::string, tokens_file, "",
          "bearer tokens, one per line '<name> <reader|submitter|admin> <sha256-hex-of-token>'; "
          "reloaded on SIGHUP. Empty: no authentication (loopback only)");
ABSL_FLAG(std::string, metrics_auth_file, "",
          "'<user> <sha256-hex-of-password>': HTTP basic auth for /metrics");
ABSL_FLAG(bool, insecure, false,
          "allow a non-loopback address without TLS, tokens or metrics auth (logged)");
ABSL_FLAG(bool, hash_token, false,
          "read a token on standard input, print the SHA-256 hex digest the tokens file wants, "
          "and exit");

namespace {

// FLOWVI_<NAME> for every flag of this program not given on the command line.
void ApplyEnvironment(const std::vector<std::string>& given) {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->Filename().find("server/main.cc") == std::string::npos) continue;
    const std::string env = "FLOWVI_" + absl::AsciiStrToUpper(std::string(name));
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    bool on_command_line = false;
    for (const std::string& g : given) on_command_line |= (g == name);
    if (on_command_line) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "flowvi-server: %s=%s: %s\n", env.c_str(), value, error.c_str());
      std::exit(2);
    }
  }
}

// --hash_token: the token comes on standard input so that it stays out of the shell history
// and the process list; one trailing newline (from echo or a terminal) is not part of it.
int HashToken() {
  std::string token;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) token.append(buf, n);
  absl::string_view t = token;
  if (!absl::ConsumeSuffix(&t, "\r\n")) absl::ConsumeSuffix(&t, "\n");
  if (t.empty()) {
    std::fprintf(stderr, "flowvi-server: --hash_token: no token on standard input\n");
    return 2;
  }
  std::printf("%s\n", flowvi::server::Sha256Hex(t).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "flowvi-server: fits normalizing flows to densities and serves the trained models over "
      "gRPC.\nEvery flag can also be set as FLOWVI_<FLAG> in the environment.");
  // Accept --metrics-listen as well as --metrics_listen, and remember what was given.
  std::vector<std::string> given;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) continue;
    const size_t eq = arg.find('=');
    for (size_t k = 2; k < std::min(eq, arg.size()); ++k) {
      if (arg[k] == '-') argv[i][k] = '_';
    }
    std::string name =
        std::string(argv[i]).substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (name.rfind("no", 0) == 0) given.push_back(name.substr(2));
    given.push_back(name);
  }
  // Signals go to the watcher thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::ParseCommandLine(argc, argv);
  ApplyEnvironment(given);
  if (absl::GetFlag(FLAGS_hash_token)) return HashToken();

  flowvi::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.workers = absl::GetFlag(FLAGS_workers);
  options.max_queued = absl::GetFlag(FLAGS_max_queued);
  options.default_diagnostic_draws = absl::GetFlag(FLAGS_diagnostic_draws);
  options.progress_interval = absl::Milliseconds(absl::GetFlag(FLAGS_progress_interval_ms));
  options.shutdown_grace = absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_s));
  options.enable_reflection = absl::GetFlag(FLAGS_reflection);
  options.limits.max_dim = absl::GetFlag(FLAGS_max_dim);
  options.limits.max_layers = absl::GetFlag(FLAGS_max_layers);
  options.limits.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.limits.max_iterations = absl::GetFlag(FLAGS_max_iterations);
  options.limits.max_samples = absl::GetFlag(FLAGS_max_samples);
  options.limits.max_points = absl::GetFlag(FLAGS_max_points);
  options.limits.max_diagnostic_draws = absl::GetFlag(FLAGS_max_diagnostic_draws);
  options.limits.max_receive_message_bytes = absl::GetFlag(FLAGS_max_receive_message_mb) << 20;
  options.limits.max_job_memory_bytes = absl::GetFlag(FLAGS_max_job_memory_mb) << 20;
  options.limits.model.max_program_bytes = absl::GetFlag(FLAGS_max_program_kb) << 10;
  options.limits.model.max_data_bytes = absl::GetFlag(FLAGS_max_data_mb) << 20;
  options.limits.model.max_tape_nodes = absl::GetFlag(FLAGS_max_tape_nodes);
  options.limits.max_data_values = absl::GetFlag(FLAGS_max_data_values);
  options.checkpoint_interval = absl::Milliseconds(absl::GetFlag(FLAGS_checkpoint_interval_ms));
  options.max_finished_jobs = absl::GetFlag(FLAGS_max_finished_jobs);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  options.metrics_auth_file = absl::GetFlag(FLAGS_metrics_auth_file);
  options.insecure = absl::GetFlag(FLAGS_insecure);

  absl::StatusOr<std::unique_ptr<flowvi::server::Server>> server =
      flowvi::server::Server::BuildAndStart(options);
  if (!server.ok()) {
    std::fprintf(stderr, "flowvi-server: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  std::printf("flowvi-server listening on %s", (*server)->address().c_str());
  if ((*server)->metrics_port() > 0) {
    std::printf(", metrics on port %d", (*server)->metrics_port());
  }
  std::printf("\n");
  std::fflush(stdout);

  // Wait for SIGTERM/SIGINT and shut down on this thread. (A watcher thread calling Shutdown
  // while this one sat in Wait raced ~Server: Wait returns once the gRPC server has stopped,
  // while Shutdown is still stopping the metrics exposer, so main returned and destroyed the
  // Server under it — SIGSEGV in ~Exposer on every SIGTERM.)
  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    // The tokens in force change in one step; a bad file changes nothing.
    absl::StatusOr<size_t> n = (*server)->ReloadTokens();
    if (n.ok()) {
      std::fprintf(stderr, "flowvi-server: SIGHUP: tokens file reloaded, %zu tokens\n", *n);
    } else {
      std::fprintf(stderr,
                   "flowvi-server: SIGHUP: tokens not reloaded, the previous ones stay: "
                   "%s\n",
                   std::string(n.status().message()).c_str());
    }
  }
  std::fprintf(stderr, "flowvi-server: signal %d, shutting down\n", sig);
  (*server)->Shutdown();
  (*server)->Wait();
  return 0;
}
