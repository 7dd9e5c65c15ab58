#include "engine/flows/radial.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "engine/core/math.h"
#include "engine/core/root_solve.h"
#include "engine/core/simd.h"

namespace flowvi {
namespace {

using simd::Vec;

struct RadialParams {
  double alpha, beta, sig_b;  // sig_b = dβ/db

  RadialParams(double a, double b)
      : alpha(std::exp(a)), beta(-std::exp(a) + Softplus(b)), sig_b(Sigmoid(b)) {}
};

// Only rows are cached (z − z₀ is recomputed from the layer's input in Backward).
class RadialCache final : public LayerCache {
 public:
  RadialCache(int dim, int n) : h(n), inv_r(n), inv_bh(n), inv_abh2(n), row(n), dz0(dim) {}
  RowVector h;         // 1/(α + r), r = ‖z − z₀‖
  RowVector inv_r;     // 1/r, and 0 where r = 0
  RowVector inv_bh;    // 1/(1 + βh)
  RowVector inv_abh2;  // 1/(1 + αβh²)
  RowVector row;  // scratch: r², then (z − z₀)ᵀG and Backward's coefficient of z − z₀
  Vector dz0;     // kDim = 0: Σ_j of Backward's per-column terms for z₀
};

// Kernels over the columns of a D x N batch (see planar.cc). kDim = 1 to 4 unrolls the rows;
// kDim = 0 loops over `dim` rows at run time.

// z₀ broadcast once (the compiler cannot tell that the kernels' stores leave it alone).
template <int kDim>
struct Center {
  explicit Center(const double* z0) : p(z0) {
    for (int i = 0; i < kDim; ++i) v[i] = simd::Broadcast(z0[i]);
  }
  Vec operator[](int i) const {
    if constexpr (kDim > 0) {
      return v[i];
    } else {
      return simd::Broadcast(p[i]);
    }
  }
  const double* p;
  Vec v[kDim > 0 ? kDim : 1];
};

// out_j = (z_j − z₀)ᵀv_j, with v_j = z_j − z₀ (kSquared: ‖z_j − z₀‖²) or v = G.
template <int kDim, bool kSquared>
void DiffDots(const double* z0, const double* z, const double* v, int dim, int n, double* out) {
  const int d = kDim > 0 ? kDim : dim;
  const Center<kDim> center(z0);
  simd::ForEachGroup(n, [&](int j, int count) {
    const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(d) * j;
    Vec acc{};
    for (int i = 0; i < d; ++i) {
      const Vec diff = simd::LoadStridedN(z + offset + i, d, count) - center[i];
      if constexpr (kSquared) {
        acc += diff * diff;
      } else {
        acc += diff * simd::LoadStridedN(v + offset + i, d, count);
      }
    }
    simd::StoreN(out + j, count, acc);
  });
}

// out_j = z_j + βh_j (z_j − z₀).
template <int kDim>
void RadialOutput(const double* z0, double beta, const double* h, const double* z, int dim, int n,
                  double* out) {
  const int d = kDim > 0 ? kDim : dim;
  const Center<kDim> center(z0);
  simd::ForEachGroup(n, [&](int j, int count) {
    const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(d) * j;
    const Vec bh = beta * simd::LoadN(h + j, count);
    for (int i = 0; i < d; ++i) {
      const Vec zi = simd::LoadStridedN(z + offset + i, d, count);
      simd::StoreStridedN(out + offset + i, d, count, zi + bh * (zi - center[i]));
    }
  });
}

// grad_in_j = c_j (z_j − z₀) + (1 + βh_j) g_j, and acc = Σ_j c_j (z_j − z₀) + βh_j g_j.
template <int kDim>
void RadialBackwardColumns(const double* z0, double beta, const double* h, const double* c,
                           const double* z, const double* g, int dim, int n, double* grad_in,
                           double* acc) {
  const int d = kDim > 0 ? kDim : dim;
  const Center<kDim> center(z0);
  Vec acc_v[kDim > 0 ? kDim : 1] = {};
  if constexpr (kDim == 0) std::fill(acc, acc + d, 0.0);
  simd::ForEachGroup(n, [&](int j, int count) {
    const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(d) * j;
    const Vec bh = beta * simd::LoadN(h + j, count);
    const Vec cj = simd::LoadN(c + j, count);
    for (int i = 0; i < d; ++i) {
      const Vec cdiff = cj * (simd::LoadStridedN(z + offset + i, d, count) - center[i]);
      const Vec gi = simd::LoadStridedN(g + offset + i, d, count);
      const Vec bg = bh * gi;
      simd::StoreStridedN(grad_in + offset + i, d, count, cdiff + (gi + bg));
      if constexpr (kDim > 0) {
        acc_v[i] += cdiff + bg;
      } else {
        acc[i] += simd::Sum(cdiff + bg);
      }
    }
  });
  if constexpr (kDim > 0) {
    for (int i = 0; i < kDim; ++i) acc[i] = simd::Sum(acc_v[i]);
  }
}

}  // namespace

void RadialLayer::InitParams(Rng& rng, VectorRef params) const {
  for (int i = 0; i < dim_; ++i) params[i] = 0.1 * rng.Normal();
  params[dim_] = 0.0;
  params[dim_ + 1] = 0.0;
}

std::unique_ptr<LayerCache> RadialLayer::NewCache(int n) const {
  return std::make_unique<RadialCache>(dim_, n);
}

void RadialLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                          LogDetAccumulator& logdet, LayerCache* cache) const {
  auto& c = *static_cast<RadialCache*>(cache);
  const double* z0 = params.data();
  const RadialParams p(params[dim_], params[dim_ + 1]);
  const double alpha = p.alpha, beta = p.beta;
  const int n = static_cast<int>(in.cols());
  out.resize(in.rows(), in.cols());  // a no-op (no allocation) when the shape is right
  simd::WithFixedDim(dim_, [&](auto fixed) {
    DiffDots<decltype(fixed)::value, true>(z0, in.data(), nullptr, dim_, n, c.row.data());
  });
  // det = (1 + βh)^(D−1) (1 + αβh²), and as h ranges over (0, 1/α] both factors lie between 1
  // and ρ = 1 + β/α ≥ 0, so |log2 det| ≤ D |log2 ρ| < D (|ilogb ρ| + 1); one bit of slack.
  const double rho = 1.0 + beta / alpha;
  const bool product = rho > 0 && std::isfinite(rho) &&
                       logdet.ReserveProduct(dim_ * (std::abs(std::ilogb(rho)) + 1.0) + 1.0);
  double* inv_det_product = logdet.inv_det_product().data();
  double* log_sum = logdet.log_sum().data();
  const Vec one = simd::Broadcast(1.0), zero{};
  simd::ForEachGroup(n, [&](int j, int count) {
    const Vec r = simd::Sqrt(simd::LoadN(c.row.data() + j, count));
    const Vec t = alpha + r;
    // One division for h = 1/t and 1/r (r = 0, a point at the center, uses r = 1 instead and
    // reports 1/r = 0: every term it multiplies has a factor z − z₀ = 0 there).
    const Vec positive = r > 0.0 ? one : zero;
    const Vec r_safe = r * positive + (one - positive);
    const Vec rt = 1.0 / (t * r_safe);
    const Vec h = r_safe * rt;
    const Vec bh = beta * h;
    const Vec one_bh = 1.0 + bh;
    const Vec one_abh2 = 1.0 + alpha * bh * h;
    // And one for both reciprocals of the determinant's factors.
    const Vec rf = 1.0 / (one_bh * one_abh2);
    const Vec inv_bh = one_abh2 * rf;
    const Vec inv_abh2 = one_bh * rf;
    simd::StoreN(c.h.data() + j, count, h);
    simd::StoreN(c.inv_r.data() + j, count, (t * rt) * positive);
    simd::StoreN(c.inv_bh.data() + j, count, inv_bh);
    simd::StoreN(c.inv_abh2.data() + j, count, inv_abh2);
    if (product) {
      Vec inv_det = inv_abh2;
      for (int i = 1; i < dim_; ++i) inv_det *= inv_bh;
      simd::StoreN(inv_det_product + j, count, simd::LoadN(inv_det_product + j, count) * inv_det);
    } else {
      simd::StoreN(
          log_sum + j, count,
          simd::LoadN(log_sum + j, count) + ((dim_ - 1) * simd::Log(one_bh) + simd::Log(one_abh2)));
    }
  });
  simd::WithFixedDim(dim_, [&](auto fixed) {
    RadialOutput<decltype(fixed)::value>(z0, beta, c.h.data(), in.data(), dim_, n, out.data());
  });
}

