// A small, strict JSON reader for model data in the format CmdStan uses: one object whose
// members are numbers or (nested, rectangular) arrays of numbers. "NaN", "Inf", "-Inf",
// "Infinity" and "-Infinity" are accepted as strings or bare words for reals. Other members may
// hold any JSON value; they are an error only if the model uses them.
#ifndef FLOWVI_ENGINE_LANG_JSON_H_
#define FLOWVI_ENGINE_LANG_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/lang/limits.h"
#include "engine/lang/source.h"

namespace flowvi::lang {

// One member's value: a number (shape empty) or a rectangular array of numbers, flattened in
// row-major order.
struct DataValue {
  std::vector<int64_t> shape;
  std::vector<double> reals;
  bool all_int = true;        // every number was written as an integer in int64 range
  int64_t first_real = -1;    // when !all_int: the first element that was not (or -1)
  std::vector<int64_t> ints;  // the same numbers, when all_int
  SourceLoc loc;              // where the value starts in the JSON text
  std::string error;          // not empty: not a number or rectangular array (what it is)
};

using DataMap = absl::flat_hash_map<std::string, DataValue>;

// Parses `json` (empty or only whitespace means no data). Syntax errors are InvalidArgument
// "data line:col: ..." with the line and a caret; size and nesting beyond `limits`
// (max_data_bytes, max_nesting) are ResourceExhausted.
absl::StatusOr<DataMap> ParseDataJson(absl::string_view json, const ModelLimits& limits);

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_JSON_H_
