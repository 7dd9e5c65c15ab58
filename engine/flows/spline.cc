#include "engine/flows/spline.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/core/simd.h"

namespace flowvi {
namespace {

// Block p of the spline's per-parameter blocks (each d_b x N, entry (i, j) for coordinate i of
// column j): p < K bin widths, K ≤ p < 2K bin heights (both in the units of x, summing to 2B),
// 2K ≤ p < 3K − 1 inner knot derivatives; then two softmax scratch blocks, the slopes dy/dx and
// the derivatives' sigmoids (what Backward needs from Forward).
struct BlockIndex {
  int k;
  int width(int l) const { return l; }
  int height(int l) const { return k + l; }
  int deriv(int l) const { return 2 * k + l; }        // derivative at inner knot l + 1
  int max() const { return 3 * k - 1; }               // softmax scratch
  int sum() const { return 3 * k; }                   // softmax scratch
  int slope() const { return 3 * k + 1; }             // dy/dx, then its log
  int sigmoid(int l) const { return 3 * k + 2 + l; }  // d(derivative l)/dθ, for Backward
  int count() const { return 4 * k + 1; }
};

// c₀ with softplus(c₀) = 1 − kMinDerivative: a zero network output gives derivative 1.
double DerivativeOffset() { return std::log(std::expm1(1.0 - SplineLayer::kMinDerivative)); }

// Fills the width, height and derivative blocks from the conditioner output θ (rows p·d + i).
void ComputeKnotBlocks(const Matrix& theta, int d, int k, double bound, std::vector<Matrix>& b) {
  const BlockIndex ix{k};
  const double scale = 2.0 * bound * (1.0 - SplineLayer::kMinBin * k);
  const double floor = 2.0 * bound * SplineLayer::kMinBin;
  for (int first : {0, k}) {  // widths, then heights: a softmax over the K blocks
    Matrix& mx = b[ix.max()];
    Matrix& sum = b[ix.sum()];
    mx = theta.middleRows(first * d, d);
    for (int l = 1; l < k; ++l) mx = mx.cwiseMax(theta.middleRows((first + l) * d, d));
    sum.setZero();
    for (int l = 0; l < k; ++l) {
      Matrix& e = b[first + l];
      e = (theta.middleRows((first + l) * d, d) - mx).array().exp();
      sum += e;
    }
    sum = sum.cwiseInverse();
    for (int l = 0; l < k; ++l) {
      b[first + l] = (scale * (b[first + l].array() * sum.array())) + floor;
    }
  }
  // derivative = kMinDerivative + softplus(z), z = θ + c₀, and its slope sigmoid(z), from
  // e = exp(−|z|) ∈ (0, 1]: softplus(z) = max(z, 0) + log(1 + e) (simd::Log: Eigen's log1p is
  // scalar), sigmoid(z) = 1/(1 + e) for z ≥ 0, e/(1 + e) otherwise.
  const double c0 = DerivativeOffset();
  for (int l = 0; l + 1 < k; ++l) {
    const auto theta_l = theta.middleRows((2 * k + l) * d, d);
    Matrix& deriv = b[ix.deriv(l)];
    Matrix& sigmoid = b[ix.sigmoid(l)];
    sigmoid = (-(theta_l.array() + c0).abs()).exp();  // e, for now
    for (Eigen::Index j = 0; j < theta_l.cols(); ++j) {
      const double* t = theta_l.col(j).data();
      double* dj = deriv.col(j).data();
      double* sj = sigmoid.col(j).data();
      simd::ForEachGroup(d, [&](int i, int count) {
        const simd::Vec z = simd::LoadN(t + i, count) + c0;
        const simd::Vec e = simd::LoadN(sj + i, count);
        const simd::Vec one_plus_e = 1.0 + e;
        const auto positive = z >= 0.0;  // lane-wise: all ones or zero
        const simd::Vec zero{}, one = simd::Broadcast(1.0);
        simd::StoreN(dj + i, count,
                     (positive ? z : zero) + simd::Log(one_plus_e) + SplineLayer::kMinDerivative);
        const simd::Vec numer = positive ? one : e;
        simd::StoreN(sj + i, count, numer / one_plus_e);
      });
    }
  }
}

// One coordinate's spline: accessors into the blocks at entry `e` = i + d·j.
struct Spline {
  const std::vector<Matrix>& b;
  BlockIndex ix;
  Eigen::Index e;
  double bound;

