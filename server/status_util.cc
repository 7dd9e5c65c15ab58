#include "server/status_util.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace flowvi::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // Messages may quote the request (an id, a name); a huge one would push the trailers over
  // the client's metadata limit and turn the answer into RESOURCE_EXHAUSTED.
  constexpr size_t kMaxMessage = 1024;
  std::string message(status.message());
  if (message.size() > kMaxMessage) {
    size_t cut = kMaxMessage;
    while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
    message = absl::StrCat(message.substr(0, cut), "... (", message.size() - cut, " more bytes)");
  }
  // absl and gRPC share the canonical code numbering (google.rpc.Code).
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

}  // namespace flowvi::server
