// Reading the small configuration files the server is pointed at (tokens, TLS certificates and
// keys, metrics credentials), with errors that name the file and what it was for.
#ifndef FLOWVI_SERVER_READ_FILE_H_
#define FLOWVI_SERVER_READ_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flowvi::server {

// The whole file. `what` says what the file is for ("--tls_cert"). NotFound when it does not
// exist, PermissionDenied when it cannot be read, InvalidArgument when it is not a regular
// file or is larger than 1 MiB (no such configuration file is that large).
absl::StatusOr<std::string> ReadConfigFile(const std::string& path, absl::string_view what);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_READ_FILE_H_
