// Targets from their API form (flowvi.v1.Target): a built-in from the catalog, a program in the
// model language with its data, or the 2-D shorthand expression.
//
// Program and expression targets are compiled (engine/lang); the compiled model is kept with the
// target because it also maps the flow's unconstrained space to the space the program declares,
// which is the space clients see: samples, log-densities and query points.
//
// Thread-safety: free functions; a BuiltTarget's `target` belongs to one thread, its `program`
// is immutable and may be shared.
#ifndef FLOWVI_SERVER_TARGET_BUILDER_H_
#define FLOWVI_SERVER_TARGET_BUILDER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/lang/limits.h"
#include "engine/lang/model.h"
#include "engine/targets/target.h"
#include "flowvi/v1/types.pb.h"

namespace flowvi::server {

struct BuiltTarget {
  std::unique_ptr<Target> target;
  // Set for program and expression targets; `model_target` then points into `target`.
  std::shared_ptr<const lang::CompiledModel> program;
  lang::ModelTarget* model_target = nullptr;

  // Names of the coordinates clients see (the declared, constrained parameters of a program).
  std::vector<std::string> user_coordinate_names() const;
};

// Builds the target `in` describes. InvalidArgument for an unknown built-in, bad parameters, or a
// program that does not compile (with line:col and a caret); ResourceExhausted for a program
// over `limits`.
absl::StatusOr<BuiltTarget> BuildTarget(const v1::Target& in, const lang::ModelLimits& limits);

// Compiles a program or expression target; nullptr (and OK) for a built-in.
absl::StatusOr<std::shared_ptr<const lang::CompiledModel>> CompileProgramTarget(
    const v1::Target& in, const lang::ModelLimits& limits);

// The target as stored with a job or model: a built-in with every parameter resolved (defaults
// filled in); programs and expressions as given.
absl::StatusOr<v1::Target> CanonicalTarget(const v1::Target& in);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_TARGET_BUILDER_H_
