// TokenTable: the bearer tokens a server accepts, as read from a tokens file, and the lookup
// from a presented token to the principal (name and role) it belongs to.
//
// The file holds one token per line, `<name> <role> <sha256-hex-of-token>`; blank lines and
// lines starting with '#' are ignored. Only SHA-256 digests are kept (in the file and in
// memory), so a leaked file or core dump does not leak usable tokens; a digest is made with
// `printf %s "$TOKEN" | sha256sum` or `flowvi-server --hash_token`. Tokens are random secrets
// (not passwords), so an unsalted fast hash is enough.
//
// Immutable after Parse, hence thread-safe.
#ifndef FLOWVI_SERVER_TOKEN_TABLE_H_
#define FLOWVI_SERVER_TOKEN_TABLE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flowvi::server {

// What a principal may do; each role includes the ones before it.
enum class Role { kReader = 0, kSubmitter = 1, kAdmin = 2 };

absl::string_view RoleName(Role role);

// The authenticated caller of one RPC.
struct Principal {
  std::string name;
  Role role = Role::kReader;
};

using Sha256Digest = std::array<uint8_t, 32>;

// SHA-256 (OpenSSL) of `data`.
Sha256Digest Sha256(absl::string_view data);
// Lower-case hex of SHA-256 of `data`, as sha256sum prints it.
std::string Sha256Hex(absl::string_view data);
// Parses 64 hex digits (either case); nullopt otherwise.
std::optional<Sha256Digest> ParseSha256Hex(absl::string_view hex);
// Constant-time equality of two digests (OpenSSL CRYPTO_memcmp).
bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b);

class TokenTable {
 public:
  // Parses a tokens file's contents. InvalidArgument naming the line for a malformed line, an
  // unknown role, a bad digest, a duplicated name or digest. `source` names the file in
  // messages. Digests never appear in messages (they identify tokens).
  static absl::StatusOr<TokenTable> Parse(absl::string_view contents, absl::string_view source);
  // Reads and parses a file: NotFound / PermissionDenied when it cannot be read.
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The principal whose token this is. Compares the token's digest with every entry, in
  // constant time per entry and without stopping at a match, so timing says nothing about
  // which entry (if any) matched.
  std::optional<Principal> Find(absl::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Principal principal;
    Sha256Digest digest;
  };
  std::vector<Entry> entries_;
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_TOKEN_TABLE_H_
