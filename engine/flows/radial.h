// Radial layer (Rezende & Mohamed 2015): f(z) = z + β h(α, r)(z − z₀), r = ‖z − z₀‖,
// h = 1/(α + r).
//
// Parameters, in order: z₀ (D), a, b with α = exp(a) > 0 and β = −α + softplus(b) ≥ −α, so f is
// invertible for every parameter value. The inverse solves the monotone scalar equation
// r_out = r (1 + β h(α, r)) for r.
#ifndef FLOWVI_ENGINE_FLOWS_RADIAL_H_
#define FLOWVI_ENGINE_FLOWS_RADIAL_H_

#include "engine/flows/layer.h"

namespace flowvi {

class RadialLayer final : public Layer {
 public:
  explicit RadialLayer(int dim) : dim_(dim) {}

  absl::string_view type() const override { return "radial"; }
  int dim() const override { return dim_; }
  int num_params() const override { return dim_ + 2; }
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

#endif  // FLOWVI_ENGINE_FLOWS_RADIAL_H_
