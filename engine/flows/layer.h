// Layer: one invertible transformation of a flow, evaluated a whole D x N batch at a time.
//
// A layer owns no parameters: they live in the flow's flat parameter vector and each call gets
// the layer's slice. What a Forward pass must keep for its Backward pass lives in a LayerCache
// that the flow allocates once per batch size (NewCache), so the training step allocates
// nothing. Constraints that keep a layer invertible are part of its parameterization: every
// parameter vector is a valid layer.
//
// Thread-safety: a Layer is immutable after construction and may be shared between threads;
// a LayerCache belongs to one thread.
#ifndef FLOWVI_ENGINE_FLOWS_LAYER_H_
#define FLOWVI_ENGINE_FLOWS_LAYER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/core/rng.h"
#include "engine/core/types.h"

namespace flowvi {

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

  // Writes the initial parameters into `params` (size num_params()).
  virtual void InitParams(Rng& rng, VectorRef params) const = 0;

  // Scratch for batches of n columns (nullptr if none is needed).
  virtual std::unique_ptr<LayerCache> NewCache(int /*n*/) const { return nullptr; }

  // out = f(in); logdet += log|det df/din| per column. `cache` is what NewCache(in.cols())
  // returned. REQUIRES: out and logdet have the right shape; out is not `in`.
  virtual void Forward(ConstVectorRef params, const Matrix& in, Matrix& out, RowVector& logdet,
                       LayerCache* cache) const = 0;

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
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_LAYER_H_
