#include "engine/fit/density_fit_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace flowvi {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view rule, double value) {
  return absl::InvalidArgumentError(
      absl::StrCat("density fit option '", field, "' must be ", rule, ", got ", value));
}

}  // namespace

absl::Status DensityFitOptions::Validate() const {
  if (!std::isfinite(learning_rate) || learning_rate <= 0) {
    return Bad("learning_rate", "a finite number > 0", learning_rate);
  }
  if (iterations < 1) return Bad("iterations", "at least 1", static_cast<double>(iterations));
  if (batch_size < 1) return Bad("batch_size", "at least 1", batch_size);
  if (!(validation_fraction >= 0 && validation_fraction < 1)) {
    return Bad("validation_fraction", "in [0, 1)", validation_fraction);
  }
  if (eval_interval < 1) {
    return Bad("eval_interval", "at least 1", static_cast<double>(eval_interval));
  }
  if (patience < 0) return Bad("patience", ">= 0 (0 never stops early)", patience);
  if (!std::isfinite(max_grad_norm) || max_grad_norm < 0) {
    return Bad("max_grad_norm", ">= 0 (0 turns clipping off)", max_grad_norm);
  }
  if (max_consecutive_skips < 1) {
    return Bad("max_consecutive_skips", "at least 1", max_consecutive_skips);
  }
  return absl::OkStatus();
}

FitOptions DensityFitOptions::OptimizerOptions() const {
  FitOptions o;
  o.optimizer = optimizer;
  o.learning_rate = learning_rate;
  o.iterations = iterations;
  o.batch_size = batch_size;
  o.seed = seed;
  o.max_grad_norm = max_grad_norm;
  o.max_consecutive_skips = max_consecutive_skips;
  return o;
}

}  // namespace flowvi
