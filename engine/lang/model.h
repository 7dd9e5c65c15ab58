// The model language: Stan-like programs compiled to a batched reverse-mode tape, fitted by the
// engine like any other Target. The language is described in engine/lang/README.md.
//
//   absl::StatusOr<std::unique_ptr<CompiledModel>> model =
//       lang::CompileModel(source, data_json, lang::ModelLimits{});
//   std::unique_ptr<lang::ModelTarget> target = (*model)->NewTarget();   // fit this
//   (*model)->ConstrainBatch(unconstrained_draws, &constrained_draws);     // report these
//
// The flow lives in the unconstrained space R^D: each bounded parameter is mapped through an
// invertible transform (lower: exp; upper: -exp; both: logistic), whose log-Jacobian the target
// includes. Samples for users are mapped back with ConstrainBatch. For the types of the language
// (scalars, vectors and arrays, with scalar or elementwise bounds) the constrained and
// unconstrained spaces have the same dimension and coordinate order.
//
// Errors: parse, type and data errors, dimension mismatches and out-of-support constants are
// InvalidArgument, with "line:col: message", the line and a caret (data-JSON syntax errors point
// into the JSON: "data line:col: ..."). Exceeding a ModelLimits bound is ResourceExhausted.
// Out-of-support values that depend on the parameters can only be met while fitting: the
// affected samples get log p = -inf and ModelTarget::last_error() describes the first one.
//
// Thread-safety: a CompiledModel is immutable and may be used from any thread; each thread
// fitting it needs its own ModelTarget (NewTarget), which shares the compiled tape.
#ifndef FLOWVI_ENGINE_LANG_MODEL_H_
#define FLOWVI_ENGINE_LANG_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/core/types.h"
#include "engine/lang/compiler.h"
#include "engine/lang/limits.h"
#include "engine/lang/tape.h"
#include "engine/targets/target.h"

namespace flowvi::lang {

// A compiled model as a Target on the unconstrained space. Not thread-safe (it owns the
// evaluation workspace); allocates nothing in LogDensity after the first call at a batch size.
class ModelTarget final : public Target {
 public:
  int dim() const override { return tape_->dim; }
  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override;
  // "mu", "log(tau)", "logit(p)", "theta[1]", ...: the unconstrained coordinates.
  std::vector<std::string> coordinate_names() const override { return names_; }

  // OK, or InvalidArgument describing the first out-of-support value met by the last
  // LogDensity call ("12:5: normal: 'sigma' must be positive, found -0.3 (batch column 7)", the
  // line and a caret). Samples that met one have log p = -inf and a zero gradient.
  absl::Status last_error() const;

 private:
  friend class CompiledModel;
  ModelTarget(std::shared_ptr<const Tape> tape, std::vector<std::string> names)
      : tape_(std::move(tape)), names_(std::move(names)) {}

  std::shared_ptr<const Tape> tape_;
  std::vector<std::string> names_;
  TapeWorkspace ws_;
};

class CompiledModel {
 public:
  // Unconstrained dimension D (the flow's dimension); equal to the constrained dimension.
  int dim() const { return static_cast<int>(program_.names.size()); }
  // Constrained parameter names in Stan's style: "mu", "theta[1]", "x[2,3]" (1-based,
  // array-major), in declaration order.
  const std::vector<std::string>& names() const { return program_.names; }
  // Names of the unconstrained coordinates: "log(tau)", "logit(p)", ...
  const std::vector<std::string>& unconstrained_names() const {
    return program_.unconstrained_names;
  }
  const std::vector<ParamTransform>& transforms() const { return program_.transforms; }

  // A new target sharing this model's tape.
  std::unique_ptr<ModelTarget> NewTarget() const;

  // Maps unconstrained points (D x N) to the declared, constrained space. Resizes *constrained
  // only if its shape differs.
  void ConstrainBatch(const Matrix& unconstrained, Matrix* constrained) const;
  // The inverse; InvalidArgument naming the coordinate and column when a point is outside the
  // declared bounds (or on them, where the unconstrained value is infinite).
  absl::Status UnconstrainBatch(const Matrix& constrained, Matrix* unconstrained) const;
  // log |det d constrained / d unconstrained| of each column (already included in the
  // target's log density). With it, a flow density q(u) gives q(x) = q(u) - log_jacobian.
  void LogJacobianBatch(const Matrix& unconstrained, RowVector* log_jacobian) const;

  // Size of the compiled tape, and the workspace memory one sample of a batch needs.
  int64_t tape_nodes() const { return static_cast<int64_t>(program_.tape->nodes.size()); }
  int64_t tape_rows() const { return program_.tape->num_rows; }
  int64_t bytes_per_sample() const;

 private:
  friend absl::StatusOr<std::unique_ptr<CompiledModel>> CompileModel(absl::string_view,
                                                                     absl::string_view,
                                                                     const ModelLimits&);
  friend absl::StatusOr<std::unique_ptr<CompiledModel>> CompileExpression2D(absl::string_view,
                                                                            const ModelLimits&);
  explicit CompiledModel(CompiledProgram program) : program_(std::move(program)) {}

  CompiledProgram program_;
};

// Parses, type-checks and compiles `source` against `data_json` (CmdStan's JSON data format;
// empty for no data). See the file comment for the errors.
absl::StatusOr<std::unique_ptr<CompiledModel>> CompileModel(absl::string_view source,
                                                            absl::string_view data_json,
                                                            const ModelLimits& limits = {});

// The 2-D shorthand: `expression` is a log density in the real variables z1 and z2, e.g.
// "-0.5 * (z1^2 + square(z2 - z1^2))". Errors point into the expression.
absl::StatusOr<std::unique_ptr<CompiledModel>> CompileExpression2D(absl::string_view expression,
                                                                   const ModelLimits& limits = {});

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_MODEL_H_
