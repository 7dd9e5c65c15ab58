// The client library under the `flowvi` command: a connection to a flowvi server with per-call
// deadlines, and the one mapping from failures (gRPC statuses, bad usage, bad input files) to
// the CLI's exit codes and one-line messages.
//
// Errors travel as absl::Status. A status made here carries the exit code it stands for as a
// payload; ExitCodeOf() reads it (or derives it from the canonical code for statuses made
// elsewhere). Messages are single lines, ready to print after "flowvi: ".
//
// Thread-compatible: a Client may be used from one thread at a time, except that
// ClientContext objects it makes may be cancelled (TryCancel) from any thread.
#ifndef FLOWVI_CLIENT_CLIENT_H_
#define FLOWVI_CLIENT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flowvi/v1/service.grpc.pb.h"

namespace flowvi::client {

namespace v1 = ::flowvi::v1;

// The process exit codes of `flowvi` (documented in `flowvi --help`).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,             // anything not listed below
  kExitUsage = 2,             // bad command line
  kExitUnreachable = 3,       // no server at the address, or it did not answer in time
  kExitNotFound = 4,          // unknown model, job or target
  kExitInvalid = 5,           // the server rejected the request (bad flow spec, parameter, ...)
  kExitBadInput = 6,          // an input file that cannot be used (CSV, .npy)
  kExitJobFailed = 7,         // the watched job failed or was cancelled
  kExitUnauthenticated = 8,   // no token, or one the server does not accept
  kExitPermissionDenied = 9,  // the token's role does not allow the call
  kExitInterrupted = 130      // Ctrl-C
};

// Statuses that carry their exit code.
absl::Status UsageError(absl::string_view message);
absl::Status BadInputError(absl::string_view message);
absl::Status JobFailedError(absl::string_view message);
absl::Status InterruptedError(absl::string_view message);
absl::Status WithExitCode(absl::Status status, ExitCode code);

// The exit code for `status` (kExitOk for OK): its payload if it has one, otherwise by
// canonical code (UNAVAILABLE/DEADLINE_EXCEEDED 3, NOT_FOUND 4, INVALID_ARGUMENT/OUT_OF_RANGE
// 5, UNAUTHENTICATED 8, PERMISSION_DENIED 9, everything else 1).
int ExitCodeOf(const absl::Status& status);

// The status message on one line (newlines become "; ").
std::string OneLine(absl::string_view message);

struct ClientOptions {
  // host:port of the server. Default: $FLOWVI_SERVER, else 127.0.0.1:50051.
  std::string server;
  // Deadline of each unary call. Streams (WatchJob, Sample) have none.
  absl::Duration timeout = absl::Seconds(30);
  // TLS: on with `tls`; `ca_pem` empty trusts the system's roots. `cert_pem`/`key_pem` (both or
  // neither) are the client certificate for servers that require one (mutual TLS).
  bool tls = false;
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  // Sent as `authorization: Bearer <token>` with every call when not empty.
  std::string token;
};

// The server address from the environment, or the built-in default.
std::string DefaultServerAddress();

class Client {
 public:
  explicit Client(ClientOptions options);

  const std::string& address() const { return options_.server; }
  absl::Duration timeout() const { return options_.timeout; }
  v1::FlowVI::Stub* stub() { return stub_.get(); }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // A context for one call; `deadline` false for streams.
  std::unique_ptr<grpc::ClientContext> NewContext(bool deadline = true) const;

  // grpc::Status to absl::Status with a one-line message that says what failed; `what` names
  // the call for messages that need it ("listing models"). UNAVAILABLE and DEADLINE_EXCEEDED
  // become messages about reaching the server at address().
  absl::Status FromRpc(const grpc::Status& status, absl::string_view what) const;

  // Unary calls with the deadline.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(grpc::Status (v1::FlowVI::Stub::*method)(grpc::ClientContext*,
                                                                         const Request&, Response*),
                                const Request& request, absl::string_view what) {
    std::unique_ptr<grpc::ClientContext> ctx = NewContext();
    Response response;
    grpc::Status s = (stub_.get()->*method)(ctx.get(), request, &response);
    if (!s.ok()) return FromRpc(s, what);
    return response;
  }

  absl::StatusOr<v1::Model> GetModel(absl::string_view ref, bool include_parameters = false);
  absl::StatusOr<v1::Job> GetJob(absl::string_view id);

  // grpc.health.v1.Health/Check for the whole server: "SERVING", "NOT_SERVING", ...
  absl::StatusOr<std::string> HealthCheck();

 private:
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FlowVI::Stub> stub_;
};

}  // namespace flowvi::client

#endif  // FLOWVI_CLIENT_CLIENT_H_
