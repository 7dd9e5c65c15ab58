#include "engine/flows/radial.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/core/math.h"
#include "engine/core/root_solve.h"

namespace flowvi {
namespace {

struct RadialParams {
  double alpha, beta, sig_b;  // sig_b = dβ/db

  RadialParams(double a, double b)
      : alpha(std::exp(a)), beta(-std::exp(a) + Softplus(b)), sig_b(Sigmoid(b)) {}
};

class RadialCache final : public LayerCache {
 public:
  RadialCache(int dim, int n) : diff(dim, n), r(n), h(n), coef(n), q(n) {}
  Matrix diff;     // z − z₀
  RowVector r;     // ‖z − z₀‖
  RowVector h;     // 1/(α + r)
  RowVector coef;  // scratch (1 + βh in Forward; Backward's coefficients)
  RowVector q;     // (z − z₀)ᵀ dL/dout
};

}  // namespace

void RadialLayer::InitParams(Rng& rng, VectorRef params) const {
  for (int i = 0; i < dim_; ++i) params[i] = 0.1 * rng.Normal();
  params[dim_] = 0.0;
  params[dim_ + 1] = 0.0;
}

std::unique_ptr<LayerCache> RadialLayer::NewCache(int n) const {
  return std::make_unique<RadialCache>(dim_, n);
}

void RadialLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out, RowVector& logdet,
                          LayerCache* cache) const {
  auto& c = *static_cast<RadialCache*>(cache);
  const auto z0 = params.segment(0, dim_);
  const RadialParams p(params[dim_], params[dim_ + 1]);
  c.diff = in.colwise() - z0;
  c.r = c.diff.colwise().norm();
  c.h = 1.0 / (p.alpha + c.r.array());
  // Broadcasting an expression row-wise would evaluate it into a heap temporary; use the cache.
  c.coef = 1.0 + p.beta * c.h.array();
  out = c.diff.array().rowwise() * c.coef.array();
  out.colwise() += z0;
  // 1 + βh − βh²r = 1 + αβh², since h(α + r) = 1.
  logdet.array() += (dim_ - 1) * (p.beta * c.h.array()).log1p() +
                    (p.alpha * p.beta * c.h.array().square()).log1p();
}

void RadialLayer::Backward(ConstVectorRef params, const Matrix& /*in*/, const Matrix& grad_out,
                           const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                           Matrix& grad_in) const {
  auto& c = *static_cast<RadialCache*>(cache);
  const RadialParams p(params[dim_], params[dim_ + 1]);
  const double a = p.alpha, b = p.beta;
  const auto h = c.h.array();
  const auto r = c.r.array();
  const auto g = dlogdet.array();
  const auto one_bh = 1.0 + b * h;
  const auto one_abh2 = 1.0 + a * b * h.square();
  c.q = (c.diff.array() * grad_out.array()).colwise().sum();
  const auto q = c.q.array();

  // Derivatives of the per-sample log|det| with respect to r, α (through h) and β.
  const auto dld_dr = -(dim_ - 1) * b * h.square() / one_bh - 2.0 * a * b * h.cube() / one_abh2;
  const auto dld_da = -(dim_ - 1) * b * h.square() / one_bh +
                      b * h.square() * (1.0 - 2.0 * a * h) / one_abh2;
  const auto dld_db = (dim_ - 1) * h / one_bh + a * h.square() / one_abh2;

  // dL/dz through diff: (1 + βh) G + [−βh²/r · q + g · dld/dr / r] diff, with the bracket
  // taken as 0 at r = 0 where diff = 0.
  c.coef = (r > 0).select((-b * h.square() * q + g * dld_dr) / r, 0.0);
  grad_in = c.diff.array().rowwise() * c.coef.array();
  // dz₀ = −Σ (dL/dz − G): z₀ enters only through diff.
  grad_params.segment(0, dim_) -= grad_in.rowwise().sum();
  grad_params.segment(0, dim_).noalias() -= grad_out * (b * c.h).transpose();
  c.coef = one_bh;  // materialized: a row-wise broadcast of an expression allocates
  grad_in += (grad_out.array().rowwise() * c.coef.array()).matrix();

  const double d_alpha = (q * b * -h.square() + g * dld_da).sum();
  const double d_beta = (q * h + g * dld_db).sum();
  // β = −α + softplus(b): dL/dα picks up −dL/dβ; α = exp(a).
  grad_params[dim_] += (d_alpha - d_beta) * a;
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
