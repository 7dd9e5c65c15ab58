// TiledProduct: c = a b or c += a b for the layers' dense products, never allocating.
//
// Eigen packs the operands of a matrix product into buffers of up to kc·mc and kc·nc doubles
// (kc ≤ depth, mc ≤ rows, nc ≤ cols), on the stack up to EIGEN_STACK_ALLOCATION_LIMIT bytes and
// with malloc beyond it. Bounding each call's dimensions (tiles of at most kTileM x kTileK times
// kTileK x kTileN) keeps both buffers on the stack, so a training step never allocates whatever
// the widths and the batch size. The tiling is fixed, so results are deterministic.
#ifndef FLOWVI_ENGINE_FLOWS_TILED_PRODUCT_H_
#define FLOWVI_ENGINE_FLOWS_TILED_PRODUCT_H_

#include <Eigen/Core>
#include <algorithm>

namespace flowvi {

inline constexpr Eigen::Index kTileM = 64, kTileN = 64, kTileK = 256;
static_assert(kTileM * kTileK * sizeof(double) <= EIGEN_STACK_ALLOCATION_LIMIT);
static_assert(kTileN * kTileK * sizeof(double) <= EIGEN_STACK_ALLOCATION_LIMIT);
// Depths up to this use Eigen's coefficient-based product (no packing), which is also faster for
// such thin products: at depth 8 (the hidden=8 conditioners of 2-D fits) it saves 6-11% of a
// nice/realnvp training step over GEMM's packing (bench/train_step_bench, A/B on one machine).
inline constexpr Eigen::Index kThinDepth = 8;

// c = a b (accumulate = false) or c += a b. REQUIRES: c does not alias a or b.
template <typename A, typename B, typename C>
void TiledProduct(const A& a, const B& b, C&& c, bool accumulate) {
  const Eigen::Index m = a.rows(), k = a.cols(), n = b.cols();
  if (k <= kThinDepth) {
    if (accumulate) {
      c.noalias() += a.lazyProduct(b);
    } else {
      c.noalias() = a.lazyProduct(b);
    }
    return;
  }
  for (Eigen::Index j = 0; j < n; j += kTileN) {
    const Eigen::Index nj = std::min(kTileN, n - j);
    for (Eigen::Index i = 0; i < m; i += kTileM) {
      const Eigen::Index mi = std::min(kTileM, m - i);
      auto out = c.block(i, j, mi, nj);
      for (Eigen::Index p = 0; p < k; p += kTileK) {
        const Eigen::Index kp = std::min(kTileK, k - p);
        if (p == 0 && !accumulate) {
          out.noalias() = a.block(i, p, mi, kp) * b.block(p, j, kp, nj);
        } else {
          out.noalias() += a.block(i, p, mi, kp) * b.block(p, j, kp, nj);
        }
      }
    }
  }
}

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_TILED_PRODUCT_H_
