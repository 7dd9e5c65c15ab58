// DensityFitter: fits a DensityModel (density_model.h) to a data set by maximum likelihood —
// mini-batch gradient descent on −mean log q(x) over a training split — with early stopping on
// the log-likelihood of a held-out validation split.
//
//   Create: splits the data by the seed, standardizes with the training split's per-coordinate
//           mean and sd (population sd, divisor n), builds the flow, initializes it by the seed.
//   Run:    steps until options.iterations, early stopping (patience) or the callback's kStop.
//           On completion or early stop the model holds the parameters of the best held-out
//           log-likelihood (without a validation split: the last ones).
//
// All log-likelihoods are means of log q in the user's units (nats per point). Deterministic:
// the same data, flow spec, options and seed give bit-identical parameters and traces, and a
// DensityCheckpoint restored into a fresh DensityFitter made with the same inputs continues
// exactly as if the fit had never stopped. The training step (Step) allocates nothing.
//
// Ownership: the fitter copies what it needs of the data and owns the model until
// ReleaseModel(). Not thread-safe.
#ifndef FLOWVI_ENGINE_FIT_DENSITY_FITTER_H_
#define FLOWVI_ENGINE_FIT_DENSITY_FITTER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/core/rng.h"
#include "engine/data/dataset.h"
#include "engine/fit/callback.h"
#include "engine/fit/density_fit_options.h"
#include "engine/fit/density_model.h"
#include "engine/fit/optimizer.h"
#include "engine/flows/flow_spec.h"

namespace flowvi {

// Handed to the callback after every step.
struct DensityProgress {
  int64_t iteration = 0;         // steps completed, 1-based
  int64_t total_iterations = 0;  // options.iterations
  double epoch = 0;              // passes over the training split so far
  // Mean log q over this step's mini-batch (NaN if the step was skipped).
  double train_log_likelihood = 0;
  // True when the held-out log-likelihood was computed after this step.
  bool evaluated = false;
  // Mean log q over the validation split at the latest evaluation, and the best so far (NaN
  // before the first evaluation and without a validation split).
  double held_out_log_likelihood = 0;
  double best_held_out_log_likelihood = 0;
  double grad_norm = 0;  // before clipping
  bool skipped = false;  // not finite, skipped
  double elapsed_seconds = 0;
};

class DensityCallback {
 public:
  virtual ~DensityCallback() = default;
  // On the fitting thread after every step; must be cheap. kStop ends Run() after this step
  // with the fit resumable (the model then holds the current, not the best, parameters).
  virtual CallbackAction OnProgress(const DensityProgress& progress) = 0;
};

// One held-out evaluation: the trace a client can plot.
struct DensityTracePoint {
  int64_t iteration = 0;
  double train_log_likelihood = 0;     // mean over the steps since the previous evaluation
  double held_out_log_likelihood = 0;  // NaN without a validation split
};

enum class DensityTermination { kCompleted, kEarlyStopped, kStopped };

struct DensityFitSummary {
  DensityTermination reason = DensityTermination::kCompleted;
  int64_t iterations = 0;      // steps completed (including before a restore)
  int64_t best_iteration = 0;  // the step whose parameters the model holds (if not kStopped)
  int64_t skipped_steps = 0;
  int64_t train_points = 0, held_out_points = 0;
  // Mean log q of the whole training split and of the validation split (NaN without) at the
  // parameters the model holds.
  double train_log_likelihood = 0;
  double held_out_log_likelihood = 0;
  std::vector<DensityTracePoint> trace;
  double elapsed_seconds = 0;  // of this Run
};

// Everything needed to resume a fit bit-identically (with the same data, spec and options).
struct DensityCheckpoint {
  Vector params, best_params;
  OptimizerState optimizer;
  int64_t iteration = 0;
  Rng::State rng{};
  std::vector<int64_t> order;  // the current epoch's shuffle of the training split
  int64_t position = 0;        // next index into order
  double best_held_out = 0;
  int64_t best_iteration = 0;
  int evals_since_best = 0;
  int64_t skipped_steps = 0;
  int consecutive_skips = 0;
  double train_sum = 0;  // train log-likelihood of the steps since the last evaluation
  int64_t train_count = 0;
  std::vector<DensityTracePoint> trace;
};

class DensityFitter {
 public:
  // InvalidArgument for invalid options or spec, a data set whose dimension the flow cannot
  // take, a split leaving no point on a side, or a coordinate that is constant over the training
  // split (naming its column: its density would be degenerate).
  static absl::StatusOr<std::unique_ptr<DensityFitter>> Create(const Dataset& data,
                                                               const FlowSpec& spec,
                                                               const DensityFitOptions& options);

  // Runs until the iterations are done, early stopping, or the callback says stop; may be
  // called again after kStopped. FailedPrecondition (naming the iteration) when steps stay
  // non-finite for max_consecutive_skips in a row; the model keeps the best parameters then.
  absl::StatusOr<DensityFitSummary> Run(DensityCallback* callback = nullptr);

  // One step (and an evaluation when due) without the callback. Allocates nothing.
  // FailedPrecondition when the fit has finished or diverged.
  absl::Status Step(DensityProgress* progress);

  // Puts the best parameters seen so far into the model (what Run does when it finishes).
  void UseBestParameters();

  DensityCheckpoint Checkpoint() const;
  // InvalidArgument if the checkpoint does not fit this fitter (sizes, ranges, finiteness).
  absl::Status Restore(const DensityCheckpoint& checkpoint);

  const DensityModel& model() const { return *model_; }
  // Hands over the model; the fitter must not be used afterwards.
  std::unique_ptr<DensityModel> ReleaseModel() { return std::move(model_); }

  int64_t iteration() const { return iteration_; }
  bool finished() const { return finished_; }
  int64_t train_points() const { return train_.cols(); }
  int64_t held_out_points() const { return held_out_.cols(); }
  // The splits as the fitter sees them: standardized, one column per point (the user's points
  // are mean + sd ⊙ these, with the model's mean and sd).
  const Matrix& train_standardized() const { return train_; }
  const Matrix& held_out_standardized() const { return held_out_; }
  // Mean log q of the standardized columns of `standardized` at the current parameters;
  // allocates only for a batch size it has not seen (the training split's last chunk).
  double MeanLogLikelihood(const Matrix& standardized);

 private:
  DensityFitter(const DensityFitOptions& options, std::unique_ptr<DensityModel> model, Matrix train,
                Matrix held_out);
  void Shuffle();
  void Evaluate(DensityProgress* progress);
  DensityWorkspace* WorkspaceFor(int n);

  DensityFitOptions options_;
  std::unique_ptr<DensityModel> model_;
  Matrix train_, held_out_;  // standardized, one column per point
  Optimizer optimizer_;
  Rng rng_;
  std::unique_ptr<DensityWorkspace> ws_;                    // training batches
  std::vector<std::unique_ptr<DensityWorkspace>> eval_ws_;  // by batch size, for evaluation
  Vector grad_, best_params_;
  RowVector eval_log_q_;
  std::vector<int64_t> order_;
  int64_t position_ = 0;
  int64_t iteration_ = 0;
  double best_held_out_;
  double last_held_out_;
  int64_t best_iteration_ = 0;
  int evals_since_best_ = 0;
  int64_t skipped_ = 0;
  int consecutive_skips_ = 0;
  double train_sum_ = 0;
  int64_t train_count_ = 0;
  bool finished_ = false;
  std::vector<DensityTracePoint> trace_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FIT_DENSITY_FITTER_H_
