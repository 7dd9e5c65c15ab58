#include "engine/flows/spline.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "engine/core/simd.h"

namespace flowvi {
namespace {

// The spline's per-entry data, for entry e = i + d·j (coordinate i of column j): quantity q <
// K bin widths, K ≤ q < 2K bin heights (both in the units of x, summing to 2B), then K − 1 inner
// knot derivatives, their sigmoids (d derivative/dθ, for Backward) and Forward's bin of the
// entry (index, width, height, ξ, end derivatives, for Backward). Stored group-interleaved
// (Packed): the kLanes entries of a group keep all their quantities together, lane by lane, so
// that the kernels below, which run on such groups in simd::Wide vectors (4 lanes with AVX),
// read and write one contiguous stretch instead of 4K separate d x N blocks (too many streams
// for the prefetchers at D = 64). Lanes never interact: the results are the same at any width.
using V = simd::Wide;
constexpr int kLanes = simd::kWideLanes;

struct BlockIndex {
  int k;
  int width(int l) const { return l; }
  int height(int l) const { return k + l; }
  int deriv(int l) const { return 2 * k + l; }        // derivative at inner knot l + 1
  int sigmoid(int l) const { return 3 * k - 1 + l; }  // d(derivative l)/dθ
  int bin_k() const { return 4 * k - 2; }
  int bin_w() const { return 4 * k - 1; }
  int bin_h() const { return 4 * k; }
  int bin_xi() const { return 4 * k + 1; }
  int bin_d0() const { return 4 * k + 2; }
  int bin_d1() const { return 4 * k + 3; }
  int count() const { return 4 * k + 4; }
};

// The cache's aux matrices: aux[0] the log-slopes (d x N), aux[1] the packed data.
constexpr int kSlope = 0, kPacked = 1;
Eigen::Index PackedRows(int k) { return kLanes * Eigen::Index{BlockIndex{k}.count()}; }
Eigen::Index PackedCols(int d, Eigen::Index n) { return (d * n + kLanes - 1) / kLanes; }

struct Packed {
  double* data;
  int count;
  // Quantity q of entry e (for e a multiple of kLanes, lane 0 of a group: the group's lanes at
  // [0] .. [kLanes − 1]).
  double* at(int q, Eigen::Index e) const {
    return data + ((e / kLanes) * count + q) * kLanes + e % kLanes;
  }
};
Packed MakePacked(Matrix& m, int k) { return {m.data(), BlockIndex{k}.count()}; }

// c₀ with softplus(c₀) = 1 − kMinDerivative: a zero network output gives derivative 1.
double DerivativeOffset() { return std::log(std::expm1(1.0 - SplineLayer::kMinDerivative)); }

// The kernels below run on groups of kLanes entries (lanes) of the d x N batch, entry e = i + d·j
// for coordinate i of column j: contiguous in the d x N blocks (aux), but at row p·d + i, column j
// of θ and at row i, column j of the x/y blocks, which are row blocks of larger batches. With
// d not a multiple of kLanes a group can span columns, so the lanes are gathered entry by entry.
struct Lanes {
  int count;                   // 1 to kLanes (fewer only in the last group)
  Eigen::Index e;              // the first entry
  Eigen::Index theta[kLanes];  // offset in θ of parameter 0 of each lane
  Eigen::Index col[kLanes];    // column j of each lane
  Eigen::Index row[kLanes];    // row i of each lane
};

// Calls body(lanes, count) for every group of entries of a d x n batch, in order.
template <typename Body>
void ForEachLaneGroup(int d, Eigen::Index n, Eigen::Index theta_rows, Body&& body) {
  const Eigen::Index size = d * n;
  Eigen::Index i = 0, j = 0;
  for (Eigen::Index e = 0; e < size; e += kLanes) {
    Lanes ln;
    ln.e = e;
    ln.count = static_cast<int>(std::min<Eigen::Index>(kLanes, size - e));
    for (int l = 0; l < kLanes; ++l) {
      ln.row[l] = i;
      ln.col[l] = j;
      ln.theta[l] = i + theta_rows * j;
      if (l < ln.count && ++i == d) i = 0, ++j;
    }
    switch (ln.count) {  // a partial group only at the end
      case kLanes:
        body(ln, std::integral_constant<int, kLanes>{});
        break;
      case 1:
        body(ln, std::integral_constant<int, 1>{});
        break;
      default:
        if constexpr (kLanes > 2) {
          if (ln.count == 2) {
            body(ln, std::integral_constant<int, 2>{});
          } else {
            body(ln, std::integral_constant<int, kLanes - 1>{});
          }
        }
        break;
    }
  }
}

// Lane values at base + offset[l] (+ stride·col for a matrix view); zero beyond count.
// (The lane count is a compile-time constant, so these compile to plain loads and stores.)
template <int kCount>
inline V Gather(const double* base, const Eigen::Index (&offset)[kLanes]) {
  V v{};
  for (int l = 0; l < kCount; ++l) v[l] = base[offset[l]];
  return v;
}
template <int kCount>
inline void Scatter(double* base, const Eigen::Index (&offset)[kLanes], V v) {
  for (int l = 0; l < kCount; ++l) base[offset[l]] = v[l];
}
template <int kCount, typename M>
inline V GatherEntries(const M& m, const Lanes& ln) {
  V v{};
  for (int l = 0; l < kCount; ++l) v[l] = m.data()[ln.row[l] + m.outerStride() * ln.col[l]];
  return v;
}
template <int kCount, typename M>
inline void ScatterEntries(M& m, const Lanes& ln, V v) {
  for (int l = 0; l < kCount; ++l) m.data()[ln.row[l] + m.outerStride() * ln.col[l]] = v[l];
}

inline V Max(V a, V b) { return a < b ? b : a; }
inline V Select(simd::IntOf<V> mask, V a) { return mask ? a : V{}; }

// The knot blocks of one group of entries from the conditioner output θ (rows p·d + i): widths
// and heights (softmax, floored), inner derivatives and their sigmoids, stored into the blocks.
template <int c>
inline void KnotsOfLanes(const double* theta, int d, int k, double bound, const Lanes& ln,
                         const Packed& b) {
  const BlockIndex ix{k};
  const double scale = 2.0 * bound * (1.0 - SplineLayer::kMinBin * k);
  const double floor = 2.0 * bound * SplineLayer::kMinBin;
  const Eigen::Index e = ln.e;
  for (int first : {0, k}) {  // widths, then heights: a softmax over the K parameters
    const double* t0 = theta + Eigen::Index{first} * d;
    V mx = Gather<c>(t0, ln.theta);
    for (int l = 1; l < k; ++l) mx = Max(mx, Gather<c>(t0 + Eigen::Index{l} * d, ln.theta));
    V sum{};
    for (int l = 0; l < k; ++l) {
      const V ex = simd::Exp(Gather<c>(t0 + Eigen::Index{l} * d, ln.theta) - mx);
      simd::StoreN(b.at(first + l, e), c, ex);
      sum += ex;
    }
    const V inv = 1.0 / sum;
    for (int l = 0; l < k; ++l) {
      double* p = b.at(first + l, e);
      simd::StoreN(p, c, scale * (simd::LoadN<V>(p, c) * inv) + floor);
    }
  }
  // derivative = kMinDerivative + softplus(z), z = θ + c₀, and its slope sigmoid(z), from
  // e = exp(−|z|) ∈ (0, 1]: softplus(z) = max(z, 0) + log(1 + e), sigmoid(z) = 1/(1 + e) for
  // z ≥ 0, e/(1 + e) otherwise.
  const double c0 = DerivativeOffset();
  const V zero{}, one = simd::Broadcast<V>(1.0);
  for (int l = 0; l + 1 < k; ++l) {
    const V z = Gather<c>(theta + Eigen::Index{2 * k + l} * d, ln.theta) + c0;
    const V ex = simd::Exp(std::bit_cast<V>(std::bit_cast<simd::BitsOf<V>>(z) | simd::kSignBit));
    const V one_plus_e = 1.0 + ex;
    const auto positive = z >= 0.0;
    simd::StoreN(b.at(ix.deriv(l), e), c,
                 (positive ? z : zero) + simd::Log(one_plus_e) + SplineLayer::kMinDerivative);
    simd::StoreN(b.at(ix.sigmoid(l), e), c, (positive ? one : ex) / one_plus_e);
  }
}

// Fills the width, height and derivative blocks from the conditioner output θ (rows p·d + i).
void ComputeKnotBlocks(const Matrix& theta, int d, int k, double bound, const Packed& b) {
  ForEachLaneGroup(d, theta.cols(), theta.rows(), [&](const Lanes& ln, auto count) {
    KnotsOfLanes<count()>(theta.data(), d, k, bound, ln, b);
  });
}

// The bin of a group of points, found from the knot blocks as FindBin below does it (the same
// sums in the same order, so the knots agree to the bit): the bin index, its knots and end
// derivatives. Lanes outside [−B, B] get some bin (callers select them away).
struct LaneBin {
  V k, x0, x1, y0, y1, d0, d1;
};

template <int c>
inline LaneBin FindLaneBin(const Packed& b, int kk, double bound, Eigen::Index e, V x) {
  const BlockIndex ix{kk};
  const V lo = simd::Broadcast<V>(-bound), hi = simd::Broadcast<V>(bound);
  const V one = simd::Broadcast<V>(1.0);
  LaneBin bin;
  bin.k = V{};
  bin.x0 = lo;
  bin.y0 = lo;
  V cx = lo, cy = lo;  // knot m: −B plus the first m widths (heights)
  V wm = simd::LoadN<V>(b.at(ix.width(0), e), c);
  V hm = simd::LoadN<V>(b.at(ix.height(0), e), c);
  bin.x1 = kk == 1 ? hi : cx + wm;
  bin.y1 = kk == 1 ? hi : cy + hm;
  bin.d0 = one;
  bin.d1 = kk == 1 ? one : simd::LoadN<V>(b.at(ix.deriv(0), e), c);
  for (int m = 1; m < kk; ++m) {
    cx = cx + wm;
    cy = cy + hm;
    const bool last = m + 1 == kk;
    V nx = hi, ny = hi, dn = one;
    if (!last) {
      wm = simd::LoadN<V>(b.at(ix.width(m), e), c);
      hm = simd::LoadN<V>(b.at(ix.height(m), e), c);
      nx = cx + wm;
      ny = cy + hm;
      dn = simd::LoadN<V>(b.at(ix.deriv(m), e), c);
    }
    const auto ge = x >= cx;  // knots increase, so once false it stays false
    bin.k = ge ? simd::Broadcast<V>(m) : bin.k;
    bin.x0 = ge ? cx : bin.x0;
    bin.x1 = ge ? nx : bin.x1;
    bin.y0 = ge ? cy : bin.y0;
    bin.y1 = ge ? ny : bin.y1;
    bin.d0 = ge ? bin.d1 : bin.d0;
    bin.d1 = ge ? dn : bin.d1;
  }
  return bin;
}

// ξ clamped to [0, 1] as std::clamp (NaN stays NaN).
inline V Clamp01(V v) {
  v = v < 0.0 ? V{} : v;
  return 1.0 < v ? simd::Broadcast<V>(1.0) : v;
}

// One coordinate's spline: accessors into the blocks at entry `e` = i + d·j.
struct Spline {
  const Packed& b;
  BlockIndex ix;
  Eigen::Index e;
  double bound;

