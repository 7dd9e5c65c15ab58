// The one place where absl::Status becomes grpc::Status (canonical codes map one to one;
// messages longer than 1 KiB are cut, so that quoting a huge request cannot break the reply).
#ifndef FLOWVI_SERVER_STATUS_UTIL_H_
#define FLOWVI_SERVER_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace flowvi::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_STATUS_UTIL_H_
