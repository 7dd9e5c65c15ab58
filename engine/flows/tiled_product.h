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

#include "engine/core/simd.h"

namespace flowvi {

inline constexpr Eigen::Index kTileM = 64, kTileN = 64, kTileK = 256;
static_assert(kTileM * kTileK * sizeof(double) <= EIGEN_STACK_ALLOCATION_LIMIT);
static_assert(kTileN * kTileK * sizeof(double) <= EIGEN_STACK_ALLOCATION_LIMIT);
// Depths up to this skip GEMM's packing (ThinProduct below, or Eigen's coefficient-based
// product), which is faster for such thin products: the hidden=8 conditioners of 2-D fits.
inline constexpr Eigen::Index kThinDepth = 8;

// Rows up to this in a thin product are done by ThinProduct.
inline constexpr Eigen::Index kThinRows = 64;
static_assert(kThinRows % simd::kWideLanes == 0);  // padded columns stay in ThinProduct's buffer

// ThinProduct's pieces: kN columns of c from column j on, as kN independent sums kept in flight
// together (one sum over p alone would wait on each addition).
template <int kN, typename A, typename B, typename C>
inline void ThinRowsColumns(const A& a, const B& b, C& c, Eigen::Index j, bool accumulate,
                            const double* bias) {
  for (Eigen::Index i = 0; i < a.rows(); ++i) {
    double s[kN];
    for (int q = 0; q < kN; ++q) s[q] = a(i, 0) * b(0, j + q);
    for (Eigen::Index p = 1; p < a.cols(); ++p) {
      const double ap = a(i, p);
      for (int q = 0; q < kN; ++q) s[q] += ap * b(p, j + q);
    }
    for (int q = 0; q < kN; ++q) {
      c(i, j + q) = accumulate ? c(i, j + q) + s[q] : (bias != nullptr ? s[q] + bias[i] : s[q]);
    }
  }
}
template <int kN, bool kPartial, typename B, typename C>
inline void ThinPackedGroup(const double* packed, Eigen::Index i, int count, Eigen::Index stride,
                            Eigen::Index k, const B& b, C& c, Eigen::Index j, bool accumulate,
                            const double* bias) {
  using simd::Wide;
  Wide s[kN];
  for (int q = 0; q < kN; ++q) s[q] = simd::Load<Wide>(packed + i) * b(0, j + q);
  for (Eigen::Index p = 1; p < k; ++p) {
    const Wide ap = simd::Load<Wide>(packed + i + stride * p);
    for (int q = 0; q < kN; ++q) s[q] += ap * b(p, j + q);
  }
  for (int q = 0; q < kN; ++q) {
    double* cj = &c(i, j + q);
    if constexpr (kPartial) {
      const Wide add = accumulate
                           ? simd::LoadPartial<Wide>(cj, count)
                           : (bias != nullptr ? simd::LoadPartial<Wide>(bias + i, count) : Wide{});
      simd::StorePartial(cj, count, accumulate || bias != nullptr ? s[q] + add : s[q]);
    } else {
      const Wide add = accumulate ? simd::Load<Wide>(cj)
                                  : (bias != nullptr ? simd::Load<Wide>(bias + i) : Wide{});
      simd::Store(cj, accumulate || bias != nullptr ? s[q] + add : s[q]);
    }
  }
}
template <int kN, typename B, typename C>
inline void ThinPackedColumns(const double* packed, Eigen::Index m, Eigen::Index stride,
                              Eigen::Index k, const B& b, C& c, Eigen::Index j, bool accumulate,
                              const double* bias) {
  Eigen::Index i = 0;
  for (; i + simd::kWideLanes <= m; i += simd::kWideLanes) {
    ThinPackedGroup<kN, false>(packed, i, simd::kWideLanes, stride, k, b, c, j, accumulate, bias);
  }
  // A last, partial group reads the zero padding of `packed` (rows m to stride).
  if (i < m) {
    ThinPackedGroup<kN, true>(packed, i, static_cast<int>(m - i), stride, k, b, c, j, accumulate,
                              bias);
  }
}

// c = a b or c += a b for depth ≤ kThinDepth and rows ≤ kThinRows: the conditioners of the 2-D
// fits, whose products Eigen's coefficient-based path does not vectorize well (a transposed or one-
// or two-row operand, a strided right-hand side). Each c(i, j) is Σ_p a(i, p) b(p, j) summed in
// order of p, then added to c(i, j) when accumulating (or to bias[i], if given), in every lane
// alike.
template <typename A, typename B, typename C>
void ThinProduct(const A& a, const B& b, C&& c, bool accumulate, const double* bias = nullptr) {
  const Eigen::Index m = a.rows(), k = a.cols(), n = b.cols();
  if (m <= 2) {  // along the columns of c, four at a time
    Eigen::Index j = 0;
    for (; j + 4 <= n; j += 4) ThinRowsColumns<4>(a, b, c, j, accumulate, bias);
    for (; j < n; ++j) ThinRowsColumns<1>(a, b, c, j, accumulate, bias);
    return;
  }
  // a, column-major and contiguous, its columns padded with zeros to whole vectors.
  const Eigen::Index stride = (m + simd::kWideLanes - 1) / simd::kWideLanes * simd::kWideLanes;
  double packed[kThinRows * kThinDepth];
  for (Eigen::Index p = 0; p < k; ++p) {
    for (Eigen::Index i = 0; i < stride; ++i) packed[i + stride * p] = i < m ? a(i, p) : 0.0;
  }
  Eigen::Index j = 0;
  for (; j + 2 <= n; j += 2) ThinPackedColumns<2>(packed, m, stride, k, b, c, j, accumulate, bias);
  for (; j < n; ++j) ThinPackedColumns<1>(packed, m, stride, k, b, c, j, accumulate, bias);
}

// c = a b (accumulate = false) or c += a b. REQUIRES: c does not alias a or b.
template <typename A, typename B, typename C>
void TiledProduct(const A& a, const B& b, C&& c, bool accumulate) {
  const Eigen::Index m = a.rows(), k = a.cols(), n = b.cols();
  if (k <= kThinDepth && m <= kThinRows) {
    ThinProduct(a, b, c, accumulate);
    return;
  }
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

// c = a b + bias 1ᵀ (bias: a.rows() doubles), the same bits as TiledProduct(a, b, c, false) then
// c.colwise() += bias, with the bias added in the same pass in thin products.
template <typename A, typename B, typename C>
void TiledProductPlusBias(const A& a, const B& b, const double* bias, C&& c) {
  // (Fused only without a partial last group: with one, e.g. the 23 rows of an 8-bin spline's
  // conditioner, the separate pass measured faster.)
  if (a.cols() <= kThinDepth && a.rows() <= kThinRows &&
      (a.rows() <= 2 || a.rows() % simd::kWideLanes == 0)) {
    ThinProduct(a, b, c, /*accumulate=*/false, bias);
    return;
  }
  TiledProduct(a, b, c, /*accumulate=*/false);
  c.colwise() += Eigen::Map<const Eigen::VectorXd>(bias, a.rows());
}

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_TILED_PRODUCT_H_
