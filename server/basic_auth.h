// BasicAuthCredential: the one user name and password the Prometheus /metrics endpoint accepts
// (HTTP basic auth), read from a file holding `<user> <sha256-hex-of-password>` (one line;
// '#' comments allowed). Only the digest is kept, so the file can sit beside the tokens file
// under the same rules; Prometheus itself reads the clear password from its own secret.
//
// Immutable, hence thread-safe.
#ifndef FLOWVI_SERVER_BASIC_AUTH_H_
#define FLOWVI_SERVER_BASIC_AUTH_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/token_table.h"

namespace flowvi::server {

class BasicAuthCredential {
 public:
  // InvalidArgument naming the file for anything but exactly one well-formed line.
  static absl::StatusOr<BasicAuthCredential> Parse(absl::string_view contents,
                                                   absl::string_view source);
  static absl::StatusOr<BasicAuthCredential> Load(const std::string& path);

  // Both compared in constant time (the user name through its digest too).
  bool Matches(absl::string_view user, absl::string_view password) const;

 private:
  Sha256Digest user_digest_{};
  Sha256Digest password_digest_{};
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_BASIC_AUTH_H_
