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
// 1 + ⌊k (D − 1) / H⌋ in every hidden layer (deterministic and non-decreasing in k, so only the
// keys are random); a hidden unit sees the inputs and units of degree ≤ its own; the outputs of
// coordinate i see the last hidden units of degree < rank(i) + 1. The first coordinate in the
// order therefore gets m and a from the biases alone. Hidden units are tanh (smooth: the
// gradient checks and the reverse-KL objective need no kinks).
//
// Computation runs in rank space: inputs and outputs permuted into the order, where with the
// sorted degrees every mask is a staircase (row i connects a prefix of the columns whose length
// grows with i), so the products skip the masked half in blocks of rows. The masks follow the
// keys, which are part of the parameters, so Prepare regathers the weights at every call:
// O(#params), negligible next to a batch.
//
// With one hidden layer and D ≤ kMaxFusedDim (the 2-D fits) Evaluate and Backpropagate take a
// fused path instead (made_fused.cc): the same function, computed group of columns by group of
// columns without the products, gathers and separate tanh pass of the general path.
//
// Thread-safety: a MadeNet is immutable after construction; a MadeCache belongs to one thread.
#ifndef FLOWVI_ENGINE_FLOWS_MADE_H_
#define FLOWVI_ENGINE_FLOWS_MADE_H_

#include <vector>

#include "engine/core/rng.h"
#include "engine/core/types.h"

namespace flowvi {

// Scratch of one MadeNet for batches of n columns, made by MadeNet::NewCache. Matrices are in
// rank space (see above).
struct MadeCache {
  std::vector<int> order;      // order[r] = the input of rank r
  std::vector<int> out_rows;   // 2D: row i of the rank-space output is row out_rows[i] of (m, a)
  std::vector<Matrix> weight;  // per layer (depth + 1): masked weights, rank space
  Vector out_bias;             // 2D: the output biases, rank space (interleaved as out)
  Matrix x;                    // D x n: the input, rank space
  std::vector<Matrix> hidden;  // per hidden layer: tanh activations, H x n
  Matrix out;                  // 2D x n: (m, a) in rank space, interleaved (m_0, a_0, m_1, ...)
  Matrix grad_out;             // 2D x n: Backpropagate's grad_out, rank space
  Vector row_sums;             // 2D: its row sums (the output biases' gradient)
  Matrix delta, delta_next;    // H x n, Backpropagate's ping-pong
  Matrix grad_x;               // D x n: dL/dx, rank space
  std::vector<Matrix> grad_w;  // per layer: dL/d(masked weights), rank space
  // The general path's matrices above (from x on) are left empty on the fused path, which uses
  // instead its values, per group of simd::kWideLanes columns one vector (a unit's value
  // in each column of the group) per unit: the inputs (D), the hidden units (H), grad_out (2D)
  // and the hidden units' deltas (H), in rank space; and per hidden unit its masked
  // weights and bias, each broadcast to a vector (made_fused.cc's UnitWeights), and the running
  // sums of its weights' gradient.
  std::vector<double> packed_x, packed_h, packed_g, packed_d, wide_weights, unit_sums;
};

class MadeNet {
 public:
  static constexpr int kMaxFusedDim = 4;

  // REQUIRES: dim, hidden, depth ≥ 1. allow_fused = false keeps every size on the general path
  // (for tests that check the fused path against it).
  MadeNet(int dim, int hidden, int depth, bool allow_fused = true);

  int dim() const { return dim_; }
  int hidden() const { return hidden_; }
  int depth() const { return depth_; }
  int num_params() const { return num_params_; }
  // The keys: the fixed (never trained) part of num_params().
  int num_fixed_params() const { return dim_; }
  // Whether Evaluate and Backpropagate take the fused path.
  bool fused() const { return fused_; }

  // Keys uniform on (0, 1); hidden weights and biases uniform on ±1/√fan_in (PyTorch's
  // nn.Linear); output weights and biases zero, so that m = a = 0 and the layer built on it
  // starts at the identity.
  void InitParams(Rng& rng, VectorRef params) const;

  MadeCache NewCache(int n) const;

  // The ordering, masks and masked weights of `params` into the cache. Call before Evaluate
  // and Backpropagate whenever params may have changed. Allocates nothing.
  void Prepare(ConstVectorRef params, MadeCache& cache) const;

  // *out = (m, a) at the columns of x (D x n, n the cache's; out 2D x n, m in the top D rows),
  // keeping the activations for Backpropagate. REQUIRES: Prepare(params, cache) since params last
  // changed; out is not x. Allocates nothing.
  void Evaluate(ConstVectorRef params, const Matrix& x, MadeCache& cache, Matrix* out) const;

  // Reverse mode after Evaluate(params, x, cache, ...): given grad_out = dL/d(m, a) (2D x n), adds
  // dL/dparams to *grad_params (if not null; the keys get exactly 0) and writes dL/dx into
  // *grad_x (if not null). Allocates nothing.
  void Backpropagate(const Matrix& grad_out, MadeCache& cache, double* grad_params,
                     Matrix* grad_x) const;

 private:
  int in_size(int layer) const { return layer == 0 ? dim_ : hidden_; }
  int out_size(int layer) const { return layer == depth_ ? 2 * dim_ : hidden_; }
  int hidden_degree(int k) const;
  static bool FusedApplies(int dim, int depth);
  void PrepareFused(ConstVectorRef params, MadeCache& cache) const;
  void EvaluateFused(const Matrix& x, MadeCache& cache, Matrix* out) const;
  void BackpropagateFused(const Matrix& grad_out, MadeCache& cache, double* grad_params,
                          Matrix* grad_x) const;

  int dim_, hidden_, depth_;
  bool fused_;
  // Staircase masks in rank space: row i of layer l's weights connects columns [0, prefix_[l][i]).
  std::vector<std::vector<int>> prefix_;
  std::vector<int> weight_offset_, bias_offset_;  // per layer (depth + 1), into the slice
  int num_params_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_MADE_H_
