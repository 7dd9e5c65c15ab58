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
  if (d == 1) {
    // One transformed coordinate (D = 2, 3): Eigen's and the per-column kernels would run on
    // one entry at a time, so this runs across columns, two at a time, in one pass. θ is
    // 2 x N (t, r); x_b and y_b are rows of larger batches.
    const double* th = theta.data();
    const double* x = x_b.data();
    double* y = y_b.data();
    const int sx = static_cast<int>(x_b.outerStride()), sy = static_cast<int>(y_b.outerStride());
    double* ld = logdet.log_sum().data();
    simd::ForEachGroup(static_cast<int>(x_b.cols()), [&](int j, int count) {
      const simd::Vec t = simd::LoadStridedN(th + 2 * j, 2, count);
      const simd::Vec r = simd::LoadStridedN(th + 2 * j + 1, 2, count);
      const simd::Vec uv = simd::Tanh(r * (1.0 / bound_));
      const simd::Vec ev = simd::Exp(bound_ * uv);
      simd::StoreN(u.data() + j, count, uv);
      simd::StoreN(scale.data() + j, count, ev);
      simd::StoreStridedN(y + Eigen::Index{j} * sy, sy, count,
                          simd::LoadStridedN(x + Eigen::Index{j} * sx, sx, count) * ev + t);
      simd::StoreN(ld + j, count, simd::LoadN(ld + j, count) + bound_ * uv);
    });
    return;
  }
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
  if (d == 1) {  // as in TransformForward: across columns, two at a time, in one pass
    double* gt = cache.g_theta.data();  // 2 x N: dL/dt, dL/dr
    const double* x = x_b.data();
    const double* gy = g_y.data();
    double* gx = g_x_b.data();
    const int sx = static_cast<int>(x_b.outerStride()), sy = static_cast<int>(g_y.outerStride());
    const int sg = static_cast<int>(g_x_b.outerStride());
    simd::ForEachGroup(static_cast<int>(x_b.cols()), [&](int j, int count) {
      const simd::Vec g = simd::LoadStridedN(gy + Eigen::Index{j} * sy, sy, count);
      const simd::Vec uv = simd::LoadN(u.data() + j, count);
      const simd::Vec gxv = g * simd::LoadN(scale.data() + j, count);
      simd::StoreStridedN(gx + Eigen::Index{j} * sg, sg, count, gxv);
      simd::StoreStridedN(gt + 2 * j, 2, count, g);
      // dL/dr = (dL/dy x_b e^s + dL/dlogdet) · ds/dr, ds/dr = 1 − u².
      const simd::Vec gr = (gxv * simd::LoadStridedN(x + Eigen::Index{j} * sx, sx, count) +
                            simd::LoadN(dlogdet.data() + j, count)) *
                           (1.0 - uv * uv);
      simd::StoreStridedN(gt + 2 * j + 1, 2, count, gr);
    });
    return;
  }
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
