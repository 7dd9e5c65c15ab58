// Options of one fit, with documented defaults and a validity check (in the manner of
// ceres-solver's Solver::Options).
#ifndef FLOWVI_ENGINE_FIT_FIT_OPTIONS_H_
#define FLOWVI_ENGINE_FIT_FIT_OPTIONS_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flowvi {

enum class OptimizerType {
  kAdam,     // Kingma & Ba; the default of every PyTorch flow library
  kRmsprop,  // RMSprop with momentum, as in Rezende & Mohamed 2015
};

absl::string_view OptimizerName(OptimizerType type);
absl::StatusOr<OptimizerType> ParseOptimizer(absl::string_view name);  // "adam" | "rmsprop"

struct FitOptions {
  OptimizerType optimizer = OptimizerType::kAdam;
  // Step size. The paper used 1e-5 with RMSprop; 1e-3 suits Adam on the 2-D targets.
  double learning_rate = 1e-3;
  // Number of optimizer steps.
  int64_t iterations = 10000;
  // Monte Carlo samples per step (N).
  int batch_size = 100;
  // Seeds the initial parameters and every draw of the fit.
  uint64_t seed = 0;
  // Annealing: β_t = min(1, 0.01 + t / anneal_iterations) multiplies log p~ in the loss.
  // 0 turns annealing off (β = 1). The paper used 10000.
  int64_t anneal_iterations = 0;
  // Clip the gradient to this L2 norm before each step; 0 turns clipping off.
  double max_grad_norm = 0;
  // Adam's moment decays and epsilon.
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  // RMSprop's squared-gradient decay, momentum and epsilon (PyTorch's conventions).
  double rmsprop_decay = 0.99;
  double rmsprop_momentum = 0.9;
  double rmsprop_epsilon = 1e-8;
  // A step whose loss or gradient is not finite is skipped; this many in a row end the fit
  // with an error.
  int max_consecutive_skips = 50;
  // The ELBO trace keeps at most this many points, each the mean of a block of iterations.
  int trace_points = 2000;

  // OK, or InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FIT_FIT_OPTIONS_H_
