#include "engine/flows/diagonal_affine.h"

namespace flowvi {
namespace {

class AffineCache final : public LayerCache {
 public:
  explicit AffineCache(int dim) : sigma(dim) {}
  Vector sigma;
};

}  // namespace

void DiagonalAffineLayer::InitParams(Rng& /*rng*/, VectorRef params) const {
  params.setZero();  // the standard normal
}

std::unique_ptr<LayerCache> DiagonalAffineLayer::NewCache(int /*n*/) const {
  return std::make_unique<AffineCache>(dim_);
}

void DiagonalAffineLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                                  RowVector& logdet, LayerCache* cache) const {
  auto& c = *static_cast<AffineCache*>(cache);
  const auto mu = params.segment(0, dim_);
  const auto s = params.segment(dim_, dim_);
  c.sigma = s.array().exp();
  out = (in.array().colwise() * c.sigma.array()).colwise() + mu.array();
  logdet.array() += s.sum();
}

void DiagonalAffineLayer::Backward(ConstVectorRef /*params*/, const Matrix& in,
                                   const Matrix& grad_out, const RowVector& dlogdet,
                                   LayerCache* cache, VectorRef grad_params,
                                   Matrix& grad_in) const {
  auto& c = *static_cast<AffineCache*>(cache);
  grad_params.segment(0, dim_) += grad_out.rowwise().sum();
  // dL/ds_i = σ_i Σ_j G_ij z_ij + Σ_j dlogdet_j.
  const double g_sum = dlogdet.sum();
  for (int i = 0; i < dim_; ++i) {
    grad_params[dim_ + i] += c.sigma[i] * grad_out.row(i).dot(in.row(i)) + g_sum;
  }
  grad_in = grad_out.array().colwise() * c.sigma.array();
}

absl::Status DiagonalAffineLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                          RowVector& logdet) const {
  const auto mu = params.segment(0, dim_);
  const auto s = params.segment(dim_, dim_);
  in = (out.colwise() - mu).array().colwise() * (-s.array()).exp();
  logdet.array() += s.sum();
  return absl::OkStatus();
}

}  // namespace flowvi
