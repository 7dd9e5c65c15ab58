#include "engine/fit/density_model.h"

#include <cmath>
#include <numbers>
#include <utility>

#include "absl/strings/str_cat.h"

namespace flowvi {
namespace {

// log N(y; 0, I) of each column plus a constant, into *out (size y.cols(): no allocation).
void StandardNormalPlus(const Matrix& y, double constant, RowVector* out) {
  const double c =
      constant - 0.5 * static_cast<double>(y.rows()) * std::log(2.0 * std::numbers::pi);
  out->resize(y.cols());
  for (Eigen::Index j = 0; j < y.cols(); ++j) (*out)[j] = -0.5 * y.col(j).squaredNorm() + c;
}

}  // namespace

DensityModel::DensityModel(std::unique_ptr<Flow> flow, Vector mean, Vector sd)
    : flow_(std::move(flow)),
      mean_(std::move(mean)),
      sd_(std::move(sd)),
      inv_sd_(sd_.cwiseInverse()),
      log_sd_sum_(sd_.array().log().sum()) {}

absl::StatusOr<std::unique_ptr<DensityModel>> DensityModel::Create(std::unique_ptr<Flow> flow,
                                                                   Vector mean, Vector sd) {
  if (flow == nullptr) return absl::InvalidArgumentError("density model: no flow");
  const int d = flow->dim();
  if (mean.size() != d || sd.size() != d) {
    return absl::InvalidArgumentError(
        absl::StrCat("density model: the standardization has ", mean.size(), " means and ",
                     sd.size(), " standard deviations, the flow has dimension ", d));
  }
  for (int i = 0; i < d; ++i) {
    if (!std::isfinite(mean[i]) || !(sd[i] > 0) || !std::isfinite(sd[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("density model: coordinate ", i + 1, " has mean ", mean[i], " and sd ",
                       sd[i], "; the mean must be finite and the sd positive and finite"));
    }
  }
  return std::unique_ptr<DensityModel>(
      new DensityModel(std::move(flow), std::move(mean), std::move(sd)));
}

std::unique_ptr<DensityWorkspace> DensityModel::NewWorkspace(int n) const {
  auto ws = std::make_unique<DensityWorkspace>();
  ws->flow_ws_ = flow_->NewWorkspace(n);
  for (int k = 0; k < flow_->num_layers(); ++k) {
    ws->caches_.push_back(flow_->layer(k).NewCache(n));
  }
  ws->inv_a_.resize(dim(), n);
  ws->inv_b_.resize(dim(), n);
  ws->logdet_.resize(n);
  ws->points_.resize(dim(), n);
  ws->log_q_.resize(n);
  ws->grad_z_.resize(dim(), n);
  ws->grad_log_q_ = RowVector::Constant(n, 1.0 / n);
  return ws;
}

void DensityModel::LogDensityStandardized(DensityWorkspace* ws, RowVector* log_q) const {
  // y = f(u); log q = log N(y) + log|det ∂f/∂u| − Σ log sd.
  flow_->Forward(ws->flow_ws_.get());
  StandardNormalPlus(ws->flow_ws_->z(), -log_sd_sum_, log_q);
  *log_q += ws->flow_ws_->log_det();
}

double DensityModel::LossAndGradient(DensityWorkspace* ws, VectorRef grad) const {
  LogDensityStandardized(ws, &ws->log_q_);
  const double n = static_cast<double>(ws->batch_size());
  // L = −(1/N) Σ_j [log N(y_j) + logdet_j] + const: dL/dy_j = y_j / N and dL/dlogdet_j = −1/N.
  // Flow::Backward takes dL/dlog q of the VI direction, where log q = log N(ε) − logdet, and
  // hands every layer dL/dlogdet = −dL/dlog q; so dL/dlog q = +1/N here. (The log N(ε) term of
  // that log q depends only on the input u, never on the parameters.)
  ws->grad_z_.noalias() = ws->flow_ws_->z() / n;
  grad.setZero();
  flow_->Backward(ws->grad_z_, ws->grad_log_q_, ws->flow_ws_.get(), grad);
  return -ws->log_q_.sum() / n;
}

absl::Status DensityModel::LogDensity(const Matrix& points, DensityWorkspace* ws,
                                      RowVector* log_q) const {
  if (points.rows() != dim()) {
    return absl::InvalidArgumentError(
        absl::StrCat("points have dimension ", points.rows(), ", the density model has ", dim()));
  }
  if (points.cols() != ws->batch_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("workspace is for ", ws->batch_size(), " points, got ", points.cols()));
  }
  for (Eigen::Index j = 0; j < points.cols(); ++j) {
    for (Eigen::Index i = 0; i < points.rows(); ++i) {
      if (!std::isfinite(points(i, j))) {
        return absl::InvalidArgumentError(absl::StrCat("point ", j + 1, ", coordinate ", i + 1,
                                                       ": value ", points(i, j),
                                                       " is not a finite number"));
      }
    }
  }
  ws->flow_ws_->eps() = (points.colwise() - mean_).array().colwise() * inv_sd_.array();
  LogDensityStandardized(ws, log_q);
  return absl::OkStatus();
}

absl::StatusOr<RowVector> DensityModel::LogDensity(const Matrix& points) const {
  std::unique_ptr<DensityWorkspace> ws = NewWorkspace(static_cast<int>(points.cols()));
  RowVector log_q(points.cols());
  if (absl::Status s = LogDensity(points, ws.get(), &log_q); !s.ok()) return s;
  return log_q;
}

absl::Status DensityModel::Sample(Rng& rng, DensityWorkspace* ws) const {
  Matrix* cur = &ws->inv_a_;
  Matrix* next = &ws->inv_b_;
  rng.FillNormal(cur);
  ws->logdet_.setZero();
  // log N(ε) first: ε's buffer is overwritten by the inverse pass.
  StandardNormalPlus(*cur, -log_sd_sum_, &ws->log_q_);
  for (int k = flow_->num_layers(); k-- > 0;) {
    const Layer& layer = flow_->layer(k);
    absl::Status s =
        layer.InverseWithCache(flow_->params().segment(flow_->param_offset(k), layer.num_params()),
                               *cur, *next, ws->logdet_, ws->caches_[k].get());
    if (!s.ok()) return s;
    std::swap(cur, next);
  }
  // u = *cur; log q(x) = log N(ε) + log|det ∂f/∂u| − Σ log sd.
  ws->log_q_ += ws->logdet_;
  ws->points_ = (cur->array().colwise() * sd_.array()).colwise() + mean_.array();
  return absl::OkStatus();
}

}  // namespace flowvi
