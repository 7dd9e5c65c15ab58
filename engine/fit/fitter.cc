#include "engine/fit/fitter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace flowvi {

Fitter::Fitter(Flow* flow, Target* target, const FitOptions& options)
    : flow_(flow),
      target_(target),
      options_(options),
      optimizer_(options),
      rng_(options.seed),
      ws_(flow->NewWorkspace(options.batch_size)),
      log_p_(options.batch_size),
      grad_log_q_(RowVector::Constant(options.batch_size, 1.0 / options.batch_size)),
      grad_log_p_(flow->dim(), options.batch_size),
      grad_(flow->num_params()),
      trace_stride_(std::max<int64_t>(
          1, (options.iterations + options.trace_points - 1) / options.trace_points)) {
  flow_->InitParams(rng_);
  optimizer_.Reset(flow_->num_params());
  trace_.reserve(options.trace_points + 1);  // no allocation in the loop
}

absl::StatusOr<std::unique_ptr<Fitter>> Fitter::Create(Flow* flow, Target* target,
                                                       const FitOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (flow->dim() != target->dim()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the flow has dimension ", flow->dim(), " but the target has dimension ", target->dim()));
  }
  return std::unique_ptr<Fitter>(new Fitter(flow, target, options));
}

bool Fitter::LossAndGradient(double beta, double* elbo, const char** cause) {
  flow_->Forward(ws_.get());
  const RowVector& log_q = ws_->log_q();
  if (!log_q.allFinite()) {
    *cause = "log q of a sample is not finite";
    return false;
  }
  target_->LogDensity(ws_->z(), &log_p_, &grad_log_p_);
  if (!log_p_.allFinite()) {
    *cause = "the target's log-density is not finite at a sample";
    return false;
  }
  const double n = static_cast<double>(options_.batch_size);
  *elbo = (log_p_ - log_q).sum() / n;
  // loss = mean(log q − β log p~): dL/dz_K = −(β/N) ∇log p~, dL/dlog q = 1/N.
  grad_log_p_ *= -beta / n;
  grad_.setZero();
  flow_->Backward(grad_log_p_, grad_log_q_, ws_.get(), grad_);
  if (!grad_.allFinite()) {
    *cause = "the gradient is not finite";
    return false;
  }
  return true;
}

absl::Status Fitter::Step(IterationSummary* it) {
  if (iteration_ >= options_.iterations) {
    return absl::FailedPreconditionError(
        absl::StrCat("the fit has already run all ", options_.iterations, " iterations"));
  }
  const double beta =
      options_.anneal_iterations > 0
          ? std::min(1.0, 0.01 + static_cast<double>(iteration_) /
                                     static_cast<double>(options_.anneal_iterations))
          : 1.0;
  rng_.FillNormal(&ws_->eps());
  double elbo = 0;
  const char* cause = "";
  const bool finite = LossAndGradient(beta, &elbo, &cause);
  double grad_norm = 0;
  if (finite) {
    grad_norm = grad_.norm();
    if (options_.max_grad_norm > 0 && grad_norm > options_.max_grad_norm) {
      grad_ *= options_.max_grad_norm / grad_norm;
    }
    optimizer_.Step(grad_, flow_->mutable_params());
    consecutive_skips_ = 0;
  } else {
    ++skipped_;
    ++consecutive_skips_;
    if (consecutive_skips_ >= options_.max_consecutive_skips) {
      return absl::FailedPreconditionError(absl::StrCat(
          "fit diverged at iteration ", iteration_ + 1, ": ", cause, " for ", consecutive_skips_,
          " steps in a row; try a smaller learning rate, gradient clipping (max_grad_norm) or "
          "annealing"));
    }
  }
  ++iteration_;
  if (finite) {
    trace_sum_ += elbo;
    ++trace_count_;
  }
  if (iteration_ % trace_stride_ == 0 || iteration_ == options_.iterations) {
    if (trace_count_ > 0) trace_.push_back(trace_sum_ / static_cast<double>(trace_count_));
    trace_sum_ = 0;
    trace_count_ = 0;
  }
  it->iteration = iteration_;
  it->total_iterations = options_.iterations;
  it->elbo = finite ? elbo : std::nan("");
  it->beta = beta;
  it->grad_norm = grad_norm;
  it->skipped = !finite;
  return absl::OkStatus();
}

absl::StatusOr<FitSummary> Fitter::Run(IterationCallback* callback) {
  const absl::Time start = absl::Now();
  FitSummary summary;
  summary.reason = TerminationReason::kCompleted;
  while (iteration_ < options_.iterations) {
    IterationSummary it;
    if (absl::Status s = Step(&it); !s.ok()) return s;
    if (callback != nullptr) {
      it.elapsed_seconds = absl::ToDoubleSeconds(absl::Now() - start);
      if (callback->OnIteration(it) == CallbackAction::kStop) {
        summary.reason = TerminationReason::kStopped;
        break;
      }
    }
  }
  summary.iterations = iteration_;
  summary.skipped_steps = skipped_;
  summary.trace_stride = trace_stride_;
  summary.elbo_trace = trace_;
  summary.elapsed_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return summary;
}

FitCheckpoint Fitter::Checkpoint() const {
  FitCheckpoint c;
  c.params = flow_->params();
  c.optimizer = optimizer_.state();
  c.iteration = iteration_;
  c.rng = rng_.state();
  c.skipped_steps = skipped_;
  c.consecutive_skips = consecutive_skips_;
  c.trace = trace_;
  c.trace_sum = trace_sum_;
  c.trace_count = trace_count_;
  return c;
}

absl::Status Fitter::Restore(const FitCheckpoint& c) {
  const int n = flow_->num_params();
  if (c.params.size() != n || c.optimizer.m.size() != n || c.optimizer.v.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint has ", c.params.size(), " parameters, the flow has ", n));
  }
  if (c.iteration < 0 || c.iteration > options_.iterations) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint iteration ", c.iteration,
                                                   " is outside [0, ", options_.iterations, "]"));
  }
  if (!c.params.allFinite()) {
    return absl::InvalidArgumentError("checkpoint parameters are not finite");
  }
  flow_->mutable_params() = c.params;
  optimizer_.set_state(c.optimizer);
  iteration_ = c.iteration;
  rng_.set_state(c.rng);
  skipped_ = c.skipped_steps;
  consecutive_skips_ = c.consecutive_skips;
  trace_ = c.trace;
  trace_.reserve(options_.trace_points + 1);
  trace_sum_ = c.trace_sum;
  trace_count_ = c.trace_count;
  return absl::OkStatus();
}

}  // namespace flowvi
