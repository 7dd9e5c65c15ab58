// The seam between a running fit and whoever watches it (the server, a CLI, a test): after each
// iteration the fit hands out a summary and gets back whether to go on. The engine never calls
// upward in any other way.
#ifndef FLOWVI_ENGINE_FIT_CALLBACK_H_
#define FLOWVI_ENGINE_FIT_CALLBACK_H_

#include <cstdint>

namespace flowvi {

struct IterationSummary {
  int64_t iteration = 0;         // iterations completed, 1-based
  int64_t total_iterations = 0;  // FitOptions::iterations
  double elbo = 0;               // this step's Monte Carlo ELBO estimate (β = 1)
  double beta = 1;               // annealing weight used by this step
  double grad_norm = 0;          // L2 norm of the loss gradient, before clipping
  double elapsed_seconds = 0;    // wall time since this Run started
  bool skipped = false;          // the step was not finite and was skipped
};

enum class CallbackAction { kContinue, kStop };

class IterationCallback {
 public:
  virtual ~IterationCallback() = default;
  // Called on the fitting thread after every iteration; must be cheap. Returning kStop ends
  // Run() after this iteration, with the fit in a resumable state.
  virtual CallbackAction OnIteration(const IterationSummary& summary) = 0;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FIT_CALLBACK_H_
