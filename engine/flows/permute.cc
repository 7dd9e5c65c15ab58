#include "engine/flows/permute.h"

#include <algorithm>
#include <numeric>

#include "engine/flows/coupling.h"

namespace flowvi {
namespace {

class PermuteCache final : public LayerCache {
 public:
  explicit PermuteCache(int dim) : keys(Vector::Constant(dim, std::nan(""))), perm(dim) {}
  Vector keys;  // the keys perm was computed from (NaN: not yet)
  std::vector<int> perm;

  void Update(ConstVectorRef params) {
    // Keys never change during training; compare bitwise-equal values (NaN keys always
    // recompute, which is correct, if slow).
    if (params.cwiseEqual(keys).all()) return;
    keys = params;
    ArgsortKeys(params, &perm);
  }
};

}  // namespace

void ArgsortKeys(ConstVectorRef keys, std::vector<int>* perm) {
  perm->resize(keys.size());
  std::iota(perm->begin(), perm->end(), 0);
  // A total order on doubles (NaN keys included) and ties by index: any keys give a
  // permutation. std::sort allocates nothing.
  std::sort(perm->begin(), perm->end(), [&](int a, int b) {
    const double ka = keys[a], kb = keys[b];
    if (ka < kb) return true;
    if (kb < ka) return false;
    const bool na = std::isnan(ka), nb = std::isnan(kb);
    if (na != nb) return nb;  // NaNs last
    return a < b;
  });
}

void PermuteLayer::InitParams(Rng& rng, VectorRef params) const {
  rng.FillUniform(0.0, 1.0, params);
}

std::unique_ptr<LayerCache> PermuteLayer::NewCache(int /*n*/) const {
  return std::make_unique<PermuteCache>(dim_);
}

void PermuteLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                           LogDetAccumulator& /*logdet*/, LayerCache* cache) const {
  auto& c = *static_cast<PermuteCache*>(cache);
  c.Update(params);
  out.resize(in.rows(), in.cols());
  for (Eigen::Index j = 0; j < in.cols(); ++j) {
    const double* x = in.col(j).data();
    double* y = out.col(j).data();
    for (int i = 0; i < dim_; ++i) y[i] = x[c.perm[i]];
  }
}

void PermuteLayer::Backward(ConstVectorRef /*params*/, const Matrix& in, const Matrix& grad_out,
                            const RowVector& /*dlogdet*/, LayerCache* cache,
                            VectorRef /*grad_params*/, Matrix& grad_in) const {
  const auto& c = *static_cast<PermuteCache*>(cache);
  grad_in.resize(in.rows(), in.cols());
  for (Eigen::Index j = 0; j < in.cols(); ++j) {
    const double* g = grad_out.col(j).data();
    double* gi = grad_in.col(j).data();
    for (int i = 0; i < dim_; ++i) gi[c.perm[i]] = g[i];
  }
}

absl::Status PermuteLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                   RowVector& /*logdet*/) const {
  if (absl::Status s = CheckFiniteForInverse(type(), out); !s.ok()) return s;
  std::vector<int> perm;
  ArgsortKeys(params, &perm);
  in.resize(out.rows(), out.cols());
  for (int i = 0; i < dim_; ++i) in.row(perm[i]) = out.row(i);
  return absl::OkStatus();
}

absl::Status PermuteLayer::InverseWithCache(ConstVectorRef params, const Matrix& out, Matrix& in,
                                            RowVector& /*logdet*/, LayerCache* cache) const {
  if (absl::Status s = CheckFiniteForInverse(type(), out); !s.ok()) return s;
  auto& c = *static_cast<PermuteCache*>(cache);
  c.Update(params);
  in.resize(out.rows(), out.cols());
  for (int i = 0; i < dim_; ++i) in.row(c.perm[i]) = out.row(i);
  return absl::OkStatus();
}

}  // namespace flowvi
