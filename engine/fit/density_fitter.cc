#include "engine/fit/density_fitter.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/flows/flow.h"

namespace flowvi {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The split draws from a stream of its own, so that it depends on the seed only.
constexpr uint64_t kSplitStream = 0x5851f42d4c957f2dULL;

// A uniform index in [0, n) (the modulo bias, < n / 2^64, is irrelevant here; what matters is
// that the draw is fully specified, hence reproducible everywhere).
int64_t UniformIndex(Rng& rng, int64_t n) {
  return static_cast<int64_t>(rng.Next() % static_cast<uint64_t>(n));
}

// Fisher–Yates.
void ShuffleInPlace(Rng& rng, std::vector<int64_t>* v) {
  for (int64_t i = static_cast<int64_t>(v->size()) - 1; i > 0; --i) {
    std::swap((*v)[i], (*v)[UniformIndex(rng, i + 1)]);
  }
}

}  // namespace

DensityFitter::DensityFitter(const DensityFitOptions& options, std::unique_ptr<DensityModel> model,
                             Matrix train, Matrix held_out)
    : options_(options),
      model_(std::move(model)),
      train_(std::move(train)),
      held_out_(std::move(held_out)),
      optimizer_(options.OptimizerOptions()),
      rng_(options.seed),
      best_held_out_(-std::numeric_limits<double>::infinity()),
      last_held_out_(kNaN) {
  Flow& flow = model_->mutable_flow();
  flow.InitParams(rng_);
  optimizer_.Reset(flow.num_params());
  ws_ = model_->NewWorkspace(options.batch_size);
  grad_.resize(flow.num_params());
  best_params_ = flow.params();
  order_.resize(train_.cols());
  for (int64_t i = 0; i < train_.cols(); ++i) order_[i] = i;
  Shuffle();
  // Workspaces for the held-out evaluation: full chunks and the last one.
  const int64_t n_val = held_out_.cols();
  if (n_val > 0) {
    WorkspaceFor(static_cast<int>(std::min<int64_t>(options.batch_size, n_val)));
    if (n_val % options.batch_size != 0) WorkspaceFor(static_cast<int>(n_val % options.batch_size));
  }
  trace_.reserve(options.iterations / options.eval_interval + 2);  // no allocation in Step
}

absl::StatusOr<std::unique_ptr<DensityFitter>> DensityFitter::Create(
    const Dataset& data, const FlowSpec& spec, const DensityFitOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  const int dim = data.dim();
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(spec, dim);
  if (!flow.ok()) return flow.status();

  const int64_t n = data.size();
  const int64_t n_val =
      options.validation_fraction > 0
          ? std::max<int64_t>(1, std::llround(options.validation_fraction * static_cast<double>(n)))
          : 0;
  if (n - n_val < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the data set has ", n, " point(s); with validation_fraction ",
                     options.validation_fraction, " no point is left for training"));
  }
  // Held-out points: the first n_val of a seeded shuffle; both splits keep the data's order.
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  Rng split_rng(options.seed ^ kSplitStream);
  ShuffleInPlace(split_rng, &perm);
  std::vector<bool> held(n, false);
  for (int64_t i = 0; i < n_val; ++i) held[perm[i]] = true;
  Matrix train(dim, n - n_val), held_out(dim, n_val);
  for (int64_t j = 0, t = 0, v = 0; j < n; ++j) {
    (held[j] ? held_out.col(v++) : train.col(t++)) = data.points().col(j);
  }

  const Vector mean = train.rowwise().mean();
  const Vector sd =
      ((train.colwise() - mean).rowwise().squaredNorm() / static_cast<double>(train.cols()))
          .cwiseSqrt();
  for (int i = 0; i < dim; ++i) {
    // Relative to the column's magnitude: a spread at rounding level is no spread.
    if (!(sd[i] > 1e-12 * std::max(1.0, std::abs(mean[i])))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "column ", i + 1, " is constant (", mean[i], ") over the ", train.cols(),
          " training points, so it has no density; drop the column or add more varied data"));
    }
  }
  train = (train.colwise() - mean).array().colwise() / sd.array();
  held_out = (held_out.colwise() - mean).array().colwise() / sd.array();
  absl::StatusOr<std::unique_ptr<DensityModel>> model =
      DensityModel::Create(*std::move(flow), mean, sd);
  if (!model.ok()) return model.status();
  return std::unique_ptr<DensityFitter>(
      new DensityFitter(options, *std::move(model), std::move(train), std::move(held_out)));
}

