// First-order optimizers over one flat parameter vector. The state is plain data so that a
// checkpoint can store it and a resumed fit continues bit-identically.
#ifndef FLOWVI_ENGINE_FIT_OPTIMIZER_H_
#define FLOWVI_ENGINE_FIT_OPTIMIZER_H_

#include <cstdint>

#include "engine/core/types.h"
#include "engine/fit/fit_options.h"

namespace flowvi {

struct OptimizerState {
  int64_t step = 0;  // steps taken (for Adam's bias correction)
  Vector m;          // Adam: first moment; RMSprop: momentum buffer
  Vector v;          // second moment / squared-gradient average
};

// Applies one descent step to params given the gradient of the loss. Allocates nothing once
// state is sized (Reset).
class Optimizer {
 public:
  explicit Optimizer(const FitOptions& options) : options_(options) {}

  void Reset(int num_params);
  void Step(const Vector& grad, VectorRef params);

  const OptimizerState& state() const { return state_; }
  void set_state(OptimizerState state) { state_ = std::move(state); }

 private:
  FitOptions options_;
  OptimizerState state_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FIT_OPTIMIZER_H_
