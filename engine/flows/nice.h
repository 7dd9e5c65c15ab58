// NICE additive coupling layer (Dinh et al. 2014): y_b = x_b + m(x_a), log|det| = 0, with m the
// conditioner MLP (see coupling.h for the split, the alternation of halves and the parameters).
// Volume-preserving: pair it with a `scale` layer (NICE's final diagonal scaling) or a learnable
// base to change volumes.
#ifndef FLOWVI_ENGINE_FLOWS_NICE_H_
#define FLOWVI_ENGINE_FLOWS_NICE_H_

#include "engine/flows/coupling.h"

namespace flowvi {

class NiceLayer final : public CouplingLayer {
 public:
  NiceLayer(int dim, const CouplingOptions& options) : CouplingLayer(dim, 1, 0, options) {}
  absl::string_view type() const override { return "nice"; }

 private:
  void TransformForward(const Matrix& theta, const ConstBatchRef& x_b, BatchRef y_b,
                        LogDetAccumulator& logdet, CouplingCache& cache) const override;
  void TransformBackward(const Matrix& theta, const ConstBatchRef& x_b, const ConstBatchRef& g_y,
                         const RowVector& dlogdet, CouplingCache& cache,
                         BatchRef g_x_b) const override;
  void TransformInverse(const Matrix& theta, const ConstBatchRef& y_b, BatchRef x_b,
                        RowVector& logdet, CouplingCache* scratch) const override;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_NICE_H_
