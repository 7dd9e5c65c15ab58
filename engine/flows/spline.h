// Rational-quadratic spline coupling layer (Durkan et al. 2019, "Neural Spline Flows"):
// each transformed coordinate goes through a monotone rational-quadratic spline with K bins on
// [−B, B] and the identity outside it, its knots and inner derivatives given by the conditioner
// MLP of the other half (see coupling.h for the split, the alternation and the parameters).
//
// Per transformed coordinate, 3K − 1 conditioner outputs: K for the bin widths, K for the
// heights (each a softmax, floored at kMinBin of the interval so no bin collapses), K − 1 for the
// inner knot derivatives (kMinDerivative + softplus(r + c₀), with c₀ chosen so that r = 0 gives
// derivative 1). The derivatives at ±B are 1, so the map is C¹ across the edges into the
// identity tails, and a zero conditioner output is the identity everywhere.
//
// Edges: a point counts as inside for −B ≤ x ≤ B; at x = ±B both formulas give y = x, slope 1.
// Every division is by a bin width, a bin slope or the spline's denominator, all bounded away
// from zero by the floors, so values and gradients stay finite at, near and beyond the edges and
// at knots. Non-finite inputs pass through the identity branch (NaN stays NaN).
//
// Inverse: per coordinate, the bin is found from the height knots and ξ from the quadratic's
// root in the cancellation-free form ξ = 2c / (−b − √(b² − 4ac)).
#ifndef FLOWVI_ENGINE_FLOWS_SPLINE_H_
#define FLOWVI_ENGINE_FLOWS_SPLINE_H_

#include "engine/flows/coupling.h"

namespace flowvi {

class SplineLayer final : public CouplingLayer {
 public:
  static constexpr double kMinBin = 1e-3;         // of the interval's width, per bin
  static constexpr double kMinDerivative = 1e-3;  // at inner knots
  static constexpr int kMaxBins = 128;            // so that K·kMinBin < 1 with room to spare

  // REQUIRES: 1 ≤ bins ≤ kMaxBins, bound > 0 and finite (the catalog's factory checks).
  SplineLayer(int dim, const CouplingOptions& options, int bins, double bound);
  absl::string_view type() const override { return "spline"; }

 private:
  void ShapeAux(CouplingCache& cache, int n) const override;
  void TransformForward(const Matrix& theta, const ConstBatchRef& x_b, BatchRef y_b,
                        LogDetAccumulator& logdet, CouplingCache& cache) const override;
  void TransformBackward(const Matrix& theta, const ConstBatchRef& x_b, const ConstBatchRef& g_y,
                         const RowVector& dlogdet, CouplingCache& cache,
                         BatchRef g_x_b) const override;
  void TransformInverse(const Matrix& theta, const ConstBatchRef& y_b, BatchRef x_b,
                        RowVector& logdet, CouplingCache* scratch) const override;

  int bins_;
  double bound_;
};

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_FLOWS_SPLINE_H_
