#include "engine/fit/optimizer.h"

#include <cmath>

namespace flowvi {

void Optimizer::Reset(int num_params) {
  state_.step = 0;
  state_.m = Vector::Zero(num_params);
  state_.v = Vector::Zero(num_params);
}

void Optimizer::Step(const Vector& grad, VectorRef params) {
  ++state_.step;
  const double lr = options_.learning_rate;
  if (options_.optimizer == OptimizerType::kAdam) {
    const double b1 = options_.adam_beta1, b2 = options_.adam_beta2;
    state_.m = b1 * state_.m + (1 - b1) * grad;
    state_.v = b2 * state_.v + (1 - b2) * grad.cwiseAbs2();
    const double t = static_cast<double>(state_.step);
    const double c1 = 1 - std::pow(b1, t);
    const double c2 = 1 - std::pow(b2, t);
    params.array() -=
        (lr / c1) * state_.m.array() / ((state_.v.array() / c2).sqrt() + options_.adam_epsilon);
  } else {
    const double a = options_.rmsprop_decay, mu = options_.rmsprop_momentum;
    state_.v = a * state_.v + (1 - a) * grad.cwiseAbs2();
    state_.m =
        mu * state_.m.array() + grad.array() / (state_.v.array().sqrt() + options_.rmsprop_epsilon);
    params -= lr * state_.m;
  }
}

}  // namespace flowvi
