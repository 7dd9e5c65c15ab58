// Fitter: trains a flow to a target by stochastic gradient descent on the (optionally annealed)
// negative ELBO — reverse KL(q ‖ p) up to log Z:
//
//   loss_t = mean_j [ log q(z_j) − β_t log p~(z_j) ],   z_j = flow(ε_j), ε_j ~ N(0, I)
//
// Deterministic: the same flow spec, target, options and seed give bit-identical parameters and
// ELBO trace. A FitCheckpoint taken between iterations (e.g. from the callback) and restored
// into a fresh Fitter continues exactly as if the fit had never stopped.
//
// Ownership: the Fitter borrows the flow and the target, which must outlive it, and is the only
// user of both while Run() executes. Not thread-safe.
#ifndef FLOWVI_ENGINE_FIT_FITTER_H_
#define FLOWVI_ENGINE_FIT_FITTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/rng.h"
#include "engine/fit/callback.h"
#include "engine/fit/fit_options.h"
#include "engine/fit/optimizer.h"
#include "engine/flows/flow.h"
#include "engine/targets/target.h"

namespace flowvi {

// Everything needed to resume a fit bit-identically.
struct FitCheckpoint {
  Vector params;
  OptimizerState optimizer;
  int64_t iteration = 0;
  Rng::State rng{};
  int64_t skipped_steps = 0;
  int consecutive_skips = 0;
  std::vector<double> trace;  // completed trace points
  double trace_sum = 0;       // the trace block in progress
  int64_t trace_count = 0;
};

enum class TerminationReason { kCompleted, kStopped };

struct FitSummary {
  TerminationReason reason = TerminationReason::kCompleted;
  int64_t iterations = 0;     // completed so far (including before a restore)
  int64_t skipped_steps = 0;  // non-finite steps skipped
  int64_t trace_stride = 1;   // iterations per trace point
  std::vector<double> elbo_trace;
  double elapsed_seconds = 0;  // of this Run
};

class Fitter {
 public:
  // InvalidArgument when options are invalid or the flow's and target's dimensions differ.
  // Initializes the flow's parameters from options.seed.
  static absl::StatusOr<std::unique_ptr<Fitter>> Create(Flow* flow, Target* target,
                                                        const FitOptions& options);

  // Runs until options.iterations are done or the callback says stop; may be called again
  // after a stop to continue. A fit whose steps stay non-finite for max_consecutive_skips
  // iterations ends with FailedPrecondition naming the iteration and the cause; the
  // parameters keep their last finite values.
  absl::StatusOr<FitSummary> Run(IterationCallback* callback = nullptr);

  // One iteration (what Run does in its loop, without the callback); fills *summary except
  // elapsed_seconds. Allocates nothing. FailedPrecondition when all iterations are done or the
  // fit diverged (as for Run).
  absl::Status Step(IterationSummary* summary);

  FitCheckpoint Checkpoint() const;
  // InvalidArgument if the checkpoint does not fit this flow (parameter count) or options.
  absl::Status Restore(const FitCheckpoint& checkpoint);

  int64_t iteration() const { return iteration_; }
  int64_t trace_stride() const { return trace_stride_; }

 private:
  Fitter(Flow* flow, Target* target, const FitOptions& options);

  // One loss/gradient evaluation on ws_->eps(); returns false (and names the cause) when
  // something is not finite.
  bool LossAndGradient(double beta, double* elbo, const char** cause);

  Flow* flow_;
  Target* target_;
  FitOptions options_;
  Optimizer optimizer_;
  Rng rng_;
  std::unique_ptr<FlowWorkspace> ws_;
  RowVector log_p_, grad_log_q_;
  Matrix grad_log_p_;
  Vector grad_;
  int64_t iteration_ = 0;
  int64_t skipped_ = 0;
  int consecutive_skips_ = 0;
  int64_t trace_stride_ = 1;
  std::vector<double> trace_;
  double trace_sum_ = 0;
  int64_t trace_count_ = 0;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FIT_FITTER_H_
