#include "engine/flows/scale.h"

#include "engine/flows/coupling.h"

namespace flowvi {
namespace {

class ScaleCache final : public LayerCache {
 public:
  explicit ScaleCache(int dim) : sigma(dim) {}
  Vector sigma;  // exp(s)
};

}  // namespace

void ScaleLayer::InitParams(Rng& /*rng*/, VectorRef params) const { params.setZero(); }

std::unique_ptr<LayerCache> ScaleLayer::NewCache(int /*n*/) const {
  return std::make_unique<ScaleCache>(dim_);
}

void ScaleLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                         LogDetAccumulator& logdet, LayerCache* cache) const {
  auto& c = *static_cast<ScaleCache*>(cache);
  c.sigma = params.array().exp();
  out.resize(in.rows(), in.cols());
  out = in.array().colwise() * c.sigma.array();
  logdet.AddConstant(params.sum());
}

void ScaleLayer::Backward(ConstVectorRef /*params*/, const Matrix& in, const Matrix& grad_out,
                          const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                          Matrix& grad_in) const {
  const auto& c = *static_cast<ScaleCache*>(cache);
  // dL/ds_i = σ_i Σ_j G_ij x_ij + Σ_j dlogdet_j.
  const double g_sum = dlogdet.sum();
  for (int i = 0; i < dim_; ++i) {
    grad_params[i] += c.sigma[i] * grad_out.row(i).dot(in.row(i)) + g_sum;
  }
  grad_in.resize(in.rows(), in.cols());
  grad_in = grad_out.array().colwise() * c.sigma.array();
}

absl::Status ScaleLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                 RowVector& logdet) const {
  if (absl::Status s = CheckFiniteForInverse(type(), out); !s.ok()) return s;
  // Column by column: a broadcast exp(−s) would be evaluated into a temporary (see
  // diagonal_affine.cc).
  in.resize(out.rows(), out.cols());
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    in.col(j).array() = out.col(j).array() * (-params.array()).exp();
  }
  logdet.array() += params.sum();
  return absl::OkStatus();
}

}  // namespace flowvi
