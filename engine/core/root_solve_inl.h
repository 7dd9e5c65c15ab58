// Implementation of SolveMonotone (a template, so it is inlined into each layer's loop).
#ifndef FLOWVI_ENGINE_CORE_ROOT_SOLVE_INL_H_
#define FLOWVI_ENGINE_CORE_ROOT_SOLVE_INL_H_

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace flowvi {

template <typename FDF>
std::optional<double> SolveMonotone(FDF fdf, double lo, double hi, int max_iter) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) return std::nullopt;
  double f_lo = 0, f_hi = 0, d = 0;
  fdf(lo, &f_lo, &d);
  fdf(hi, &f_hi, &d);
  if (!std::isfinite(f_lo) || !std::isfinite(f_hi)) return std::nullopt;
  constexpr double kEps = std::numeric_limits<double>::epsilon();
  // A root at an end of the bracket can come out of f's rounding with the wrong sign (e.g. the
  // planar inverse at a saturated tanh, where f(lo) is 0 up to a few ulps): within that
  // rounding, the end is the root.
  const double slack = 8 * kEps * std::max({1.0, std::abs(lo), std::abs(hi)});
  if (f_lo == 0 || (f_lo > 0 && f_lo <= slack)) return lo;
  if (f_hi == 0 || (f_hi < 0 && f_hi >= -slack)) return hi;
  if (f_lo > 0 || f_hi < 0) return std::nullopt;
  double x = 0.5 * (lo + hi);
  double step_before_last = hi - lo;
  double last_step = step_before_last;
  for (int i = 0; i < max_iter; ++i) {
    double f = 0, df = 0;
    fdf(x, &f, &df);
    if (f == 0 || !std::isfinite(f))
      return std::isfinite(f) ? std::optional<double>(x) : std::nullopt;
    if (f < 0) {
      lo = x;
    } else {
      hi = x;
    }
    const double tol = 2 * kEps * std::max(1.0, std::abs(x));
    double step = df > 0 ? f / df : hi - lo;
    const double newton = x - step;
    // Newton while it stays inside the bracket and converges at least linearly with ratio 1/2
    // over two steps; otherwise bisect, which always halves the bracket.
    if (!(df > 0) || !(newton > lo && newton < hi) ||
        std::abs(step) > 0.5 * std::abs(step_before_last)) {
      step_before_last = last_step;
      last_step = x - 0.5 * (lo + hi);
      x = 0.5 * (lo + hi);
      if (hi - lo <= tol) return x;
    } else {
      step_before_last = last_step;
      last_step = step;
      x = newton;
      if (std::abs(step) <= tol) return x;
    }
  }
  return x;
}

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_CORE_ROOT_SOLVE_INL_H_
