// Diagonal scaling layer (`scale`): y = exp(s) ⊙ x, log|det| = Σ s — NICE's final scaling, which
// gives a stack of volume-preserving additive couplings its change of volume. Parameters: s (D),
// starting at 0 (the identity).
#ifndef FLOWVI_ENGINE_FLOWS_SCALE_H_
#define FLOWVI_ENGINE_FLOWS_SCALE_H_

#include "engine/flows/layer.h"

namespace flowvi {

class ScaleLayer final : public Layer {
 public:
  explicit ScaleLayer(int dim) : dim_(dim) {}

  absl::string_view type() const override { return "scale"; }
  int dim() const override { return dim_; }
  int num_params() const override { return dim_; }
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

#endif  // FLOWVI_ENGINE_FLOWS_SCALE_H_
