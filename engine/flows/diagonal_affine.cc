#include "engine/flows/diagonal_affine.h"

#include "engine/core/simd.h"

namespace flowvi {
namespace {

using simd::Vec;

class AffineCache final : public LayerCache {
 public:
  explicit AffineCache(int dim) : sigma(dim) {}
  Vector sigma;
};

// Kernels for kDim = 1 to 4 (see planar.cc): Eigen's column- and row-wise operations on a
// matrix with a handful of rows run one scalar at a time.

// out = μ + σ ⊙ z, column by column.
template <int kDim>
void AffineForward(const double* mu, const double* sigma, const double* z, int n, double* out) {
  Vec mv[kDim], sv[kDim];
  for (int i = 0; i < kDim; ++i) {
    mv[i] = simd::Broadcast(mu[i]);
    sv[i] = simd::Broadcast(sigma[i]);
  }
  simd::ForEachGroup(n, [&](int j, int count) {
    Vec rows[kDim];
    simd::LoadColumns<kDim>(z + kDim * j, count, rows);
    for (int i = 0; i < kDim; ++i) rows[i] = rows[i] * sv[i] + mv[i];
    simd::StoreColumns<kDim>(out + kDim * j, count, rows);
  });
}

// grad_in = σ ⊙ G, and the row sums Σ_j G_ij and Σ_j G_ij z_ij.
template <int kDim>
void AffineBackward(const double* sigma, const double* z, const double* g, int n, double* grad_in,
                    double* sum_g, double* sum_gz) {
  Vec sv[kDim], acc_g[kDim] = {}, acc_gz[kDim] = {};
  for (int i = 0; i < kDim; ++i) sv[i] = simd::Broadcast(sigma[i]);
  simd::ForEachGroup(n, [&](int j, int count) {
    Vec gv[kDim], zv[kDim];
    simd::LoadColumns<kDim>(g + kDim * j, count, gv);
    simd::LoadColumns<kDim>(z + kDim * j, count, zv);
    for (int i = 0; i < kDim; ++i) {
      acc_g[i] += gv[i];
      acc_gz[i] += gv[i] * zv[i];
      gv[i] *= sv[i];
    }
    simd::StoreColumns<kDim>(grad_in + kDim * j, count, gv);
  });
  for (int i = 0; i < kDim; ++i) {
    sum_g[i] = simd::Sum(acc_g[i]);
    sum_gz[i] = simd::Sum(acc_gz[i]);
  }
}

}  // namespace

void DiagonalAffineLayer::InitParams(Rng& /*rng*/, VectorRef params) const {
  params.setZero();  // the standard normal
}

std::unique_ptr<LayerCache> DiagonalAffineLayer::NewCache(int /*n*/) const {
  return std::make_unique<AffineCache>(dim_);
}

void DiagonalAffineLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                                  LogDetAccumulator& logdet, LayerCache* cache) const {
  auto& c = *static_cast<AffineCache*>(cache);
  const auto mu = params.segment(0, dim_);
  const auto s = params.segment(dim_, dim_);
  c.sigma = s.array().exp();
  out.resize(in.rows(), in.cols());  // a no-op (no allocation) when the shape is right
  simd::WithFixedDim(dim_, [&](auto fixed) {
    constexpr int kDim = decltype(fixed)::value;
    if constexpr (kDim > 0) {
      AffineForward<kDim>(mu.data(), c.sigma.data(), in.data(), static_cast<int>(in.cols()),
                          out.data());
    } else {
      out = (in.array().colwise() * c.sigma.array()).colwise() + mu.array();
    }
  });
  logdet.AddConstant(s.sum());  // the same for every column
}

void DiagonalAffineLayer::Backward(ConstVectorRef /*params*/, const Matrix& in,
                                   const Matrix& grad_out, const RowVector& dlogdet,
                                   LayerCache* cache, VectorRef grad_params,
                                   Matrix& grad_in) const {
  auto& c = *static_cast<AffineCache*>(cache);
  // dL/dμ_i = Σ_j G_ij; dL/ds_i = σ_i Σ_j G_ij z_ij + Σ_j dlogdet_j.
  const double g_sum = dlogdet.sum();
  grad_in.resize(in.rows(), in.cols());
  simd::WithFixedDim(dim_, [&](auto fixed) {
    constexpr int kDim = decltype(fixed)::value;
    if constexpr (kDim > 0) {
      double sum_g[kDim], sum_gz[kDim];
      AffineBackward<kDim>(c.sigma.data(), in.data(), grad_out.data(), static_cast<int>(in.cols()),
                           grad_in.data(), sum_g, sum_gz);
      for (int i = 0; i < kDim; ++i) {
        grad_params[i] += sum_g[i];
        grad_params[dim_ + i] += c.sigma[i] * sum_gz[i] + g_sum;
      }
    } else {
      grad_params.segment(0, dim_) += grad_out.rowwise().sum();
      for (int i = 0; i < dim_; ++i) {
        grad_params[dim_ + i] += c.sigma[i] * grad_out.row(i).dot(in.row(i)) + g_sum;
      }
      grad_in = grad_out.array().colwise() * c.sigma.array();
    }
  });
}

absl::Status DiagonalAffineLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                          RowVector& logdet) const {
  const auto mu = params.segment(0, dim_);
  const auto s = params.segment(dim_, dim_);
  // Column by column, with exp(−s) computed per entry: Eigen would evaluate a broadcast
  // exp(−s) into a temporary, and sampling a density model inverts every batch.
  in.resize(out.rows(), out.cols());
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    in.col(j).array() = (out.col(j) - mu).array() * (-s.array()).exp();
  }
  logdet.array() += s.sum();
  return absl::OkStatus();
}

}  // namespace flowvi
