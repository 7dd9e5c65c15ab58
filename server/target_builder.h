// Targets from their API form (flowvi.v1.Target): a built-in from the catalog, a program in the
// model language with its data, the 2-D shorthand expression, or a data set (whose density a
// flow learns by maximum likelihood: there is no target density then, only points).
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
#include "engine/data/dataset.h"
#include "engine/lang/limits.h"
#include "engine/lang/model.h"
#include "engine/targets/target.h"
#include "flowvi/v1/types.pb.h"

namespace flowvi::server {

struct BuiltTarget {
  // Null for a data set.
  std::unique_ptr<Target> target;
  // Set (checked: finite, whole rows, at least one) for a data-set target.
  std::shared_ptr<const Dataset> data;
  // Set for program and expression targets; `model_target` then points into `target`.
  std::shared_ptr<const lang::CompiledModel> program;
  lang::ModelTarget* model_target = nullptr;

  // The dimension clients see (the target's, or the data's).
  int dim() const;
  // Names of the coordinates clients see (the declared, constrained parameters of a program;
  // a data set's column names, x1..xD by default).
  std::vector<std::string> user_coordinate_names() const;
  std::vector<std::string> data_column_names;
};

// Builds the target `in` describes. InvalidArgument for an unknown built-in, bad parameters, a
// program that does not compile (with line:col and a caret), or a data set with a bad dimension,
// a non-finite value or an incomplete last row (naming the 1-based row and column);
// ResourceExhausted for a program over `limits`.
absl::StatusOr<BuiltTarget> BuildTarget(const v1::Target& in, const lang::ModelLimits& limits);

// Compiles a program or expression target; nullptr (and OK) for a built-in.
absl::StatusOr<std::shared_ptr<const lang::CompiledModel>> CompileProgramTarget(
    const v1::Target& in, const lang::ModelLimits& limits);

// The target as stored with a job or model: a built-in with every parameter resolved (defaults
// filled in); programs and expressions as given; a data set without its values (dim, column
// names and num_points only: the points stay in the job's request).
absl::StatusOr<v1::Target> CanonicalTarget(const v1::Target& in);

// The points of a data-set target, checked row by row.
absl::StatusOr<Dataset> DatasetFromProto(const v1::DataSet& in);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_TARGET_BUILDER_H_
