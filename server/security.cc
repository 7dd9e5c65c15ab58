#include "server/security.h"

#include <grpcpp/security/server_credentials.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/address.h"
#include "server/read_file.h"

namespace flowvi::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag,
                                    absl::string_view kind) {
  absl::StatusOr<std::string> pem = ReadConfigFile(path, flag);
  if (!pem.ok()) return pem.status();
  if (!absl::StrContains(*pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", path, "' does not hold a PEM ", kind));
  }
  return pem;
}

}  // namespace

absl::Status CheckSecurityOptions(const ServerOptions& options,
                                  std::vector<std::string>* warnings) {
  const bool tls = !options.tls_cert_file.empty();
  if (tls != !options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together: give both or neither");
  }
  if (!options.tls_client_ca_file.empty() && !tls) {
    return absl::InvalidArgumentError(
        "--tls_client_ca (mutual TLS) needs --tls_cert and --tls_key as well");
  }
  std::vector<std::string> missing;
  if (!IsLoopbackAddress(options.listen)) {
    if (!tls) {
      missing.push_back(absl::StrCat("gRPC on ", options.listen,
                                     " without TLS (--tls_cert, --tls_key): traffic, tokens "
                                     "included, is readable on the network"));
    }
    if (options.tokens_file.empty()) {
      missing.push_back(absl::StrCat("gRPC on ", options.listen,
                                     " without --tokens_file: anyone who reaches the port is "
                                     "admin"));
    }
  }
  if (!options.metrics_listen.empty() && !IsLoopbackAddress(options.metrics_listen) &&
      options.metrics_auth_file.empty()) {
    missing.push_back(absl::StrCat("metrics on ", options.metrics_listen,
                                   " without --metrics_auth_file: open to anyone"));
  }
  if (missing.empty()) return absl::OkStatus();
  if (options.insecure) {
    for (std::string& m : missing) warnings->push_back(absl::StrCat("INSECURE: ", m));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "refusing to serve ", missing.front(),
      ". Listen on 127.0.0.1, give the missing flag, or pass --insecure (FLOWVI_INSECURE=1) "
      "if something else protects the network"));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options) {
  if (options.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file, "--tls_cert", "certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "--tls_key", "private key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  if (options.tls_client_ca_file.empty()) {
    ssl.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  } else {
    absl::StatusOr<std::string> ca =
        ReadPem(options.tls_client_ca_file, "--tls_client_ca", "CA certificate");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace flowvi::server