void DensityFitter::Shuffle() {
  ShuffleInPlace(rng_, &order_);
  position_ = 0;
}

DensityWorkspace* DensityFitter::WorkspaceFor(int n) {
  for (const auto& ws : eval_ws_) {
    if (ws->batch_size() == n) return ws.get();
  }
  eval_ws_.push_back(model_->NewWorkspace(n));
  return eval_ws_.back().get();
}

double DensityFitter::MeanLogLikelihood(const Matrix& standardized) {
  const int64_t n = standardized.cols();
  if (n == 0) return kNaN;
  double sum = 0;
  for (int64_t start = 0; start < n; start += options_.batch_size) {
    const int m = static_cast<int>(std::min<int64_t>(options_.batch_size, n - start));
    DensityWorkspace* ws = WorkspaceFor(m);
    ws->standardized() = standardized.middleCols(start, m);
    model_->LogDensityStandardized(ws, &ws->log_q_);
    sum += ws->log_q_.sum();
  }
  return sum / static_cast<double>(n);
}

void DensityFitter::Evaluate(DensityProgress* progress) {
  const Vector& params = model_->flow().params();
  if (held_out_.cols() > 0) {
    last_held_out_ = MeanLogLikelihood(held_out_);
    if (last_held_out_ > best_held_out_) {
      best_held_out_ = last_held_out_;
      best_params_ = params;
      best_iteration_ = iteration_;
      evals_since_best_ = 0;
    } else {
      ++evals_since_best_;
      if (options_.patience > 0 && evals_since_best_ >= options_.patience) finished_ = true;
    }
  } else {
    best_params_ = params;
    best_iteration_ = iteration_;
  }
  trace_.push_back({iteration_,
                    train_count_ > 0 ? train_sum_ / static_cast<double>(train_count_) : kNaN,
                    last_held_out_});
  train_sum_ = 0;
  train_count_ = 0;
  progress->evaluated = true;
}

absl::Status DensityFitter::Step(DensityProgress* progress) {
  if (finished_) {
    return absl::FailedPreconditionError(
        absl::StrCat("the density fit has finished after ", iteration_, " of ", options_.iterations,
                     " iterations; create a new fit to train further"));
  }
  Matrix& batch = ws_->standardized();
  for (int j = 0; j < options_.batch_size; ++j) {
    if (position_ == train_.cols()) Shuffle();
    batch.col(j) = train_.col(order_[position_++]);
  }
  const double loss = model_->LossAndGradient(ws_.get(), grad_);
  const bool finite = std::isfinite(loss) && grad_.allFinite();
  double grad_norm = 0;
  if (finite) {
    grad_norm = grad_.norm();
    if (options_.max_grad_norm > 0 && grad_norm > options_.max_grad_norm) {
      grad_ *= options_.max_grad_norm / grad_norm;
    }
    optimizer_.Step(grad_, model_->mutable_flow().mutable_params());
    consecutive_skips_ = 0;
    train_sum_ -= loss;
    ++train_count_;
  } else {
    ++skipped_;
    if (++consecutive_skips_ >= options_.max_consecutive_skips) {
      finished_ = true;
      UseBestParameters();
      return absl::FailedPreconditionError(
          absl::StrCat("density fit diverged at iteration ", iteration_ + 1,
                       ": the log-likelihood or its "
                       "gradient was not finite for ",
                       consecutive_skips_,
                       " steps in a row; try a smaller "
                       "learning_rate or gradient clipping (max_grad_norm)"));
    }
  }
  ++iteration_;
  *progress = DensityProgress{};
  progress->iteration = iteration_;
  progress->total_iterations = options_.iterations;
  progress->epoch =
      static_cast<double>(iteration_) * options_.batch_size / static_cast<double>(train_.cols());
  progress->train_log_likelihood = finite ? -loss : kNaN;
  progress->grad_norm = grad_norm;
  progress->skipped = !finite;
  if (iteration_ % options_.eval_interval == 0 || iteration_ == options_.iterations) {
    Evaluate(progress);
  }
  if (iteration_ == options_.iterations) finished_ = true;
  progress->held_out_log_likelihood = last_held_out_;
  progress->best_held_out_log_likelihood = held_out_.cols() > 0 ? best_held_out_ : kNaN;
  return absl::OkStatus();
}

