#include "engine/flows/realnvp.h"

#include "engine/core/simd.h"

namespace flowvi {
namespace {

// u = tanh(r/c) into `u`, entry by entry (Eigen has no vectorized double tanh).
void BoundedTanh(const Eigen::Ref<const Matrix>& r, double inv_c, Matrix& u) {
  for (Eigen::Index j = 0; j < r.cols(); ++j) {
    const double* rj = r.col(j).data();
    double* uj = u.col(j).data();
    simd::ForEachGroup(static_cast<int>(r.rows()), [&](int i, int count) {
      simd::StoreN(uj + i, count, simd::Tanh(simd::LoadN(rj + i, count) * inv_c));
    });
  }
}

}  // namespace

void RealNvpLayer::TransformForward(const Matrix& theta, const ConstBatchRef& x_b, BatchRef y_b,
                                    LogDetAccumulator& logdet, CouplingCache& cache) const {
  const int d = static_cast<int>(x_b.rows());
  Matrix& u = cache.aux[0];      // tanh(r/c), s = c u
  Matrix& scale = cache.aux[1];  // exp(s)
  BoundedTanh(theta.bottomRows(d), 1.0 / bound_, u);
  scale = (bound_ * u.array()).exp();
  y_b = x_b.cwiseProduct(scale) + theta.topRows(d);
  logdet.log_sum() += bound_ * u.colwise().sum();
}

void RealNvpLayer::TransformBackward(const Matrix& /*theta*/, const ConstBatchRef& x_b,
                                     const ConstBatchRef& g_y, const RowVector& dlogdet,
                                     CouplingCache& cache, BatchRef g_x_b) const {
  const int d = static_cast<int>(x_b.rows());
  const Matrix& u = cache.aux[0];
  const Matrix& scale = cache.aux[1];
  cache.g_theta.topRows(d) = g_y;
  g_x_b = g_y.cwiseProduct(scale);
  // dL/dr = (dL/dy x_b e^s + dL/dlogdet) · ds/dr, ds/dr = 1 − u².
  cache.g_theta.bottomRows(d) =
      ((g_x_b.array() * x_b.array()).rowwise() + dlogdet.array()) * (1.0 - u.array().square());
}

void RealNvpLayer::TransformInverse(const Matrix& theta, const ConstBatchRef& y_b, BatchRef x_b,
                                    RowVector& logdet, CouplingCache* scratch) const {
  const int d = static_cast<int>(y_b.rows());
  Matrix own;
  Matrix& u = scratch != nullptr ? scratch->aux[0] : own;
  u.resize(d, y_b.cols());  // no allocation with a cache of this batch size
  BoundedTanh(theta.bottomRows(d), 1.0 / bound_, u);
  x_b = (y_b - theta.topRows(d)).cwiseProduct((-bound_ * u.array()).exp().matrix());
  logdet += bound_ * u.colwise().sum();
}

}  // namespace flowvi
