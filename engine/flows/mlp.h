// Mlp: a small dense multilayer perceptron evaluated on a whole batch at once, the conditioner
// of the coupling layers (nice, realnvp, spline) and, with masks, of autoregressive layers.
//
//   a_0 = x (in x N),  a_l = act(W_l a_{l−1} + b_l) for l = 1..depth (hidden x N),
//   y = W_out a_depth + b_out (out x N)
//
// Every product runs on the whole batch (one matrix product per layer, see tiled_product.h), so
// per-sample work is element-wise only. Backward is hand-written reverse mode.
//
// An Mlp owns no parameters: like a Layer it reads a slice of a flat parameter vector, laid out
// layer by layer as W (rows x cols, column-major) then b. InitParams draws the hidden layers
// uniformly on ±√(6/(fan_in + fan_out)) (Glorot) and sets the output layer to exactly zero, so
// a coupling layer built on it starts as the identity.
//
// Masks (for MADE): Forward/Backward optionally take one 0/1 matrix per weight matrix (the shape
// of W_l); the network then uses W_l ⊙ M_l, and the gradients of masked-out weights are exactly
// zero. The masked weights are formed in the cache, so this allocates nothing either.
//
// Thread-safety: an Mlp is immutable; an MlpCache belongs to one thread. Neither allocates after
// MlpCache construction (for a fixed batch size).
#ifndef FLOWVI_ENGINE_FLOWS_MLP_H_
#define FLOWVI_ENGINE_FLOWS_MLP_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/core/rng.h"
#include "engine/core/types.h"

namespace flowvi {

enum class MlpActivation { kTanh, kRelu };

// "tanh" or "relu"; InvalidArgument otherwise, naming `owner`.
absl::StatusOr<MlpActivation> ParseMlpActivation(absl::string_view name, absl::string_view owner);

// Views of batches that may be row blocks of a larger column-major batch (no copy).
using BatchRef = Eigen::Ref<Matrix>;
using ConstBatchRef = Eigen::Ref<const Matrix>;

class Mlp;

// Per-batch activations and scratch of one Mlp (made by Mlp::NewCache).
class MlpCache {
 public:
  // The network's output y (out x N) after Forward.
  const Matrix& output() const { return out_; }

 private:
  friend class Mlp;
  std::vector<Matrix> act_;     // a_1 .. a_depth, hidden x N
  Matrix out_;                  // out x N
  Matrix delta_a_, delta_b_;    // hidden x N, backward ping-pong
  std::vector<Matrix> masked_;  // W_l ⊙ M_l (only with masks)
  std::vector<Matrix> grad_w_;  // dL/d(W_l ⊙ M_l) scratch (only with masks)
};

class Mlp {
 public:
  // REQUIRES: in, out, hidden ≥ 1; depth ≥ 0 (depth 0 is a single affine map).
  Mlp(int in, int out, int hidden, int depth, MlpActivation activation);

  int in() const { return in_; }
  int out() const { return out_; }
  int hidden() const { return hidden_; }
  int depth() const { return depth_; }
  int num_params() const { return num_params_; }

  // Doubles per batch column an MlpCache holds: activations, output, backward scratch.
  int64_t cache_doubles_per_column() const {
    return int64_t{depth_} * hidden_ + out_ + 2 * int64_t{hidden_};
  }
  // With masks = true the cache has room for masked weights.
  MlpCache NewCache(int n, bool masks = false) const;
  void InitParams(Rng& rng, VectorRef params) const;

  // y = net(x) into cache->output(). `masks`: empty, or depth + 1 matrices shaped like W_l.
  void Forward(ConstVectorRef params, const ConstBatchRef& x, MlpCache* cache,
               absl::Span<const Matrix> masks = {}) const;

  // After Forward(params, x, cache, masks): given dL/dy (out x N), adds dL/dparams into
  // grad_params and, if grad_x is non-null, ADDS dL/dx into *grad_x (in x N).
  void Backward(ConstVectorRef params, const ConstBatchRef& x, const ConstBatchRef& grad_y,
                MlpCache* cache, VectorRef grad_params, BatchRef* grad_x,
                absl::Span<const Matrix> masks = {}) const;

  // Rows x cols of weight matrix l (0..depth) and the offset of W_l and b_l in the parameters.
  int rows(int l) const { return l == depth_ ? out_ : hidden_; }
  int cols(int l) const { return l == 0 ? in_ : hidden_; }
  int weight_offset(int l) const { return offsets_[l]; }
  int bias_offset(int l) const { return offsets_[l] + rows(l) * cols(l); }

 private:
  // The weights of layer l as used: W_l, or W_l ⊙ M_l (formed in the cache by Forward).
  Eigen::Map<const Matrix> Weights(ConstVectorRef params, int l, const MlpCache& cache,
                                   absl::Span<const Matrix> masks) const;

  int in_, out_, hidden_, depth_;
  MlpActivation activation_;
  std::vector<int> offsets_;
  int num_params_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_MLP_H_
