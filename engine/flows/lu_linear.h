// Invertible linear mixing, LU-parameterized (Kingma & Dhariwal 2018, Glow's 1x1 convolution):
//
//   f(z) = W z,   W = P L (U + diag(exp(s))),   log|det| = Σ s (the same for every column)
//
// with P a fixed random permutation, L unit lower-triangular and U strictly upper-triangular,
// so W is invertible for every parameter value. Inverse: Pᵀ, then two triangular solves.
//
// Parameters, in order: the permutation's keys (D; P's row r is e_{order[r]}, order the argsort
// of the keys, key_order.h; fixed structure: zero gradient), s (D), then the off-diagonal
// entries (D(D − 1)), column by column skipping the diagonal: those below the diagonal are L's,
// those above are U's. InitParams draws the keys and sets the rest to zero, so W starts as the
// permutation P.
//
// Thread-safety: as Layer.
#ifndef FLOWVI_ENGINE_FLOWS_LU_LINEAR_H_
#define FLOWVI_ENGINE_FLOWS_LU_LINEAR_H_

#include <memory>

#include "engine/flows/layer.h"

namespace flowvi {

class LuLinearLayer final : public Layer {
 public:
  // The largest D (the layer costs D² parameters and D² N per pass).
  static constexpr int kMaxDim = 1024;

  explicit LuLinearLayer(int dim) : dim_(dim) {}

  absl::string_view type() const override { return "linear"; }
  int dim() const override { return dim_; }
  int num_params() const override { return dim_ * dim_ + dim_; }
  int num_fixed_params() const override { return dim_; }
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

#endif  // FLOWVI_ENGINE_FLOWS_LU_LINEAR_H_