void DensityFitter::UseBestParameters() { model_->mutable_flow().mutable_params() = best_params_; }

absl::StatusOr<DensityFitSummary> DensityFitter::Run(DensityCallback* callback) {
  const absl::Time start = absl::Now();
  DensityFitSummary summary;
  summary.reason = DensityTermination::kCompleted;
  bool stopped = false;
  while (!finished_) {
    DensityProgress progress;
    if (absl::Status s = Step(&progress); !s.ok()) return s;
    if (callback != nullptr) {
      progress.elapsed_seconds = absl::ToDoubleSeconds(absl::Now() - start);
      if (callback->OnProgress(progress) == CallbackAction::kStop && !finished_) {
        stopped = true;
        break;
      }
    }
  }
  if (stopped) {
    summary.reason = DensityTermination::kStopped;
  } else {
    UseBestParameters();
    summary.reason = iteration_ < options_.iterations ? DensityTermination::kEarlyStopped
                                                      : DensityTermination::kCompleted;
  }
  summary.iterations = iteration_;
  summary.best_iteration = best_iteration_;
  summary.skipped_steps = skipped_;
  summary.train_points = train_.cols();
  summary.held_out_points = held_out_.cols();
  summary.train_log_likelihood = MeanLogLikelihood(train_);
  summary.held_out_log_likelihood = MeanLogLikelihood(held_out_);
  summary.trace = trace_;
  summary.elapsed_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return summary;
}

DensityCheckpoint DensityFitter::Checkpoint() const {
  DensityCheckpoint c;
  c.params = model_->flow().params();
  c.best_params = best_params_;
  c.optimizer = optimizer_.state();
  c.iteration = iteration_;
  c.rng = rng_.state();
  c.order = order_;
  c.position = position_;
  c.best_held_out = best_held_out_;
  c.best_iteration = best_iteration_;
  c.evals_since_best = evals_since_best_;
  c.skipped_steps = skipped_;
  c.consecutive_skips = consecutive_skips_;
  c.train_sum = train_sum_;
  c.train_count = train_count_;
  c.trace = trace_;
  return c;
}

absl::Status DensityFitter::Restore(const DensityCheckpoint& c) {
  const int64_t np = model_->flow().num_params();
  if (c.params.size() != np || c.best_params.size() != np || c.optimizer.m.size() != np ||
      c.optimizer.v.size() != np) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint has ", c.params.size(), " parameters, the flow has ", np));
  }
  if (!c.params.allFinite() || !c.best_params.allFinite()) {
    return absl::InvalidArgumentError("checkpoint parameters are not finite");
  }
  if (c.iteration < 0 || c.iteration > options_.iterations || c.best_iteration < 0 ||
      c.best_iteration > c.iteration) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint iterations (", c.iteration,
                                                   ", best ", c.best_iteration,
                                                   ") are outside [0, ", options_.iterations, "]"));
  }
  const int64_t n = train_.cols();
  if (static_cast<int64_t>(c.order.size()) != n || c.position < 0 || c.position > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint shuffles ", c.order.size(), " training points, this fit has ", n));
  }
  std::vector<bool> seen(n, false);
  for (int64_t i : c.order) {
    if (i < 0 || i >= n || seen[i]) {
      return absl::InvalidArgumentError("checkpoint's training order is not a permutation");
    }
    seen[i] = true;
  }
  model_->mutable_flow().mutable_params() = c.params;
  best_params_ = c.best_params;
  optimizer_.set_state(c.optimizer);
  iteration_ = c.iteration;
  rng_.set_state(c.rng);
  order_ = c.order;
  position_ = c.position;
  best_held_out_ = c.best_held_out;
  best_iteration_ = c.best_iteration;
  evals_since_best_ = c.evals_since_best;
  skipped_ = c.skipped_steps;
  consecutive_skips_ = c.consecutive_skips;
  train_sum_ = c.train_sum;
  train_count_ = c.train_count;
  trace_ = c.trace;
  trace_.reserve(options_.iterations / options_.eval_interval + 2);
  last_held_out_ = trace_.empty() ? kNaN : trace_.back().held_out_log_likelihood;
  finished_ = iteration_ == options_.iterations || (held_out_.cols() > 0 && options_.patience > 0 &&
                                                    evals_since_best_ >= options_.patience);
  return absl::OkStatus();
}

}  // namespace flowvi
