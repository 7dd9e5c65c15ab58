#include "server/basic_auth.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/read_file.h"

namespace flowvi::server {

absl::StatusOr<BasicAuthCredential> BasicAuthCredential::Parse(absl::string_view contents,
                                                               absl::string_view source) {
  std::vector<std::vector<absl::string_view>> lines;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    lines.push_back(absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty()));
  }
  const std::string expected = "expected one line '<user> <sha256-hex-of-password>'";
  if (lines.size() != 1 || lines[0].size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", expected));
  }
  std::optional<Sha256Digest> password = ParseSha256Hex(lines[0][1]);
  if (!password.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", expected,
                     "; the password's digest must be 64 hex digits (printf %s "
                     "\"$PASSWORD\" | sha256sum)"));
  }
  BasicAuthCredential c;
  c.user_digest_ = Sha256(lines[0][0]);
  c.password_digest_ = *password;
  return c;
}

absl::StatusOr<BasicAuthCredential> BasicAuthCredential::Load(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadConfigFile(path, "metrics auth file");
  if (!contents.ok()) return contents.status();
  return Parse(*contents, path);
}

bool BasicAuthCredential::Matches(absl::string_view user, absl::string_view password) const {
  // Both compared, whatever the first says.
  const bool user_ok = DigestsEqual(Sha256(user), user_digest_);
  const bool password_ok = DigestsEqual(Sha256(password), password_digest_);
  return user_ok & password_ok;
}

}  // namespace flowvi::server
