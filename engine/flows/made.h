// MadeNet: the MADE conditioner (Germain et al. 2015) of the autoregressive layers (maf, iaf):
// a masked MLP R^D -> R^D x R^D, x -> (m, a), whose outputs for coordinate i depend only on the
// coordinates that come before i in an input ordering, so that the layer built on it has a
// triangular Jacobian.
//
// Parameters (a slice of the owning layer's), in order:
//   keys (D)                     the input ordering: their argsort (key_order.h). Fixed
//                                structure: Backpropagate gives them exactly zero gradient
//   W_l (H x in_l), b_l (H)      hidden layer l = 0..depth−1, column-major; in_0 = D, else H
//   W_o (2D x H), b_o (2D)       output: rows 0..D−1 are m, rows D..2D−1 are a
// Degrees (MADE's masks): input i has degree rank(i) + 1 ∈ [1, D]; hidden unit k has degree
// 1 + k mod max(1, D − 1) in every hidden layer (deterministic, so only the keys are random);
// a hidden unit sees the inputs and units of degree ≤ its own; outputs of coordinate i see the
// last hidden units of degree < rank(i) + 1. The first coordinate in the order therefore gets
// m and a from the biases alone. Hidden units are tanh (smooth: the gradient checks and the
// reverse-KL objective need no kinks).
//
// The masks follow the keys, which are part of the parameters, so Prepare recomputes them (and
// the masked weights) at every call: O(#params), negligible next to a batch.
//
// Thread-safety: a MadeNet is immutable after construction; a MadeCache belongs to one thread.
#ifndef FLOWVI_ENGINE_FLOWS_MADE_H_
#define FLOWVI_ENGINE_FLOWS_MADE_H_

#include <vector>

#include "engine/core/rng.h"
#include "engine/core/types.h"

namespace flowvi {

// tanh of n doubles (in may equal out), vectorized (engine/core/simd.h), within a few ulp.
void TanhArray(const double* in, int n, double* out);

// Scratch of one MadeNet for batches of n columns, made by MadeNet::NewCache.
struct MadeCache {
  std::vector<int> order,
      rank;                    // the input ordering: order[r] = input of rank r, rank[order[r]] = r
  std::vector<Matrix> mask;    // per layer (depth + 1): 1 where a weight is connected, else 0
  std::vector<Matrix> weight;  // per layer: W ⊙ mask
  std::vector<Matrix> hidden;  // per hidden layer: tanh activations, H x n
  Matrix out;                  // 2D x n: m (top D rows) and a (bottom D rows)
  Matrix delta, delta_next;    // H x n, Backpropagate's ping-pong
  std::vector<Matrix> grad_w;  // per layer: dL/d(W ⊙ mask) before masking
};

class MadeNet {
 public:
  // REQUIRES: dim, hidden, depth ≥ 1.
  MadeNet(int dim, int hidden, int depth);

  int dim() const { return dim_; }
  int hidden() const { return hidden_; }
  int depth() const { return depth_; }
  int num_params() const { return num_params_; }
  // The keys: the fixed (never trained) part of num_params().
  int num_fixed_params() const { return dim_; }

  // Keys uniform on (0, 1); hidden weights and biases uniform on ±1/√fan_in (PyTorch's
  // nn.Linear); output weights and biases zero, so that m = a = 0 and the layer built on it
  // starts at the identity.
  void InitParams(Rng& rng, VectorRef params) const;

  MadeCache NewCache(int n) const;

  // The ordering, masks and masked weights of `params` into the cache. Call before Evaluate
  // and Backpropagate whenever params may have changed. Allocates nothing.
  void Prepare(ConstVectorRef params, MadeCache& cache) const;

  // cache.out = (m, a) at the columns of x (D x n), keeping the activations for Backpropagate.
  // REQUIRES: Prepare(params, cache) since params last changed. Allocates nothing.
  void Evaluate(ConstVectorRef params, const Matrix& x, MadeCache& cache) const;

  // Reverse mode after Evaluate(params, x, cache): given grad_out = dL/d(m, a) (2D x n), adds
  // dL/dparams to *grad_params (if not null; the keys get exactly 0) and writes dL/dx into
  // *grad_x (if not null). Allocates nothing.
  void Backpropagate(ConstVectorRef params, const Matrix& x, const Matrix& grad_out,
                     MadeCache& cache, double* grad_params, Matrix* grad_x) const;

 private:
  int in_size(int layer) const { return layer == 0 ? dim_ : hidden_; }
  int out_size(int layer) const { return layer == depth_ ? 2 * dim_ : hidden_; }
  int hidden_degree(int k) const;

  int dim_, hidden_, depth_;
  std::vector<int> weight_offset_, bias_offset_;  // per layer (depth + 1), into the slice
  int num_params_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_MADE_H_
