// Model references: "name" (latest version), "name/3" (a version), "name@prod" (an alias).
#ifndef FLOWVI_SERVER_MODEL_REF_H_
#define FLOWVI_SERVER_MODEL_REF_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flowvi::server {

struct ModelRef {
  std::string name;
  int64_t version = 0;  // 0: not given
  std::string alias;    // empty: not given
};

// InvalidArgument with the expected forms when `text` is malformed.
absl::StatusOr<ModelRef> ParseModelRef(absl::string_view text);

// Model names: 1-100 of [A-Za-z0-9_.-], starting with a letter or digit.
absl::Status ValidateModelName(absl::string_view name);
// Aliases: 1-64 of [A-Za-z0-9_-], starting with a letter; not all digits (so never a version).
absl::Status ValidateAlias(absl::string_view alias);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_MODEL_REF_H_
