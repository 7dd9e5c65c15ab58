#include "engine/flows/orthogonal.h"

#include <cmath>

#include "engine/flows/coupling.h"
#include "engine/flows/tiled_product.h"

namespace flowvi {
namespace {

class OrthogonalCache final : public LayerCache {
 public:
  explicit OrthogonalCache(int dim)
      : params(Vector::Constant(dim * dim, std::nan(""))), q(dim, dim), scratch(dim), dim_(dim) {}
  Vector params;  // what q was formed from (NaN: not yet)
  Matrix q;
  Vector scratch;

  void Update(ConstVectorRef p) {
    // The vectors never change during training, so Q is formed once per cache.
    if (p.cwiseEqual(params).all()) return;
    params = p;
    HouseholderProduct(p, dim_, &q, &scratch);
  }

 private:
  int dim_;
};

}  // namespace

void HouseholderProduct(ConstVectorRef params, int dim, Matrix* q, Vector* scratch) {
  q->setIdentity(dim, dim);
  for (int k = 0; k < dim; ++k) {
    const auto v = params.segment(k * dim, dim);
    const double n2 = v.squaredNorm();
    if (!(n2 > 0) || !std::isfinite(n2)) continue;  // H(0) = I; overflow: skip as well
    scratch->noalias() = *q * v;
    q->noalias() -= (2.0 / n2) * *scratch * v.transpose();
  }
}

void OrthogonalLayer::InitParams(Rng& rng, VectorRef params) const {
  for (Eigen::Index i = 0; i < params.size(); ++i) params[i] = rng.Normal();
}

std::unique_ptr<LayerCache> OrthogonalLayer::NewCache(int /*n*/) const {
  return std::make_unique<OrthogonalCache>(dim_);
}

void OrthogonalLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                              LogDetAccumulator& /*logdet*/, LayerCache* cache) const {
  auto& c = *static_cast<OrthogonalCache*>(cache);
  c.Update(params);
  out.resize(in.rows(), in.cols());
  TiledProduct(c.q, in, out, false);
}

void OrthogonalLayer::Backward(ConstVectorRef /*params*/, const Matrix& in, const Matrix& grad_out,
                               const RowVector& /*dlogdet*/, LayerCache* cache,
                               VectorRef /*grad_params*/, Matrix& grad_in) const {
  const auto& c = *static_cast<OrthogonalCache*>(cache);
  grad_in.resize(in.rows(), in.cols());
  TiledProduct(c.q.transpose(), grad_out, grad_in, false);
}

absl::Status OrthogonalLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                      RowVector& /*logdet*/) const {
  if (absl::Status s = CheckFiniteForInverse(type(), out); !s.ok()) return s;
  Matrix q;
  Vector scratch(dim_);
  HouseholderProduct(params, dim_, &q, &scratch);
  in.resize(out.rows(), out.cols());
  in.noalias() = q.transpose() * out;
  return absl::OkStatus();
}

absl::Status OrthogonalLayer::InverseWithCache(ConstVectorRef params, const Matrix& out, Matrix& in,
                                               RowVector& /*logdet*/, LayerCache* cache) const {
  if (absl::Status s = CheckFiniteForInverse(type(), out); !s.ok()) return s;
  auto& c = *static_cast<OrthogonalCache*>(cache);
  c.Update(params);
  in.resize(out.rows(), out.cols());
  TiledProduct(c.q.transpose(), out, in, false);
  return absl::OkStatus();
}

}  // namespace flowvi
