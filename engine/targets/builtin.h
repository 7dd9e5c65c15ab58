// Internal to engine/targets: how the built-in target families plug into the catalog, and the
// parameter checks they share. Not part of the engine's interface; use catalog.h.
#ifndef FLOWVI_ENGINE_TARGETS_BUILTIN_H_
#define FLOWVI_ENGINE_TARGETS_BUILTIN_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/core/params.h"
#include "engine/targets/catalog.h"

namespace flowvi::targets_internal {

// Each family appends its entries; the catalog calls these in a fixed order. Keeping a
// target's description next to its formula is what keeps the two in agreement.
void AppendEnergyTargets(std::vector<TargetInfo>* catalog);  // u1, u2, u3, u4
void AppendBlogTargets(std::vector<TargetInfo>* catalog);    // two_hills, banana, circle, ...
void AppendEightSchoolsTarget(std::vector<TargetInfo>* catalog);
void AppendFunnelTarget(std::vector<TargetInfo>* catalog);
void AppendGaussianTarget(std::vector<TargetInfo>* catalog);

// InvalidArgument "target 'TARGET' parameter 'PARAM' MESSAGE".
absl::Status InvalidParam(absl::string_view target, absl::string_view param,
                          absl::string_view message);

// The int parameter `param` of a resolved map, or InvalidArgument unless lo <= value <= hi.
absl::StatusOr<int> IntParamInRange(const ParamMap& params, absl::string_view target,
                                    absl::string_view param, int lo, int hi);

// log N(x | mean, sd) = -kHalfLog2Pi - log(sd) - ((x - mean) / sd)^2 / 2.
inline constexpr double kHalfLog2Pi = 0.91893853320467274178;  // log(sqrt(2 pi))

}  // namespace flowvi::targets_internal

#endif  // FLOWVI_ENGINE_TARGETS_BUILTIN_H_
