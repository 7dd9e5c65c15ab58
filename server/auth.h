// Authenticator: who is calling an RPC (from its `authorization: Bearer <token>` metadata and
// the tokens file) and whether their role allows the call.
//
// The check runs at the top of every FlowVI handler rather than in an interceptor: gRPC C++
// server interceptors cannot end a call with a status of their choosing (grpc/grpc#24017), and
// an AuthMetadataProcessor cannot be attached to the insecure credentials a loopback or
// --insecure server uses. tests/server/auth_test.cc calls every method of the service's
// descriptor, so a handler without the check fails a test.
//
// Without a tokens file authentication is off and every caller is the anonymous admin; the
// server only allows that on loopback (or with --insecure, see server.h).
//
// Thread-safe: Reload swaps the table atomically; calls in flight keep the table they started
// with.
#ifndef FLOWVI_SERVER_AUTH_H_
#define FLOWVI_SERVER_AUTH_H_

#include <grpcpp/support/string_ref.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/token_table.h"

namespace flowvi::server {

class Authenticator {
 public:
  // Empty `tokens_file`: authentication off. Otherwise loads it (its errors as
  // TokenTable::Load).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const std::string& tokens_file);

  bool enabled() const { return !tokens_file_.empty(); }

  // Re-reads the tokens file and replaces the table at once; on any error the old table stays
  // in force and the error says why. Returns the number of tokens now accepted.
  absl::StatusOr<size_t> Reload();

  // The caller of `rpc` if it may make the call with role `needed` or above. UNAUTHENTICATED
  // without a bearer token or with one the table does not hold; PERMISSION_DENIED when the
  // principal's role is below `needed`. Messages name the principal, never the token.
  absl::StatusOr<Principal> Authorize(
      const std::multimap<grpc::string_ref, grpc::string_ref>& metadata, Role needed,
      absl::string_view rpc) const;

 private:
  explicit Authenticator(std::string tokens_file) : tokens_file_(std::move(tokens_file)) {}

  const std::string tokens_file_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_AUTH_H_
