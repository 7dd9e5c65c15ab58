#include "server/token_table.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/read_file.h"

namespace flowvi::server {
namespace {

// Names end up in job records, logs and error messages: keep them printable and short.
bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' &&
        c != '@') {
      return false;
    }
  }
  return true;
}

std::optional<Role> ParseRole(absl::string_view text) {
  if (text == "reader") return Role::kReader;
  if (text == "submitter") return Role::kSubmitter;
  if (text == "admin") return Role::kAdmin;
  return std::nullopt;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kSubmitter:
      return "submitter";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

Sha256Digest Sha256(absl::string_view data) {
  Sha256Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

std::string Sha256Hex(absl::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  const Sha256Digest digest = Sha256(data);
  std::string out;
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

std::optional<Sha256Digest> ParseSha256Hex(absl::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  Sha256Digest digest;
  for (size_t i = 0; i < digest.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    digest[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return digest;
}

bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view contents, absl::string_view source) {
  TokenTable table;
  std::set<std::string> names;
  std::set<Sha256Digest> digests;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const std::string where = absl::StrCat(source, " line ", line_number, ": ");
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "expected '<name> <role> <sha256-hex-of-token>', found ",
                       fields.size(), " fields"));
    }
    if (!ValidName(fields[0])) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "the name must be 1-64 letters, digits, '_', '-', '.' or '@'"));
    }
    const std::optional<Role> role = ParseRole(fields[1]);
    if (!role.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "unknown role '", fields[1], "' (reader, submitter or admin)"));
    }
    const std::optional<Sha256Digest> digest = ParseSha256Hex(fields[2]);
    if (!digest.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where,
                       "the third field must be the token's SHA-256 as 64 hex digits (printf %s "
                       "\"$TOKEN\" | sha256sum), not the token itself"));
    }
    if (!names.insert(std::string(fields[0])).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "the name '", fields[0], "' is already used on an earlier line"));
    }
    if (!digests.insert(*digest).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "the same token is already listed on an earlier line"));
    }
    table.entries_.push_back({{std::string(fields[0]), *role}, *digest});
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadConfigFile(path, "tokens file");
  if (!contents.ok()) return contents.status();
  return Parse(*contents, path);
}

std::optional<Principal> TokenTable::Find(absl::string_view token) const {
  const Sha256Digest digest = Sha256(token);
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {
    // No early exit: every entry is compared whatever matched.
    if (DigestsEqual(e.digest, digest)) found = &e;
  }
  if (found == nullptr) return std::nullopt;
  return found->principal;
}

}  // namespace flowvi::server
