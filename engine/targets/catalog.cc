// The catalog of built-in targets: lookup by name, parameter resolution, and the checks the
// families share. The entries themselves live next to their formulas (see builtin.h).
#include "engine/targets/catalog.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/targets/builtin.h"

namespace flowvi {
namespace targets_internal {

absl::Status InvalidParam(absl::string_view target, absl::string_view param,
                          absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("target '", target, "' parameter '", param, "' ", message));
}

absl::StatusOr<int> IntParamInRange(const ParamMap& params, absl::string_view target,
                                    absl::string_view param, int lo, int hi) {
  const int64_t value = GetInt(params, param);
  if (value < lo || value > hi) {
    return InvalidParam(target, param,
                        absl::StrCat("must be between ", lo, " and ", hi, ", got ", value));
  }
  return static_cast<int>(value);
}

}  // namespace targets_internal

const std::vector<TargetInfo>& TargetCatalog() {
  // Built once, on first use (thread-safe static initialization), and never modified after.
  static const std::vector<TargetInfo>* const catalog = [] {
    auto* entries = new std::vector<TargetInfo>();
    targets_internal::AppendEnergyTargets(entries);
    targets_internal::AppendBlogTargets(entries);
    targets_internal::AppendEightSchoolsTarget(entries);
    targets_internal::AppendFunnelTarget(entries);
    targets_internal::AppendGaussianTarget(entries);
    return entries;
  }();
  return *catalog;
}

absl::StatusOr<const TargetInfo*> FindTarget(absl::string_view name) {
  const std::vector<TargetInfo>& catalog = TargetCatalog();
  for (const TargetInfo& info : catalog) {
    if (info.name == name) return &info;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown target '", name, "'; known targets: ",
      absl::StrJoin(catalog, ", ",
                    [](std::string* out, const TargetInfo& info) { out->append(info.name); })));
}

absl::StatusOr<std::unique_ptr<Target>> MakeTarget(absl::string_view name, const ParamMap& params) {
  absl::StatusOr<const TargetInfo*> info = FindTarget(name);
  if (!info.ok()) return info.status();
  absl::StatusOr<ParamMap> resolved =
      ResolveParams((*info)->params, params, absl::StrCat("target '", name, "'"));
  if (!resolved.ok()) return resolved.status();
  return (*info)->factory(*resolved);
}

}  // namespace flowvi
