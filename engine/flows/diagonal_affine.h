// Diagonal affine layer: f(z) = μ + exp(s) ⊙ z, log|det| = Σ s.
//
// Every flow starts with one: applied to ε ~ N(0, I) it is the learnable diagonal-Gaussian
// base q₀ = N(μ, diag(exp(2s))), so a flow with no further layers is the mean-field (ADVI)
// family. Parameters, in order: μ (D), s = log σ (D).
#ifndef FLOWVI_ENGINE_FLOWS_DIAGONAL_AFFINE_H_
#define FLOWVI_ENGINE_FLOWS_DIAGONAL_AFFINE_H_

#include "engine/flows/layer.h"

namespace flowvi {

class DiagonalAffineLayer final : public Layer {
 public:
  explicit DiagonalAffineLayer(int dim) : dim_(dim) {}

  absl::string_view type() const override { return "diagonal_affine"; }
  int dim() const override { return dim_; }
  int num_params() const override { return 2 * dim_; }
  void InitParams(Rng& rng, VectorRef params) const override;
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
  int dim_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_DIAGONAL_AFFINE_H_
