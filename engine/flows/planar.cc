#include "engine/flows/planar.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/core/math.h"
#include "engine/core/root_solve.h"

namespace flowvi {
namespace {

// û and the quantities its chain rule needs, from the raw (u, w).
struct Constrained {
  Vector u_hat;
  double wu = 0;       // wᵀu
  double w_norm2 = 0;  // ‖w‖²
  double c = 0;        // û = u + c w
  double w_uhat = 0;   // wᵀû ≥ −1

  void Compute(ConstVectorRef u, ConstVectorRef w) {
    wu = w.dot(u);
    w_norm2 = w.squaredNorm();
    // With w = 0 the layer is a translation and any u keeps it invertible.
    c = w_norm2 > 0 ? (Softplus(wu) - 1.0 - wu) / w_norm2 : 0.0;
    u_hat = u + c * w;
    w_uhat = w.dot(u_hat);
  }
};

class PlanarCache final : public LayerCache {
 public:
  PlanarCache(int dim, int n) : h(n), det(n), da(n), g_uhat(dim), g_w(dim) { k.u_hat.resize(dim); }
  Constrained k;
  RowVector h;    // tanh(wᵀz + b)
  RowVector det;  // 1 + (1 − h²) wᵀû
  RowVector da;   // dL/d(wᵀz + b), filled by Backward
  Vector g_uhat;  // dL/dû
  Vector g_w;     // dL/dw through wᵀz and through log|det| only
};

}  // namespace

void PlanarLayer::InitParams(Rng& rng, VectorRef params) const {
  // The ranges PyTorch flow libraries use, so that fits start from the same family of flows.
  const double lim_u = std::sqrt(2.0);
  const double lim_w = std::sqrt(2.0 / dim_);
  rng.FillUniform(-lim_u, lim_u, params.segment(0, dim_));
  rng.FillUniform(-lim_w, lim_w, params.segment(dim_, dim_));
  params[2 * dim_] = 0.0;
}

std::unique_ptr<LayerCache> PlanarLayer::NewCache(int n) const {
  return std::make_unique<PlanarCache>(dim_, n);
}

void PlanarLayer::Forward(ConstVectorRef params, const Matrix& in, Matrix& out, RowVector& logdet,
                          LayerCache* cache) const {
  auto& c = *static_cast<PlanarCache*>(cache);
  const auto u = params.segment(0, dim_);
  const auto w = params.segment(dim_, dim_);
  const double b = params[2 * dim_];
  c.k.Compute(u, w);
  c.h.noalias() = w.transpose() * in;
  c.h = (c.h.array() + b).tanh();
  out.noalias() = c.k.u_hat * c.h;
  out += in;
  c.det = 1.0 + (1.0 - c.h.array().square()) * c.k.w_uhat;
  logdet.array() += c.det.array().abs().log();
}

void PlanarLayer::Backward(ConstVectorRef params, const Matrix& in, const Matrix& grad_out,
                           const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                           Matrix& grad_in) const {
  auto& c = *static_cast<PlanarCache*>(cache);
  const auto u = params.segment(0, dim_);
  const auto w = params.segment(dim_, dim_);
  const Constrained& k = c.k;
  const auto h = c.h.array();
  const auto one_minus_h2 = 1.0 - h.square();
  // d log|det| / d(wᵀû) = (1 − h²)/det, summed with the per-sample weights.
  const double s = (dlogdet.array() * one_minus_h2 / c.det.array()).sum();
  // dL/da = (ûᵀG)(1 − h²) + dlogdet · wᵀû · (−2h(1 − h²)) / det.
  c.da.noalias() = k.u_hat.transpose() * grad_out;
  c.da = c.da.array() * one_minus_h2 -
         2.0 * k.w_uhat * dlogdet.array() * h * one_minus_h2 / c.det.array();
  grad_in = grad_out;
  grad_in.noalias() += w * c.da;

  // dL/dû and the direct dL/dw, then the chain rule through û = u + c(wᵀu, ‖w‖²) w.
  c.g_uhat.noalias() = grad_out * c.h.transpose();
  c.g_uhat += s * w;
  c.g_w.noalias() = in * c.da.transpose();
  c.g_w += s * k.u_hat;
  auto g_u = grad_params.segment(0, dim_);
  auto g_w = grad_params.segment(dim_, dim_);
  g_u += c.g_uhat;
  g_w += c.g_w + k.c * c.g_uhat;
  if (k.w_norm2 > 0) {
    const double gw = c.g_uhat.dot(w);
    const double dc_dwu = (Sigmoid(k.wu) - 1.0) / k.w_norm2;  // ∂c/∂(wᵀu)
    const double dc_dwn2 = -k.c / k.w_norm2;                  // ∂c/∂‖w‖²
    g_u += (gw * dc_dwu) * w;
    g_w += (gw * dc_dwu) * u + (2.0 * gw * dc_dwn2) * w;
  }
  grad_params[2 * dim_] += c.da.sum();
}

absl::Status PlanarLayer::Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                                  RowVector& logdet) const {
  Constrained k;
  const auto u = params.segment(0, dim_);
  const auto w = params.segment(dim_, dim_);
  const double b = params[2 * dim_];
  k.Compute(u, w);
  in.resize(out.rows(), out.cols());
  const double a = k.w_uhat;
  for (Eigen::Index j = 0; j < out.cols(); ++j) {
    const double wy = w.dot(out.col(j));
    auto fdf = [&](double alpha, double* f, double* df) {
      const double t = std::tanh(alpha + b);
      *f = alpha + a * t - wy;
      *df = 1.0 + a * (1.0 - t * t);
    };
    // |α − wᵀy| = |wᵀû tanh(·)| ≤ |wᵀû| brackets the root.
    const std::optional<double> alpha = SolveMonotone(fdf, wy - std::abs(a), wy + std::abs(a));
    if (!alpha.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("planar layer inverse failed at point ", j, " (non-finite input?)"));
    }
    const double t = std::tanh(*alpha + b);
    in.col(j) = out.col(j) - k.u_hat * t;
    logdet[j] += std::log(std::abs(1.0 + (1.0 - t * t) * a));
  }
  return absl::OkStatus();
}

}  // namespace flowvi
