// Options of one maximum-likelihood fit of a density model to a data set (density_fitter.h),
// with documented defaults and a validity check.
#ifndef FLOWVI_ENGINE_FIT_DENSITY_FIT_OPTIONS_H_
#define FLOWVI_ENGINE_FIT_DENSITY_FIT_OPTIONS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "engine/fit/fit_options.h"

namespace flowvi {

struct DensityFitOptions {
  OptimizerType optimizer = OptimizerType::kAdam;
  double learning_rate = 1e-3;
  // Optimizer steps, one mini-batch each (an epoch is ⌈training points / batch_size⌉ steps).
  int64_t iterations = 5000;
  // Points per mini-batch, drawn without replacement from a reshuffled training split.
  int batch_size = 256;
  // Seeds the split, the initial parameters and every shuffle.
  uint64_t seed = 0;
  // Fraction of the points held out for validation (early stopping and the held-out
  // log-likelihood), chosen at random by the seed. 0: no validation split, no early stopping,
  // the last parameters are kept. Must leave at least one point on each side.
  double validation_fraction = 0.1;
  // The held-out log-likelihood is computed every eval_interval steps and after the last.
  int64_t eval_interval = 100;
  // Stop after this many evaluations in a row without a new best held-out log-likelihood and
  // keep the best parameters; 0 never stops early (the best parameters are still kept).
  int patience = 10;
  // Clip the gradient to this L2 norm before each step; 0 turns clipping off.
  double max_grad_norm = 0;
  // A step whose loss or gradient is not finite is skipped; this many in a row end the fit.
  int max_consecutive_skips = 50;

  // OK, or InvalidArgument naming the first bad field.
  absl::Status Validate() const;
  // The optimizer settings as the Optimizer takes them (the other moments at their defaults).
  FitOptions OptimizerOptions() const;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FIT_DENSITY_FIT_OPTIONS_H_
