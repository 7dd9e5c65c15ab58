// Planar layer (Rezende & Mohamed 2015): f(z) = z + û tanh(wᵀz + b).
//
// Parameters, in order: u (D), w (D), b (1). The layer uses û = u + [m(wᵀu) − wᵀu] w/‖w‖²,
// m(x) = −1 + softplus(x), so wᵀû ≥ −1 for every parameter value and f is invertible. The
// inverse solves the monotone scalar equation wᵀy = α + wᵀû tanh(α + b) for α = wᵀz.
#ifndef FLOWVI_ENGINE_FLOWS_PLANAR_H_
#define FLOWVI_ENGINE_FLOWS_PLANAR_H_

#include "engine/flows/layer.h"

namespace flowvi {

class PlanarLayer final : public Layer {
 public:
  explicit PlanarLayer(int dim) : dim_(dim) {}

  absl::string_view type() const override { return "planar"; }
  int dim() const override { return dim_; }
  int num_params() const override { return 2 * dim_ + 1; }
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
  // kDim = dim_ for the dimensions with unrolled kernels (1 to 4), 0 for any other.
  template <int kDim>
  void ForwardImpl(ConstVectorRef params, const Matrix& in, Matrix& out, LogDetAccumulator& logdet,
                   LayerCache* cache) const;
  template <int kDim>
  void BackwardImpl(ConstVectorRef params, const Matrix& in, const Matrix& grad_out,
                    const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                    Matrix& grad_in) const;

  int dim_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_PLANAR_H_
