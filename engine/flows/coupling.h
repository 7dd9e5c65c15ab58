// CouplingLayer: the common frame of the coupling layers (nice, realnvp, spline).
//
// The input x ∈ R^D splits into x_a, its first d_a = ⌊D/2⌋ coordinates, and x_b, the other
// d_b = D − d_a. An Mlp of x_a gives, for every coordinate of x_b, the k numbers θ of an
// element-wise invertible map g, and
//
//   f(x) = (g(x_b; θ(x_a)), x_a),   log|det ∂f/∂x| = Σ_i log g'(x_b,i; θ_i).
//
// The output puts the transformed half FIRST and the conditioning half last, so the layer is a
// coupling followed by a fixed rotation of the coordinates: in a stack such as `realnvp*8` the
// next layer transforms the coordinates this one only conditioned on. The halves alternate
// without any option; with odd D the rotation by d_a still brings every coordinate into both
// roles. Explicit mixing layers (permute, orthogonal) can be placed between couplings too.
//
// Conditioner output rows: parameter p of coordinate i is row p·d_b + i, so each parameter is a
// contiguous d_b x N row block. The Mlp's output layer starts at zero and every subclass maps
// θ = 0 to the identity, so a fresh coupling layer is the identity map (up to the rotation).
//
// Parameters: the Mlp's (see mlp.h). Needs D ≥ 2 (the factories check, see CheckCouplingDim).
// Thread-safety as Layer; the cache (CouplingCache) belongs to one thread.
#ifndef FLOWVI_ENGINE_FLOWS_COUPLING_H_
#define FLOWVI_ENGINE_FLOWS_COUPLING_H_

#include <memory>

#include "absl/status/status.h"
#include "engine/core/params.h"
#include "engine/flows/layer.h"
#include "engine/flows/mlp.h"

namespace flowvi {

struct CouplingOptions {
  int hidden = 32;  // width of the conditioner's hidden layers
  int depth = 2;    // number of hidden layers
  MlpActivation activation = MlpActivation::kTanh;
};

// The options every coupling layer takes: hidden, depth, relu (ParamSpecs for the catalog).
std::vector<ParamSpec> CouplingOptionSpecs();
// Reads and checks them from resolved options; InvalidArgument naming `type` and the option.
absl::StatusOr<CouplingOptions> ReadCouplingOptions(absl::string_view type,
                                                    const ParamMap& options);
// InvalidArgument naming `type` and the dimension unless dim ≥ 2.
absl::Status CheckCouplingDim(absl::string_view type, int dim);
// InvalidArgument naming the layer and the column unless every entry of `out` is finite.
absl::Status CheckFiniteForInverse(absl::string_view type, const Matrix& out);

// Per-batch scratch of a coupling layer.
class CouplingCache : public LayerCache {
 public:
  CouplingCache(const Mlp& mlp, int d_b, int n, int num_aux);
  MlpCache mlp;
  Matrix g_theta;           // dL/dθ, (k·d_b) x N
  std::vector<Matrix> aux;  // d_b x N each, for the subclass (e.g. exp(s))
};

class CouplingLayer : public Layer {
 public:
  // `k`: parameters of g per transformed coordinate; `num_aux`: d_b x N scratch matrices the
  // subclass wants in its cache.
  CouplingLayer(int dim, int k, int num_aux, const CouplingOptions& options);

  int dim() const override { return dim_; }
  int num_params() const override { return mlp_.num_params(); }
  void InitParams(Rng& rng, VectorRef params) const override;
  std::unique_ptr<LayerCache> NewCache(int n) const override;
  int64_t cache_doubles_per_column() const override {
    return mlp_.cache_doubles_per_column() + mlp_.out() + int64_t{num_aux_} * d_b();
  }
  using Layer::Forward;
  void Forward(ConstVectorRef params, const Matrix& in, Matrix& out, LogDetAccumulator& logdet,
               LayerCache* cache) const final;
  void Backward(ConstVectorRef params, const Matrix& in, const Matrix& grad_out,
                const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                Matrix& grad_in) const final;
  absl::Status Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                       RowVector& logdet) const final;
  absl::Status InverseWithCache(ConstVectorRef params, const Matrix& out, Matrix& in,
                                RowVector& logdet, LayerCache* cache) const final;

 protected:
  int d_a() const { return dim_ / 2; }
  int d_b() const { return dim_ - dim_ / 2; }

  // y_b = g(x_b; θ) and its log-derivatives into logdet. Shapes: θ (k·d_b) x N, x_b and y_b
  // d_b x N.
  virtual void TransformForward(const Matrix& theta, const ConstBatchRef& x_b, BatchRef y_b,
                                LogDetAccumulator& logdet, CouplingCache& cache) const = 0;
  // After TransformForward with the same cache: given dL/dy_b and dL/dlogdet, writes dL/dθ into
  // cache.g_theta and dL/dx_b into g_x_b.
  virtual void TransformBackward(const Matrix& theta, const ConstBatchRef& x_b,
                                 const ConstBatchRef& g_y, const RowVector& dlogdet,
                                 CouplingCache& cache, BatchRef g_x_b) const = 0;
  // x_b = g^{-1}(y_b; θ), and logdet += Σ_i log g'(x_b,i) per column. REQUIRES: finite y_b.
  // `scratch`: a cache of this batch size whose aux matrices the inverse may overwrite, or
  // nullptr (then it allocates its own).
  virtual void TransformInverse(const Matrix& theta, const ConstBatchRef& y_b, BatchRef x_b,
                                RowVector& logdet, CouplingCache* scratch) const = 0;
  // Lets a subclass reshape the aux matrices of a new cache (made with num_aux d_b x n ones).
  virtual void ShapeAux(CouplingCache& /*cache*/, int /*n*/) const {}

 private:
  int dim_;
  Mlp mlp_;
  int num_aux_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_COUPLING_H_
