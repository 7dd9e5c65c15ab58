// Affine autoregressive layers with a MADE conditioner (made.h): IAF (Kingma et al. 2016) and
// MAF (Papamakarios et al. 2017), in this project's sampling direction ε → z (flows are trained
// by reverse KL through Forward; densities of given points go through Inverse).
//
//   iaf:  y = x ⊙ exp(s(x)) + m(x)      Forward: one MADE pass;  Inverse: D − 1 sequential passes
//   maf:  y = x ⊙ exp(s(y)) + m(y)      Forward: D − 1 sequential passes;  Inverse: one pass
//         (i.e. x = (y − m(y)) ⊙ exp(−s(y)), the cheap direction for density estimation)
//
// with (m, a) the MADE outputs and the log-scale soft-clamped as in RealNVP,
// s = kMaxLogScale · tanh(a / kMaxLogScale), so no parameter value can make a layer blow up or
// collapse (every parameter vector is a valid layer). log|det| = Σ_i s_i per column. MADE's
// output weights start at zero, so both layers start at the identity.
//
// MAF's Forward solves its triangular system by fixed-point sweeps (sweep r fixes the
// coordinate of rank r; the first coordinate needs none, so D − 1 sweeps), and its Backward
// solves the adjoint system the same way (D − 1 MADE vector-Jacobian products, then one for the
// parameters), so nothing of the forward sweeps needs to be kept: the conditioner evaluated at the
// final sweep's input has the same outputs and Jacobian as at y (the last coordinate in the order
// feeds no output).
//
// Parameters: those of MadeNet(D, hidden, depth), the first D of which (the input ordering)
// are fixed structure with zero gradient.
//
// Thread-safety: as Layer.
#ifndef FLOWVI_ENGINE_FLOWS_AUTOREGRESSIVE_H_
#define FLOWVI_ENGINE_FLOWS_AUTOREGRESSIVE_H_

#include <memory>

#include "engine/flows/layer.h"
#include "engine/flows/made.h"

namespace flowvi {

class AutoregressiveLayer final : public Layer {
 public:
  enum class Kind { kIaf, kMaf };
  // Bound of |s|: one layer scales a coordinate by at most e^3 ≈ 20 either way.
  static constexpr double kMaxLogScale = 3.0;
  // Limits of the spec options (the catalog checks them).
  static constexpr int kMaxHidden = 4096;
  static constexpr int kMaxDepth = 8;

  // REQUIRES: dim, hidden, depth ≥ 1.
  AutoregressiveLayer(Kind kind, int dim, int hidden, int depth)
      : kind_(kind), made_(dim, hidden, depth) {}

  absl::string_view type() const override { return kind_ == Kind::kIaf ? "iaf" : "maf"; }
  int dim() const override { return made_.dim(); }
  int num_params() const override { return made_.num_params(); }
  int num_fixed_params() const override { return made_.num_fixed_params(); }
  void InitParams(Rng& rng, VectorRef params) const override { made_.InitParams(rng, params); }
  std::unique_ptr<LayerCache> NewCache(int n) const override;
  using Layer::Forward;
  void Forward(ConstVectorRef params, const Matrix& in, Matrix& out, LogDetAccumulator& logdet,
               LayerCache* cache) const override;
  void Backward(ConstVectorRef params, const Matrix& in, const Matrix& grad_out,
                const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                Matrix& grad_in) const override;
  absl::Status Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                       RowVector& logdet) const override;

 private:
  Kind kind_;
  MadeNet made_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_AUTOREGRESSIVE_H_
