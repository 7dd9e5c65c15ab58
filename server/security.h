// The server's transport-security decisions, from ServerOptions: whether the options are safe
// enough to start with (the loopback rule), and the gRPC credentials (TLS, mutual TLS or
// plaintext) for the listening port.
#ifndef FLOWVI_SERVER_SECURITY_H_
#define FLOWVI_SERVER_SECURITY_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/server.h"

namespace flowvi::server {

// InvalidArgument, saying which flag is missing, when an address other than loopback would be
// served without TLS, without a tokens file, or (metrics) without basic auth, and `insecure` is
// not set; also for half a TLS configuration (a certificate without its key, a client CA
// without a certificate). With `insecure`, each such omission is appended to *warnings.
absl::Status CheckSecurityOptions(const ServerOptions& options, std::vector<std::string>* warnings);

// TLS credentials when a certificate is configured (requiring and verifying client
// certificates when a client CA is), plaintext otherwise. Errors: the files' (ReadConfigFile),
// InvalidArgument when one does not hold PEM data.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_SECURITY_H_
