// Circular convolution layer (Karami et al. 2019, "Invertible convolutional flow"; the course
// report's extension in ../shared/seeds/):
//
//   f(x) = w ⊛ x,  (w ⊛ x)_i = Σ_n x_n w_{(i − n) mod D},   i.e.  DFT(f(x)) = ŵ ⊙ DFT(x),
//   log|det| = Σ_k log|ŵ_k|  (the same for every column),
//
// forward, backward and inverse (division by ŵ) through Eigen's FFT in O(D log D) per column.
// (For D ≤ 96 the training passes multiply by the D x D circulant matrix instead, which is
// faster at such lengths; see circconv.cc.)
//
// Parameterized in the Fourier domain, so that ŵ is the DFT of a real filter w and never 0:
// ŵ_0 = exp(ρ_0) and, for even D, ŵ_{D/2} = exp(ρ_{D/2}) (these bins of a real signal are
// real; the signs are fixed to + since they cannot change continuously without crossing 0),
// and for 1 ≤ k < D/2, ŵ_k = exp(ρ_k + iφ_k) with ŵ_{D−k} = conj(ŵ_k). Any parameter vector
// is a valid, invertible layer, and log|det| = ρ_0 + ρ_{D/2} + 2 Σ_{0<k<D/2} ρ_k needs no DFT.
// Parameters (D in all), in order: ρ_0, then (ρ_k, φ_k) for k = 1, ..., ⌈D/2⌉ − 1, then
// ρ_{D/2} if D is even. They start at 0: ŵ = 1, the identity.
//
// Thread-safety: as Layer. Each cache holds its own FFT object (their plans are mutable).
#ifndef FLOWVI_ENGINE_FLOWS_CIRCCONV_H_
#define FLOWVI_ENGINE_FLOWS_CIRCCONV_H_

#include <memory>

#include "engine/flows/layer.h"

namespace flowvi {

class CircularConvLayer final : public Layer {
 public:
  explicit CircularConvLayer(int dim) : dim_(dim) {}

  absl::string_view type() const override { return "circconv"; }
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

#endif  // FLOWVI_ENGINE_FLOWS_CIRCCONV_H_
