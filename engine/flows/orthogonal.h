// Orthogonal mixing layer (`orthogonal`): y = Q x for a fixed random orthogonal Q, log|det| = 0.
// NICE-ortho's mixing between coupling layers.
//
// Q is fixed structure stored in the parameter slice (see layer.h) as D Householder vectors,
// Q = H(v_1)···H(v_D), H(v) = I − 2vvᵀ/‖v‖² (and H(0) = I), so every parameter vector gives an
// orthogonal Q. InitParams draws the v_k standard normal. Backward adds exactly zero gradient to
// them, so training never moves them. Parameters: v_1, ..., v_D (D each, D² in all).
//
// The cache forms Q once (O(D³)) and keeps the parameters it came from; each pass is then one
// matrix product with the batch.
#ifndef FLOWVI_ENGINE_FLOWS_ORTHOGONAL_H_
#define FLOWVI_ENGINE_FLOWS_ORTHOGONAL_H_

#include "engine/flows/layer.h"

namespace flowvi {

// Q = H(v_1)···H(v_D) from the D x D column-major vectors in `params`, into *q (D x D; no
// allocation when it has that shape). `scratch`: size D.
void HouseholderProduct(ConstVectorRef params, int dim, Matrix* q, Vector* scratch);

class OrthogonalLayer final : public Layer {
 public:
  explicit OrthogonalLayer(int dim) : dim_(dim) {}

  absl::string_view type() const override { return "orthogonal"; }
  int dim() const override { return dim_; }
  int num_params() const override { return dim_ * dim_; }
  int num_fixed_params() const override { return dim_ * dim_; }
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
  absl::Status InverseWithCache(ConstVectorRef params, const Matrix& out, Matrix& in,
                                RowVector& logdet, LayerCache* cache) const override;

 private:
  int dim_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_ORTHOGONAL_H_
