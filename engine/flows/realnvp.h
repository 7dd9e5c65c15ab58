// RealNVP affine coupling layer (Dinh et al. 2017): y_b = x_b ⊙ exp(s) + t with (t, r) from
// the conditioner MLP and the log-scale bounded, s = c·tanh(r/c), so |s| < c whatever the
// network outputs: one layer can scale by at most e^c and exp(s) can neither overflow nor
// vanish. log|det| = Σ_i s_i. Conditioner rows: t (d_b), then r (d_b); see coupling.h for the
// split, the alternation of halves and the parameters.
#ifndef FLOWVI_ENGINE_FLOWS_REALNVP_H_
#define FLOWVI_ENGINE_FLOWS_REALNVP_H_

#include "engine/flows/coupling.h"

namespace flowvi {

class RealNvpLayer final : public CouplingLayer {
 public:
  // REQUIRES: scale_bound > 0 and finite (the catalog's factory checks).
  RealNvpLayer(int dim, const CouplingOptions& options, double scale_bound)
      : CouplingLayer(dim, 2, 2, options), bound_(scale_bound) {}
  absl::string_view type() const override { return "realnvp"; }

 private:
  void TransformForward(const Matrix& theta, const ConstBatchRef& x_b, BatchRef y_b,
                        LogDetAccumulator& logdet, CouplingCache& cache) const override;
  void TransformBackward(const Matrix& theta, const ConstBatchRef& x_b, const ConstBatchRef& g_y,
                         const RowVector& dlogdet, CouplingCache& cache,
                         BatchRef g_x_b) const override;
  void TransformInverse(const Matrix& theta, const ConstBatchRef& y_b, BatchRef x_b,
                        RowVector& logdet, CouplingCache* scratch) const override;

  double bound_;  // c
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_REALNVP_H_
