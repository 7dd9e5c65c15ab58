#include "server/model_ref.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace flowvi::server {

absl::Status ValidateModelName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= 100 &&
            absl::ascii_isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    ok = ok &&
         (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model name '", name,
        "' is not valid: use 1-100 letters, digits, '_', '-' or '.', starting with a letter or "
        "digit"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAlias(absl::string_view alias) {
  bool ok = !alias.empty() && alias.size() <= 64 &&
            absl::ascii_isalpha(static_cast<unsigned char>(alias[0]));
  for (char c : alias) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("alias '", alias,
                     "' is not valid: use 1-64 letters, digits, '_' or '-', starting with a "
                     "letter"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelRef> ParseModelRef(absl::string_view text) {
  ModelRef ref;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("model reference '", text, "' ", why,
                                                   "; use 'name', 'name/VERSION' or 'name@ALIAS'"));
  };
  if (text.empty()) return bad("is empty");
  const size_t slash = text.find('/');
  const size_t at = text.find('@');
  if (slash != absl::string_view::npos && at != absl::string_view::npos) {
    return bad("has both a version and an alias");
  }
  if (slash != absl::string_view::npos) {
    ref.name = std::string(text.substr(0, slash));
    if (!absl::SimpleAtoi(text.substr(slash + 1), &ref.version) || ref.version < 1) {
      return bad("has a version that is not a positive integer");
    }
  } else if (at != absl::string_view::npos) {
    ref.name = std::string(text.substr(0, at));
    ref.alias = std::string(text.substr(at + 1));
    if (absl::Status s = ValidateAlias(ref.alias); !s.ok()) return bad(s.message());
  } else {
    ref.name = std::string(text);
  }
  if (absl::Status s = ValidateModelName(ref.name); !s.ok()) return bad(s.message());
  return ref;
}

}  // namespace flowvi::server