  double width(int l) const { return *b.at(ix.width(l), e); }
  double height(int l) const { return *b.at(ix.height(l), e); }
  // Derivative at knot m (0..K); 1 at the ends.
  double deriv(int m) const { return m == 0 || m == ix.k ? 1.0 : *b.at(ix.deriv(m - 1), e); }
};

// The bin of a point inside [−B, B]: its knots (x_k, x_{k+1}) and (y_k, y_{k+1}), summed in the
// same order everywhere so that forward, backward and inverse agree to the bit. `by_height`
// searches the y knots (for the inverse) instead of the x knots.
struct Bin {
  int k = 0;
  double x0, x1, y0, y1;
};

Bin FindBin(const Spline& s, double v, bool by_height) {
  const int kk = s.ix.k;
  Bin bin;
  bin.x0 = -s.bound;
  bin.y0 = -s.bound;
  for (; bin.k < kk - 1; ++bin.k) {
    const double x1 = bin.x0 + s.width(bin.k);
    const double y1 = bin.y0 + s.height(bin.k);
    if (v < (by_height ? y1 : x1)) break;
    bin.x0 = x1;
    bin.y0 = y1;
  }
  const bool last = bin.k == kk - 1;
  bin.x1 = last ? s.bound : bin.x0 + s.width(bin.k);
  bin.y1 = last ? s.bound : bin.y0 + s.height(bin.k);
  return bin;
}

// The rational-quadratic segment at ξ ∈ [0, 1] of a bin of width w, height h, end derivatives
// d0, d1 (Durkan et al. eq. 4 and its derivative).
struct Segment {
  double xi, w, h, s, d0, d1;
  double t() const { return xi * (1 - xi); }
  double num() const { return s * xi * xi + d0 * t(); }
  double den() const { return s + (d1 + d0 - 2 * s) * t(); }
  double p() const { return d1 * xi * xi + 2 * s * t() + d0 * (1 - xi) * (1 - xi); }
  double slope() const {
    const double q = den();
    return s * s * p() / (q * q);
  }
};

Segment MakeSegment(const Spline& s, const Bin& bin, double xi) {
  Segment g;
  g.xi = xi;
  g.w = bin.x1 - bin.x0;
  g.h = bin.y1 - bin.y0;
  g.s = g.h / g.w;
  g.d0 = s.deriv(bin.k);
  g.d1 = s.deriv(bin.k + 1);
  return g;
}

bool Inside(double x, double bound) { return x >= -bound && x <= bound; }

}  // namespace

SplineLayer::SplineLayer(int dim, const CouplingOptions& options, int bins, double bound)
    // (Room for the log-slopes and the packed data: BlockIndex::count() + 2 blocks of d_b x N.)
    : CouplingLayer(dim, 3 * bins - 1, BlockIndex{bins}.count() + 2, options),
      bins_(bins),
      bound_(bound) {}

void SplineLayer::ShapeAux(CouplingCache& cache, int n) const {
  cache.aux.resize(2);
  cache.aux[kSlope].resize(d_b(), n);
  cache.aux[kPacked].resize(PackedRows(bins_), PackedCols(d_b(), n));
}

void SplineLayer::TransformForward(const Matrix& theta, const ConstBatchRef& x_b, BatchRef y_b,
                                   LogDetAccumulator& logdet, CouplingCache& cache) const {
  const int d = static_cast<int>(x_b.rows());
  const int kk = bins_;
  const BlockIndex ix{kk};
  const Packed b = MakePacked(cache.aux[kPacked], kk);
  Matrix& slope = cache.aux[kSlope];
  const V lo = simd::Broadcast<V>(-bound_), hi = simd::Broadcast<V>(bound_);
  // One pass: the knots of a group of entries, its bins, values and log-slopes.
  ForEachLaneGroup(d, x_b.cols(), theta.rows(), [&](const Lanes& ln, auto count) {
    constexpr int c = count();
    KnotsOfLanes<c>(theta.data(), d, kk, bound_, ln, b);
    const V x = GatherEntries<c>(x_b, ln);
    const auto inside = (x >= lo) & (x <= hi);  // false for NaN
    const V xv = inside ? x : V{};
    const LaneBin bin = FindLaneBin<c>(b, kk, bound_, ln.e, xv);
    const V w = bin.x1 - bin.x0, h = bin.y1 - bin.y0;
    const V inv_w = 1.0 / w;
    const V s = h * inv_w;
    const V xi = Clamp01((xv - bin.x0) * inv_w);
    const V t = xi * (1 - xi);
    const V num = s * xi * xi + bin.d0 * t;
    const V den = s + (bin.d1 + bin.d0 - 2 * s) * t;
    const V p = bin.d1 * xi * xi + 2 * s * t + bin.d0 * (1 - xi) * (1 - xi);
    const V inv_den = 1.0 / den;
    const V y = bin.y0 + h * num * inv_den;
    const V sl = s * s * p * (inv_den * inv_den);
    ScatterEntries<c>(y_b, ln, inside ? y : x);
    simd::StoreN(slope.data() + ln.e, c, simd::Log(inside ? sl : simd::Broadcast<V>(1.0)));
    simd::StoreN(b.at(ix.bin_k(), ln.e), c, bin.k);
    simd::StoreN(b.at(ix.bin_w(), ln.e), c, w);
    simd::StoreN(b.at(ix.bin_h(), ln.e), c, h);
    simd::StoreN(b.at(ix.bin_xi(), ln.e), c, xi);
    simd::StoreN(b.at(ix.bin_d0(), ln.e), c, bin.d0);
    simd::StoreN(b.at(ix.bin_d1(), ln.e), c, bin.d1);
  });
  logdet.log_sum() += slope.colwise().sum();
}

void SplineLayer::TransformBackward(const Matrix& /*theta*/, const ConstBatchRef& x_b,
                                    const ConstBatchRef& g_y, const RowVector& dlogdet,
                                    CouplingCache& cache, BatchRef g_x_b) const {
  const int d = static_cast<int>(x_b.rows());
  const int kk = bins_;
  const BlockIndex ix{kk};
  const Packed b = MakePacked(cache.aux[kPacked], kk);
  Matrix& gt = cache.g_theta;  // dL/dθ, every entry written
  const V lo = simd::Broadcast<V>(-bound_), hi = simd::Broadcast<V>(bound_);
  const double floor = 2.0 * bound_ * kMinBin;
  const double inv_scale = 1.0 / (2.0 * bound_ * (1.0 - kMinBin * kk));
  ForEachLaneGroup(d, x_b.cols(), gt.rows(), [&](const Lanes& ln, auto count) {
    constexpr int c = count();
    const Eigen::Index e = ln.e;
    const V x = GatherEntries<c>(x_b, ln);
    const V gy = GatherEntries<c>(g_y, ln);
    V gl{};
    for (int l = 0; l < c; ++l) gl[l] = dlogdet[ln.col[l]];
    const auto inside = (x >= lo) & (x <= hi);
    // The bin as Forward found it.
    const V bin_k = simd::LoadN<V>(b.at(ix.bin_k(), e), c);
    const V w = simd::LoadN<V>(b.at(ix.bin_w(), e), c);
    const V h = simd::LoadN<V>(b.at(ix.bin_h(), e), c);
    const V xi = simd::LoadN<V>(b.at(ix.bin_xi(), e), c);
    const V d0 = simd::LoadN<V>(b.at(ix.bin_d0(), e), c);
    const V d1 = simd::LoadN<V>(b.at(ix.bin_d1(), e), c);
    const V inv_w = 1.0 / w;
    const V s = h * inv_w;
    const V t = xi * (1 - xi);
    const V num = s * xi * xi + d0 * t;
    const V den = s + (d1 + d0 - 2 * s) * t;
    const V p = d1 * xi * xi + 2 * s * t + d0 * (1 - xi) * (1 - xi);
    const V inv_den = 1.0 / den;
    // y = y_k + h num/den; log slope = 2 log s + log p − 2 log den.
    const V g_num = gy * h * inv_den;
    const V g_den = -gy * h * num * inv_den * inv_den - 2.0 * gl * inv_den;
    const V g_p = gl / p;
    V g_h = gy * num * inv_den;
    const V g_s = 2.0 * gl * (w / h) + g_num * xi * xi + g_den * (1 - 2 * t) + g_p * 2 * t;
    const V g_d0 = (g_num + g_den) * t + g_p * (1 - xi) * (1 - xi);
    const V g_d1 = g_den * t + g_p * xi * xi;
    const V g_xi = g_num * (2 * s * xi + d0 * (1 - 2 * xi)) +
                   g_den * (d1 + d0 - 2 * s) * (1 - 2 * xi) +
                   g_p * 2 * (d1 * xi + s * (1 - 2 * xi) - d0 * (1 - xi));
    // s = h/w, ξ = (x − x_k)/w, w = x_{k+1} − x_k, h = y_{k+1} − y_k.
    g_h += g_s * inv_w;
    const V g_w = -(g_s * s + g_xi * xi) * inv_w;
    const V g_xi_w = g_xi * inv_w;
    ScatterEntries<c>(g_x_b, ln, inside ? g_xi_w : gy);
    // Outside [−B, B] the parameters get no gradient.
    const V g_x0 = Select(inside, -g_xi_w - g_w), g_x1 = Select(inside, g_w);
    const V g_y0 = Select(inside, gy - g_h), g_y1 = Select(inside, g_h);
    // Knot m (1 ≤ m ≤ K − 1) is −B plus the first m widths (heights); knots 0 and K are ±B:
    // width l gets g_x0 if 1 ≤ k and l < k, and g_x1 if k + 1 ≤ K − 1 and l ≤ k.
    // So width l gets g_x0 + g_x1 for l < k (g_x1 only if k + 1 ≤ K − 1), g_x1 for l = k
    // (same condition), nothing beyond.
    const auto has1 = bin_k + 1.0 <= kk - 1.0;
    // Through the softmaxes: size_l = floor + c·p_l with p = softmax(r), so
    // dL/dr_l = c p_l (g_l − Σ_m p_m g_m), and c p_l = size_l − floor.
    V g_knot[kMaxBins];
    for (int first : {0, kk}) {
      const V g1 = Select(has1, first == 0 ? g_x1 : g_y1);
      const V g01 = (first == 0 ? g_x0 : g_y0) + g1;
      V dot{};
      for (int l = 0; l < kk; ++l) {
        const V fl = simd::Broadcast<V>(l);
        const V g = fl < bin_k ? g01 : Select(fl == bin_k, g1);
        g_knot[l] = g;
        dot += (simd::LoadN<V>(b.at(first + l, e), c) - floor) * g;
      }
      dot *= inv_scale;
      for (int l = 0; l < kk; ++l) {
        const V v = (simd::LoadN<V>(b.at(first + l, e), c) - floor) * (g_knot[l] - dot);
        Scatter<c>(gt.data() + Eigen::Index{first + l} * d, ln.theta, v);
      }
    }
    // Inner derivative l is the knot l + 1's: g_d0 when l = k − 1, g_d1 when l = k; through
    // the softplus, d/dr softplus(r + c₀) = sigmoid(r + c₀) (from Forward).
    const V gd0 = Select(inside, g_d0), gd1 = Select(inside, g_d1);
    for (int l = 0; l + 1 < kk; ++l) {
      const V fl = simd::Broadcast<V>(l);
      const V g = (Select(fl == bin_k - 1.0, gd0) + Select(fl == bin_k, gd1)) *
                  simd::LoadN<V>(b.at(ix.sigmoid(l), e), c);
      Scatter<c>(gt.data() + Eigen::Index{ix.deriv(l)} * d, ln.theta, g);
    }
  });
}

void SplineLayer::TransformInverse(const Matrix& theta, const ConstBatchRef& y_b, BatchRef x_b,
                                   RowVector& logdet, CouplingCache* scratch) const {
  const int d = static_cast<int>(y_b.rows());
  const BlockIndex ix{bins_};
  Matrix own;
  if (scratch == nullptr) own.resize(PackedRows(bins_), PackedCols(d, y_b.cols()));
  const Packed blocks = MakePacked(scratch != nullptr ? scratch->aux[kPacked] : own, bins_);
  ComputeKnotBlocks(theta, d, bins_, bound_, blocks);
  for (Eigen::Index j = 0; j < y_b.cols(); ++j) {
    for (int i = 0; i < d; ++i) {
      const double y = y_b(i, j);
      if (!Inside(y, bound_)) {
        x_b(i, j) = y;
        continue;
      }
      const Spline s{blocks, ix, i + d * j, bound_};
      const Bin bin = FindBin(s, y, true);
      Segment g = MakeSegment(s, bin, 0.0);
      // h (s ξ² + d0 ξ(1−ξ)) = Δ (s + (d1 + d0 − 2s) ξ(1−ξ)) as a ξ² + b ξ + c = 0.
      const double delta = y - bin.y0;
      const double sum = g.d1 + g.d0 - 2 * g.s;
      const double a = g.h * (g.s - g.d0) + delta * sum;
      const double b = g.h * g.d0 - delta * sum;
      const double c = -g.s * delta;
      const double root = std::sqrt(std::max(b * b - 4 * a * c, 0.0));
      // The root in [0, 1] (Durkan et al. app. A.3), in the form without cancellation; the
      // denominator vanishes only with c = 0 and b ≥ 0, i.e. at y = y_k, ξ = 0.
      const double denom = -b - root;
      g.xi = denom < 0 ? std::clamp(2 * c / denom, 0.0, 1.0) : 0.0;
      x_b(i, j) = bin.x0 + g.xi * g.w;
      logdet[j] += std::log(g.slope());
    }
  }
}

}  // namespace flowvi
