#include "engine/fit/fit_options.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace flowvi {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view rule, double value) {
  return absl::InvalidArgumentError(
      absl::StrCat("fit option '", field, "' must be ", rule, ", got ", value));
}

bool Finite(double v) { return std::isfinite(v); }

}  // namespace

absl::string_view OptimizerName(OptimizerType type) {
  return type == OptimizerType::kAdam ? "adam" : "rmsprop";
}

absl::StatusOr<OptimizerType> ParseOptimizer(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "adam") return OptimizerType::kAdam;
  if (lower == "rmsprop") return OptimizerType::kRmsprop;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown optimizer '", name, "'; known: adam, rmsprop"));
}

absl::Status FitOptions::Validate() const {
  if (!Finite(learning_rate) || learning_rate <= 0) {
    return Bad("learning_rate", "a finite number > 0", learning_rate);
  }
  if (iterations < 1) return Bad("iterations", "at least 1", static_cast<double>(iterations));
  if (batch_size < 1) return Bad("batch_size", "at least 1", batch_size);
  if (anneal_iterations < 0) {
    return Bad("anneal_iterations", ">= 0 (0 turns annealing off)",
               static_cast<double>(anneal_iterations));
  }
  if (!Finite(max_grad_norm) || max_grad_norm < 0) {
    return Bad("max_grad_norm", ">= 0 (0 turns clipping off)", max_grad_norm);
  }
  if (!(adam_beta1 >= 0 && adam_beta1 < 1)) return Bad("adam_beta1", "in [0, 1)", adam_beta1);
  if (!(adam_beta2 >= 0 && adam_beta2 < 1)) return Bad("adam_beta2", "in [0, 1)", adam_beta2);
  if (!Finite(adam_epsilon) || adam_epsilon <= 0) return Bad("adam_epsilon", "> 0", adam_epsilon);
  if (!(rmsprop_decay >= 0 && rmsprop_decay < 1)) {
    return Bad("rmsprop_decay", "in [0, 1)", rmsprop_decay);
  }
  if (!(rmsprop_momentum >= 0 && rmsprop_momentum < 1)) {
    return Bad("rmsprop_momentum", "in [0, 1)", rmsprop_momentum);
  }
  if (!Finite(rmsprop_epsilon) || rmsprop_epsilon <= 0) {
    return Bad("rmsprop_epsilon", "> 0", rmsprop_epsilon);
  }
  if (max_consecutive_skips < 1) {
    return Bad("max_consecutive_skips", "at least 1", max_consecutive_skips);
  }
  if (trace_points < 1) return Bad("trace_points", "at least 1", trace_points);
  return absl::OkStatus();
}

}  // namespace flowvi
