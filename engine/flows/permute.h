// Permutation layer (`permute`): y_i = x_{π(i)} for a fixed random permutation π, log|det| = 0.
// NICE-perm's mixing between coupling layers.
//
// π is fixed structure stored in the parameter slice (see layer.h): D keys drawn uniform on
// (0, 1) by InitParams, π = their argsort (ties broken by index), so every parameter vector is a
// valid permutation. Backward adds exactly zero gradient to the keys, so training never moves
// them. The cache keeps π and the keys it was computed from, so the argsort runs once per cache
// (not per step) and never allocates.
#ifndef FLOWVI_ENGINE_FLOWS_PERMUTE_H_
#define FLOWVI_ENGINE_FLOWS_PERMUTE_H_

#include <vector>

#include "engine/flows/layer.h"

namespace flowvi {

// π = argsort(keys) into *perm (size keys.size(); no allocation when it has that size).
void ArgsortKeys(ConstVectorRef keys, std::vector<int>* perm);

class PermuteLayer final : public Layer {
 public:
  explicit PermuteLayer(int dim) : dim_(dim) {}

  absl::string_view type() const override { return "permute"; }
  int dim() const override { return dim_; }
  int num_params() const override { return dim_; }
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
  absl::Status InverseWithCache(ConstVectorRef params, const Matrix& out, Matrix& in,
                                RowVector& logdet, LayerCache* cache) const override;

 private:
  int dim_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_PERMUTE_H_
