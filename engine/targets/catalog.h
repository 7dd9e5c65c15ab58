// The catalog of built-in targets: each with a name, a description, its parameters and a factory.
// The catalog is immutable after first use and safe to read from any thread.
#ifndef FLOWVI_ENGINE_TARGETS_CATALOG_H_
#define FLOWVI_ENGINE_TARGETS_CATALOG_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/core/params.h"
#include "engine/targets/target.h"

namespace flowvi {

struct TargetInfo {
  std::string name;
  std::string description;
  std::vector<ParamSpec> params;
  // Receives the parameters already resolved against `params` (defaults filled in); still
  // checks their values (ranges, shapes) and returns InvalidArgument naming the parameter.
  std::function<absl::StatusOr<std::unique_ptr<Target>>(const ParamMap&)> factory;
};

// Every built-in target, in a fixed order.
const std::vector<TargetInfo>& TargetCatalog();

// Finds a target by name; NotFound is not used here: an unknown name is a bad request, so it is
// InvalidArgument listing the known names.
absl::StatusOr<const TargetInfo*> FindTarget(absl::string_view name);

// Builds a target from its name and (partial) parameters.
absl::StatusOr<std::unique_ptr<Target>> MakeTarget(absl::string_view name, const ParamMap& params);

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_TARGETS_CATALOG_H_
