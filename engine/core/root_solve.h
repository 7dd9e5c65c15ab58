// A guaranteed-convergent solver for monotone scalar equations, used by the inverses of the
// planar and radial layers (whose inverses reduce to one such equation per sample).
#ifndef FLOWVI_ENGINE_CORE_ROOT_SOLVE_H_
#define FLOWVI_ENGINE_CORE_ROOT_SOLVE_H_

#include <optional>

namespace flowvi {

// Finds x in [lo, hi] with f(x) = 0 for a non-decreasing f with f(lo) <= 0 <= f(hi), by Newton
// steps safeguarded by bisection: a Newton step that leaves the current bracket, or fails to
// shrink it fast enough, is replaced by bisection, so convergence is guaranteed. `fdf(x, &f,
// &df)` evaluates f and f'. Stops when the bracket is within a few ulps or |f| == 0. Returns
// nullopt only when the inputs are not finite or the bracket does not contain a sign change.
template <typename FDF>
std::optional<double> SolveMonotone(FDF fdf, double lo, double hi, int max_iter = 200);

}  // namespace flowvi

#include "engine/core/root_solve_inl.h"

#endif  // FLOWVI_ENGINE_CORE_ROOT_SOLVE_H_
