// Layer: one invertible transformation of a flow, evaluated a whole D x N batch at a time.
//
// A layer owns no parameters: they live in the flow's flat parameter vector and each call gets
// the layer's slice. What a Forward pass must keep for its Backward pass lives in a LayerCache
// that the flow allocates once per batch size (NewCache), so the training step allocates
// nothing. Constraints that keep a layer invertible are part of its parameterization: every
// parameter vector is a valid layer.
//
// Fixed random structure (a permutation, a MADE input ordering, an orthogonal mixing matrix) is
// stored in the layer's parameter slice too, drawn by InitParams, and Backward adds exactly zero
// gradient for it. Adam and RMSprop (engine/fit/optimizer.cc) never move a parameter whose
// gradient is always zero (both moments stay 0, so the step is 0 / (0 + ε) = 0), so the
// structure is saved, checkpointed, restored and serialized with everything else. It is encoded
// so that any values are valid: a permutation is the argsort of stored keys (key_order.h), an
// orthogonal matrix a product of Householder reflections of stored vectors. They are the first
// num_fixed_params() entries of the slice, so that counts shown to users can separate them from
// trainable ones.
//
// Log-determinants are accumulated in a LogDetAccumulator, which lets a layer multiply in
// 1/|det| (which its backward pass needs anyway) instead of taking a log per sample.
//
// Thread-safety: a Layer is immutable after construction and may be shared between threads;
// a LayerCache and a LogDetAccumulator belong to one thread.
#ifndef FLOWVI_ENGINE_FLOWS_LAYER_H_
#define FLOWVI_ENGINE_FLOWS_LAYER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/core/rng.h"
#include "engine/core/types.h"

namespace flowvi {

// Σ_k log|det ∂f_k/∂z| of each column of a batch, over the layers of a flow, kept as
//
//   log_sum + constant − log(inv_det_product)
//
// A layer either adds its log|det| to log_sum() (or a column-independent one with AddConstant),
// or, after ReserveProduct, multiplies its 1/|det| into inv_det_product(): one multiplication
// per sample instead of one log. Flow takes the log of the product once per forward pass.
//
// Exactness: ReserveProduct folds the product into log_sum (one log per column) before it could
// leave the range of normal doubles [2^-kMaxProductLog2, 2^kMaxProductLog2], so a product of k
// factors only carries the rounding error of k multiplications, i.e. an absolute error of at
// most ~k·2^-53 in the sum of logs (the same order as the k rounded logs it replaces).
class LogDetAccumulator {
 public:
  static constexpr double kMaxProductLog2 = 960;

  // For batches of n columns; allocates. Starts at zero (Reset). With allow_products = false,
  // ReserveProduct always refuses, so every layer takes logs: the reference that the product
  // path is tested against.
  explicit LogDetAccumulator(int n = 0, bool allow_products = true);

  int size() const { return static_cast<int>(log_sum_.cols()); }
  // Zero for every column: no allocation.
  void Reset();

  RowVector& log_sum() { return log_sum_; }
  const RowVector& log_sum() const { return log_sum_; }
  void AddConstant(double c) { constant_ += c; }

  // Announces that the caller will multiply into inv_det_product() one factor 1/|det| per
  // column with |log2 |det|| ≤ max_abs_log2_det for every column. Returns false when that bound
  // is not finite or larger than kMaxProductLog2 (the caller must then add logs instead);
  // otherwise folds the product into log_sum first if it could leave the range.
  bool ReserveProduct(double max_abs_log2_det);
  RowVector& inv_det_product() { return inv_det_product_; }

  // Folds the product and the constant into log_sum, which then holds the whole sum.
  void Fold();

 private:
  RowVector log_sum_;
  RowVector inv_det_product_;
  double constant_ = 0;
  double product_log2_bound_ = 0;  // |log2 inv_det_product| ≤ this for every column
  bool product_used_ = false;      // inv_det_product may differ from 1
  bool allow_products_ = true;
};

// Per-batch scratch of one layer. Layers that need none return nullptr from NewCache.
class LayerCache {
 public:
  virtual ~LayerCache() = default;
};

class Layer {
 public:
  virtual ~Layer() = default;

  // The spec token that names this layer type ("planar", "radial").
  virtual absl::string_view type() const = 0;
  // Dimension D of the space it acts on.
  virtual int dim() const = 0;
  virtual int num_params() const = 0;
  // How many of num_params() are fixed structure (never trained, zero gradient; see above).
  virtual int num_fixed_params() const { return 0; }

  // Writes the initial parameters into `params` (size num_params()).
  virtual void InitParams(Rng& rng, VectorRef params) const = 0;

  // Scratch for batches of n columns (nullptr if none is needed).
  virtual std::unique_ptr<LayerCache> NewCache(int /*n*/) const { return nullptr; }
  // About how many doubles per batch column NewCache(n) holds (an upper bound for the default:
  // a few rows), so that a caller can bound a fit's memory before building anything.
  virtual int64_t cache_doubles_per_column() const { return 4; }

  // out = f(in), and log|det df/din| of each column into `logdet`: added to log_sum() (or,
  // when the same for every column, to AddConstant), or, if logdet.ReserveProduct(bound)
  // accepts a bound on |log2 |det||, 1/|det| multiplied into inv_det_product(). `cache` is what
  // NewCache(in.cols()) returned. REQUIRES: out has the shape of in and is not `in`;
  // logdet.size() == in.cols().
  virtual void Forward(ConstVectorRef params, const Matrix& in, Matrix& out,
                       LogDetAccumulator& logdet, LayerCache* cache) const = 0;

  // The same with logdet += log|det df/din| per column. Allocates (an accumulator); the flow
  // uses the form above. Derived classes re-export it with `using Layer::Forward;`.
  void Forward(ConstVectorRef params, const Matrix& in, Matrix& out, RowVector& logdet,
               LayerCache* cache) const;

  // Reverse mode after Forward(params, in, ...) with the same cache: given grad_out = dL/dout
  // and dlogdet = dL/dlogdet (per column), adds dL/dparams to grad_params and writes
  // grad_in = dL/din. REQUIRES: grad_in has the shape of in and is not grad_out.
  virtual void Backward(ConstVectorRef params, const Matrix& in, const Matrix& grad_out,
                        const RowVector& dlogdet, LayerCache* cache, VectorRef grad_params,
                        Matrix& grad_in) const = 0;

  // in = f^{-1}(out), and logdet += log|det df/din| at that `in` (the forward log-determinant,
  // so a caller computing log q subtracts it as in the forward direction). May resize `in`.
  // Fails (InvalidArgument) only when the root solve cannot converge, e.g. on non-finite input.
  virtual absl::Status Inverse(ConstVectorRef params, const Matrix& out, Matrix& in,
                               RowVector& logdet) const = 0;

  // The same using scratch from NewCache(out.cols()) (`cache`, possibly nullptr for layers that
  // need none), so that a caller inverting many batches of one size — sampling a density model,
  // which runs the flow backwards — allocates nothing once `in` has the shape of `out`. The
  // default ignores the cache and calls Inverse; layers whose Inverse allocates override it.
  virtual absl::Status InverseWithCache(ConstVectorRef params, const Matrix& out, Matrix& in,
                                        RowVector& logdet, LayerCache* /*cache*/) const {
    return Inverse(params, out, in, logdet);
  }
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_LAYER_H_
