#include "server/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace flowvi::server {

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    const std::string& tokens_file) {
  std::unique_ptr<Authenticator> auth(new Authenticator(tokens_file));
  if (auth->enabled()) {
    absl::StatusOr<size_t> loaded = auth->Reload();
    if (!loaded.ok()) return loaded.status();
  }
  return auth;
}

absl::StatusOr<size_t> Authenticator::Reload() {
  if (!enabled()) {
    return absl::FailedPreconditionError("no tokens file was given (--tokens_file)");
  }
  absl::StatusOr<TokenTable> table = TokenTable::Load(tokens_file_);
  if (!table.ok()) return table.status();
  auto fresh = std::make_shared<const TokenTable>(*std::move(table));
  const size_t n = fresh->size();
  absl::MutexLock lock(&mu_);
  table_ = std::move(fresh);
  return n;
}

absl::StatusOr<Principal> Authenticator::Authorize(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata, Role needed,
    absl::string_view rpc) const {
  if (!enabled()) return Principal{"", Role::kAdmin};
  const auto [first, last] = metadata.equal_range("authorization");
  if (first == last) {
    return absl::UnauthenticatedError(absl::StrCat(
        rpc,
        " needs a bearer token: send the metadata 'authorization: Bearer <token>' (the "
        "flowvi CLI: --token-file FILE or FLOWVI_TOKEN)"));
  }
  if (std::next(first) != last) {
    return absl::UnauthenticatedError("more than one 'authorization' metadata entry was sent");
  }
  absl::string_view value(first->second.data(), first->second.size());
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() || !absl::StartsWithIgnoreCase(value, kScheme)) {
    return absl::UnauthenticatedError("the 'authorization' metadata must be 'Bearer <token>'");
  }
  value.remove_prefix(kScheme.size());
  value = absl::StripAsciiWhitespace(value);
  std::shared_ptr<const TokenTable> table;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
  }
  std::optional<Principal> who = table->Find(value);
  if (!who.has_value()) {
    return absl::UnauthenticatedError(
        "the bearer token is not valid (unknown or revoked); ask the server's operator for one");
  }
  if (static_cast<int>(who->role) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(absl::StrCat("'", who->name, "' has the role ",
                                                    RoleName(who->role), ", which may not call ",
                                                    rpc, " (it needs ", RoleName(needed), ")"));
  }
  return *std::move(who);
}

}  // namespace flowvi::server
