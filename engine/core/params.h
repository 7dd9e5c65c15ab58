// Named, typed parameters of catalog entries (targets now, layers later).
//
// A catalog entry declares its parameters as ParamSpecs; a request supplies a ParamMap, which
// ResolveParams checks against the specs (unknown names, wrong types) and completes with the
// defaults. Text forms ("true", "8", "0.5", "[1,2,3]") are what the flow spec, the CLI's
// `--param k=v` and the API's string values share.
#ifndef FLOWVI_ENGINE_CORE_PARAMS_H_
#define FLOWVI_ENGINE_CORE_PARAMS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flowvi {

enum class ParamType { kBool, kInt, kReal, kRealVector };

using ParamValue = std::variant<bool, int64_t, double, std::vector<double>>;
// Ordered so that iteration (and therefore anything printed or hashed from it) is deterministic.
using ParamMap = std::map<std::string, ParamValue, std::less<>>;

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::kReal;
  ParamValue default_value;
  std::string description;
};

absl::string_view ParamTypeName(ParamType type);

// Parses `text` as a value of `type`. Vectors are written "[1, 2.5, -3]" (brackets optional).
// Errors are InvalidArgument and quote the text.
absl::StatusOr<ParamValue> ParseParamValue(ParamType type, absl::string_view text);

// The canonical text of a value; ParseParamValue(type, FormatParamValue(v)) == v exactly
// (reals are printed with 17 significant digits).
std::string FormatParamValue(const ParamValue& value);

// Checks `given` against `specs` and fills in defaults. An unknown name, or a value of the
// wrong type, is InvalidArgument naming `owner` (e.g. "target 'funnel'") and the parameter.
// An int is accepted where a real is expected; a real with an integral value where an int is.
absl::StatusOr<ParamMap> ResolveParams(const std::vector<ParamSpec>& specs, const ParamMap& given,
                                       absl::string_view owner);

// Typed accessors for a resolved map. REQUIRES: `name` is present with that type.
bool GetBool(const ParamMap& params, absl::string_view name);
int64_t GetInt(const ParamMap& params, absl::string_view name);
double GetReal(const ParamMap& params, absl::string_view name);
const std::vector<double>& GetRealVector(const ParamMap& params, absl::string_view name);

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_CORE_PARAMS_H_