void RadialLayer::Backward(ConstVectorRef params, const Matrix& in, const Matrix& grad_out,
                           const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                           Matrix& grad_in) const {
  auto& c = *static_cast<RadialCache*>(cache);
  const double* z0 = params.data();
  const RadialParams p(params[dim_], params[dim_ + 1]);
  const double alpha = p.alpha, beta = p.beta;
  const int n = static_cast<int>(in.cols());
  grad_in.resize(in.rows(), in.cols());
  simd::WithFixedDim(dim_, [&](auto fixed) {
    DiffDots<decltype(fixed)::value, false>(z0, in.data(), grad_out.data(), dim_, n, c.row.data());
  });
  // Per column, with q = (z − z₀)ᵀG, g = dL/dlogdet, A = (D − 1)/(1 + βh), B = 1/(1 + αβh²),
  // log|det| = (D − 1) log(1 + βh) + log(1 + αβh²) and h = 1/(α + r):
  //   dL/dz = c (z − z₀) + (1 + βh) G,   c = −βh²/r (q + g (A + 2αh B)),
  //   dL/dα = −βh² (q + g (A − (1 − 2αh) B)),   dL/dβ = h (q + g (A + αh B)).
  const double d_minus_1 = dim_ - 1;
  Vec acc_alpha{}, acc_beta{};
  simd::ForEachGroup(n, [&](int j, int count) {
    const Vec h = simd::LoadN(c.h.data() + j, count);
    const Vec q = simd::LoadN(c.row.data() + j, count);
    const Vec g = simd::LoadN(dlogdet.data() + j, count);
    const Vec a_term = d_minus_1 * simd::LoadN(c.inv_bh.data() + j, count);
    const Vec b_term = simd::LoadN(c.inv_abh2.data() + j, count);
    const Vec ah = alpha * h;
    const Vec bh2 = (beta * h) * h;
    simd::StoreN(
        c.row.data() + j, count,
        -bh2 * simd::LoadN(c.inv_r.data() + j, count) * (q + g * (a_term + (ah + ah) * b_term)));
    acc_alpha -= bh2 * (q + g * (a_term - (1.0 - (ah + ah)) * b_term));
    acc_beta += h * (q + g * (a_term + ah * b_term));
  });
  double* dz0 = c.dz0.data();
  simd::WithFixedDim(dim_, [&](auto fixed) {
    RadialBackwardColumns<decltype(fixed)::value>(z0, beta, c.h.data(), c.row.data(), in.data(),
                                                  grad_out.data(), dim_, n, grad_in.data(), dz0);
  });
  // z₀ enters only through z − z₀.
  grad_params.segment(0, dim_) -= c.dz0;
  const double d_alpha = simd::Sum(acc_alpha), d_beta = simd::Sum(acc_beta);
  // β = −α + softplus(b): dL/dα picks up −dL/dβ; α = exp(a).
  grad_params[dim_] += (d_alpha - d_beta) * alpha;
  grad_params[dim_ + 1] += d_beta * p.sig_b;
}

absl::Status RadialLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                  RowVector& logdet) const {
  const auto z0 = params.segment(0, dim_);
  const RadialParams p(params[dim_], params[dim_ + 1]);
  const double a = p.alpha, b = p.beta;
  in.resize(out.rows(), out.cols());
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    const double r_out = (out.col(j) - z0).norm();
    auto fdf = [&](double r, double* f, double* df) {
      *f = r + b * r / (a + r) - r_out;
      *df = 1.0 + a * b / ((a + r) * (a + r));
    };
    // |r_out − r| = |β| r/(α + r) ≤ |β| brackets the root.
    const std::optional<double> r =
        SolveMonotone(fdf, std::max(0.0, r_out - std::abs(b)), r_out + std::abs(b));
    if (!r.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("radial layer inverse failed at point ", j, " (non-finite input?)"));
    }
    const double h = 1.0 / (a + *r);
    in.col(j) = z0 + (out.col(j) - z0) / (1.0 + b * h);
    logdet[j] += (dim_ - 1) * std::log1p(b * h) + std::log1p(a * b * h * h);
  }
  return absl::OkStatus();
}

}  // namespace flowvi
