#include "engine/flows/flow.h"

#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "engine/flows/diagonal_affine.h"
#include "engine/flows/layer_catalog.h"

namespace flowvi {

void StandardNormalLogDensity(const Matrix& eps, RowVector* out) {
  const double c = -0.5 * static_cast<double>(eps.rows()) * std::log(2.0 * std::numbers::pi);
  *out = (-0.5 * eps.colwise().squaredNorm()).array() + c;
}

Flow::Flow(FlowSpec spec, int dim, std::vector<std::unique_ptr<Layer>> layers)
    : spec_(std::move(spec)), dim_(dim), layers_(std::move(layers)) {
  int offset = 0;
  for (const auto& layer : layers_) {
    offsets_.push_back(offset);
    offset += layer->num_params();
  }
  params_ = Vector::Zero(offset);
}

int Flow::num_fixed_params() const {
  int n = 0;
  for (const auto& layer : layers_) n += layer->num_fixed_params();
  return n;
}

absl::StatusOr<std::unique_ptr<Flow>> Flow::Create(const FlowSpec& spec, int dim) {
  if (dim < 1) {
    return absl::InvalidArgumentError(absl::StrCat("flow dimension must be at least 1, got ", dim));
  }
  absl::StatusOr<FlowSpec> valid = ValidateFlowSpec(spec);
  if (!valid.ok()) return valid.status();
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<DiagonalAffineLayer>(dim));
  for (const LayerGroup& group : valid->groups) {
    const LayerInfo* info = FindLayer(group.type);
    for (int i = 0; i < group.count; ++i) {
      absl::StatusOr<std::unique_ptr<Layer>> layer = info->factory(dim, group.options);
      if (!layer.ok()) return layer.status();
      layers.push_back(*std::move(layer));
    }
  }
  return std::unique_ptr<Flow>(new Flow(*std::move(valid), dim, std::move(layers)));
}

void Flow::InitParams(Rng& rng) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->InitParams(rng, params_.segment(offsets_[i], layers_[i]->num_params()));
  }
}

std::unique_ptr<FlowWorkspace> Flow::NewWorkspace(int batch_size) const {
  auto ws = std::make_unique<FlowWorkspace>();
  ws->z_.assign(layers_.size() + 1, Matrix(dim_, batch_size));
  for (const auto& layer : layers_) ws->caches_.push_back(layer->NewCache(batch_size));
  ws->logdet_ = LogDetAccumulator(batch_size);
  ws->log_q_.resize(batch_size);
  ws->dlogdet_.resize(batch_size);
  ws->grad_a_.resize(dim_, batch_size);
  ws->grad_b_.resize(dim_, batch_size);
  return ws;
}

double Flow::WorkspaceBytes(int batch_size) const {
  // z_0 .. z_K, two gradient buffers, and a few rows of per-column scalars.
  double per_column = static_cast<double>(dim_) * static_cast<double>(layers_.size() + 3) + 6.0;
  for (const auto& layer : layers_) {
    per_column += static_cast<double>(layer->cache_doubles_per_column());
  }
  return sizeof(double) * per_column * batch_size;
}

void Flow::Forward(FlowWorkspace* ws) const {
  // log q = log N(ε) − Σ log|det|.
  LogDetAccumulator& logdet = ws->logdet_;
  logdet.Reset();
  for (size_t k = 0; k < layers_.size(); ++k) {
    layers_[k]->Forward(params_.segment(offsets_[k], layers_[k]->num_params()), ws->z_[k],
                        ws->z_[k + 1], logdet, ws->caches_[k].get());
  }
  logdet.Fold();
  const double c = -0.5 * static_cast<double>(dim_) * std::log(2.0 * std::numbers::pi);
  ws->log_q_ = (-0.5 * ws->z_[0].colwise().squaredNorm()).array() + c - logdet.log_sum().array();
}

void Flow::Sample(Rng& rng, FlowWorkspace* ws) const {
  rng.FillNormal(&ws->z_[0]);
  Forward(ws);
}

void Flow::Backward(const Matrix& grad_z, const RowVector& grad_log_q, FlowWorkspace* ws,
                    VectorRef grad) const {
  // log q = log N(ε) − Σ logdet_k, so every layer sees dL/dlogdet = −dL/dlog q.
  ws->dlogdet_ = -grad_log_q;
  const Matrix* g_out = &grad_z;
  Matrix* bufs[2] = {&ws->grad_a_, &ws->grad_b_};
  int which = 0;
  for (size_t k = layers_.size(); k-- > 0;) {
    Matrix* g_in = bufs[which];
    layers_[k]->Backward(params_.segment(offsets_[k], layers_[k]->num_params()), ws->z_[k], *g_out,
                         ws->dlogdet_, ws->caches_[k].get(),
                         grad.segment(offsets_[k], layers_[k]->num_params()), *g_in);
    g_out = g_in;
    which ^= 1;
  }
}

absl::Status Flow::LogDensity(const Matrix& points, RowVector* log_q, Matrix* scratch_a,
                              Matrix* scratch_b) const {
  if (points.rows() != dim_) {
    return absl::InvalidArgumentError(
        absl::StrCat("points have dimension ", points.rows(), ", the flow has ", dim_));
  }
  for (Eigen::Index j = 0; j < points.cols(); ++j) {
    if (!points.col(j).allFinite()) {
      return absl::InvalidArgumentError(absl::StrCat("point ", j, " is not finite"));
    }
  }
  log_q->setZero(points.cols());
  const Matrix* out = &points;
  Matrix* bufs[2] = {scratch_a, scratch_b};
  int which = 0;
  for (size_t k = layers_.size(); k-- > 0;) {
    Matrix* in = bufs[which];
    absl::Status s = layers_[k]->Inverse(params_.segment(offsets_[k], layers_[k]->num_params()),
                                         *out, *in, *log_q);
    if (!s.ok()) return s;
    out = in;
    which ^= 1;
  }
  const double c = -0.5 * static_cast<double>(dim_) * std::log(2.0 * std::numbers::pi);
  *log_q = (-0.5 * out->colwise().squaredNorm()).array() + c - log_q->array();
  return absl::OkStatus();
}

}  // namespace flowvi