  double width(int l) const { return b[ix.width(l)].data()[e]; }
  double height(int l) const { return b[ix.height(l)].data()[e]; }
  // Derivative at knot m (0..K); 1 at the ends.
  double deriv(int m) const { return m == 0 || m == ix.k ? 1.0 : b[ix.deriv(m - 1)].data()[e]; }
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

// log of every entry, in place (simd::Log: Eigen's vectorized log is slow on SSE2).
void LogInPlace(Matrix& m) {
  double* p = m.data();
  simd::ForEachGroup(static_cast<int>(m.size()), [&](int j, int count) {
    simd::StoreN(p + j, count, simd::Log(simd::LoadN(p + j, count)));
  });
}

}  // namespace

SplineLayer::SplineLayer(int dim, const CouplingOptions& options, int bins, double bound)
    : CouplingLayer(dim, 3 * bins - 1, BlockIndex{bins}.count(), options),
      bins_(bins),
      bound_(bound) {}

void SplineLayer::TransformForward(const Matrix& theta, const ConstBatchRef& x_b, BatchRef y_b,
                                   LogDetAccumulator& logdet, CouplingCache& cache) const {
  const int d = static_cast<int>(x_b.rows());
  const BlockIndex ix{bins_};
  ComputeKnotBlocks(theta, d, bins_, bound_, cache.aux);
  Matrix& slope = cache.aux[ix.slope()];
  for (Eigen::Index j = 0; j < x_b.cols(); ++j) {
    for (int i = 0; i < d; ++i) {
      const double x = x_b(i, j);
      const Eigen::Index e = i + d * j;
      if (!Inside(x, bound_)) {
        y_b(i, j) = x;
        slope.data()[e] = 1.0;
        continue;
      }
      const Spline s{cache.aux, ix, e, bound_};
      const Bin bin = FindBin(s, x, false);
      const Segment g = MakeSegment(s, bin, std::clamp((x - bin.x0) / (bin.x1 - bin.x0), 0.0, 1.0));
      y_b(i, j) = bin.y0 + g.h * g.num() / g.den();
      slope.data()[e] = g.slope();
    }
  }
  LogInPlace(slope);
  logdet.log_sum() += slope.colwise().sum();
}

void SplineLayer::TransformBackward(const Matrix& /*theta*/, const ConstBatchRef& x_b,
                                    const ConstBatchRef& g_y, const RowVector& dlogdet,
                                    CouplingCache& cache, BatchRef g_x_b) const {
  const int d = static_cast<int>(x_b.rows());
  const int kk = bins_;
  const BlockIndex ix{kk};
  Matrix& gt = cache.g_theta;  // first dL/d(width, height, derivative), then dL/dθ
  gt.setZero();
  for (Eigen::Index j = 0; j < x_b.cols(); ++j) {
    const double gl = dlogdet[j];
    for (int i = 0; i < d; ++i) {
      const double x = x_b(i, j);
      const double gy = g_y(i, j);
      if (!Inside(x, bound_)) {
        g_x_b(i, j) = gy;
        continue;
      }
      const Eigen::Index e = i + d * j;
      const Spline s{cache.aux, ix, e, bound_};
      const Bin bin = FindBin(s, x, false);
      const double xi = std::clamp((x - bin.x0) / (bin.x1 - bin.x0), 0.0, 1.0);
      const Segment g = MakeSegment(s, bin, xi);
      const double t = g.t(), num = g.num(), den = g.den(), p = g.p();
      const double inv_den = 1.0 / den;
      // y = y_k + h num/den; log slope = 2 log s + log p − 2 log den.
      const double g_num = gy * g.h * inv_den;
      const double g_den = -gy * g.h * num * inv_den * inv_den - 2.0 * gl * inv_den;
      const double g_p = gl / p;
      double g_h = gy * num * inv_den;
      const double g_s = 2.0 * gl / g.s + g_num * xi * xi + g_den * (1 - 2 * t) + g_p * 2 * t;
      const double g_d0 = (g_num + g_den) * t + g_p * (1 - xi) * (1 - xi);
      const double g_d1 = g_den * t + g_p * xi * xi;
      const double g_xi = g_num * (2 * g.s * xi + g.d0 * (1 - 2 * xi)) +
                          g_den * (g.d1 + g.d0 - 2 * g.s) * (1 - 2 * xi) +
                          g_p * 2 * (g.d1 * xi + g.s * (1 - 2 * xi) - g.d0 * (1 - xi));
      // s = h/w, ξ = (x − x_k)/w, w = x_{k+1} − x_k, h = y_{k+1} − y_k.
      g_h += g_s / g.w;
      const double g_w = -g_s * g.s / g.w - g_xi * xi / g.w;
      g_x_b(i, j) = g_xi / g.w;
      const double g_x0 = -g_xi / g.w - g_w, g_x1 = g_w;
      const double g_y0 = gy - g_h, g_y1 = g_h;
      // Knot m (1 ≤ m ≤ K − 1) is −B plus the first m widths (heights); knots 0 and K are ±B.
      const int k = bin.k;
      for (int l = 0; l < kk; ++l) {
        double gw = 0, gh = 0;
        if (k >= 1 && l < k) gw += g_x0, gh += g_y0;
        if (k + 1 <= kk - 1 && l <= k) gw += g_x1, gh += g_y1;
        gt.data()[ix.width(l) * d + i + gt.rows() * j] = gw;
        gt.data()[ix.height(l) * d + i + gt.rows() * j] = gh;
      }
      if (k >= 1) gt(ix.deriv(k - 1) * d + i, j) += g_d0;
      if (k + 1 <= kk - 1) gt(ix.deriv(k) * d + i, j) += g_d1;
    }
  }
  // Through the softmaxes: size_l = floor + c·p_l with p = softmax(r), so
  // dL/dr_l = c p_l (g_l − Σ_m p_m g_m), and c p_l = size_l − floor.
  const double floor = 2.0 * bound_ * kMinBin;
  Matrix& dot = cache.aux[ix.sum()];  // scratch: Σ_m c p_m g_m
  for (int first : {0, kk}) {
    dot.setZero();
    for (int l = 0; l < kk; ++l) {
      dot.array() +=
          (cache.aux[first + l].array() - floor) * gt.middleRows((first + l) * d, d).array();
    }
    dot /= 2.0 * bound_ * (1.0 - kMinBin * kk);
    for (int l = 0; l < kk; ++l) {
      auto g = gt.middleRows((first + l) * d, d).array();
      g = (cache.aux[first + l].array() - floor) * (g - dot.array());
    }
  }
  // Through the derivatives' softplus: d/dr softplus(r + c₀) = sigmoid(r + c₀), from Forward.
  for (int l = 0; l + 1 < kk; ++l) {
    gt.middleRows(ix.deriv(l) * d, d).array() *= cache.aux[ix.sigmoid(l)].array();
  }
}

void SplineLayer::TransformInverse(const Matrix& theta, const ConstBatchRef& y_b, BatchRef x_b,
                                   RowVector& logdet, CouplingCache* scratch) const {
  const int d = static_cast<int>(y_b.rows());
  const BlockIndex ix{bins_};
  std::vector<Matrix> own;
  if (scratch == nullptr) own.assign(ix.count(), Matrix(d, y_b.cols()));
  std::vector<Matrix>& blocks = scratch != nullptr ? scratch->aux : own;
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
