// The compiler: runs a checked program against its data and emits the tape (tape.h).
//
// Everything that depends only on data is computed here, once: integer arithmetic, indexes,
// loop bounds and conditions (so loops are unrolled and ifs resolved), and every real value
// that does not depend on a parameter (folded into constants). What remains — values that
// depend on the parameters — becomes tape nodes, so the tape is straight-line code over rows of
// the batch. Dimension mismatches, out-of-range indexes, missing or ill-typed data and
// out-of-support constants are reported here, as InvalidArgument pointing at the source.
#ifndef FLOWVI_ENGINE_LANG_COMPILER_H_
#define FLOWVI_ENGINE_LANG_COMPILER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/lang/ast.h"
#include "engine/lang/checker.h"
#include "engine/lang/json.h"
#include "engine/lang/limits.h"
#include "engine/lang/tape.h"

namespace flowvi::lang {

// How one unconstrained coordinate u maps to the declared (constrained) value x.
struct ParamTransform {
  enum class Kind : uint8_t {
    kNone,        // x = u
    kLower,       // x = lower + exp(u)
    kUpper,       // x = upper - exp(u)
    kLowerUpper,  // x = lower + (upper - lower) inv_logit(u)
  };
  Kind kind = Kind::kNone;
  double lower = 0;
  double upper = 0;
};

struct CompiledProgram {
  std::shared_ptr<const Tape> tape;
  std::vector<std::string> names;                // "mu", "theta[1]", ... (constrained)
  std::vector<std::string> unconstrained_names;  // "mu", "log(tau)", ...
  std::vector<ParamTransform> transforms;        // one per coordinate
};

// REQUIRES: CheckProgram(source, program, &slots) succeeded.
absl::StatusOr<CompiledProgram> CompileProgram(absl::string_view source, const Program& program,
                                               const std::vector<SlotInfo>& slots,
                                               const DataMap& data, const ModelLimits& limits);

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_COMPILER_H_
