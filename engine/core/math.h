// Small scalar helpers shared by layers and targets, in numerically stable forms.
#ifndef FLOWVI_ENGINE_CORE_MATH_H_
#define FLOWVI_ENGINE_CORE_MATH_H_

#include <cmath>

namespace flowvi {

// log(1 + exp(x)) without overflow for large x or loss of precision for very negative x.
inline double Softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

// 1 / (1 + exp(-x)), the derivative of Softplus.
inline double Sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// log(exp(a) + exp(b)).
inline double LogAddExp(double a, double b) {
  const double m = a > b ? a : b;
  if (m == -INFINITY) return -INFINITY;
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_CORE_MATH_H_
