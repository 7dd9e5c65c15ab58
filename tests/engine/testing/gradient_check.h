// Test utilities: central finite differences (with one Richardson step) as the independent truth
// for hand-derived gradients and Jacobians.
#ifndef FLOWVI_TESTS_ENGINE_TESTING_GRADIENT_CHECK_H_
#define FLOWVI_TESTS_ENGINE_TESTING_GRADIENT_CHECK_H_

#include <functional>

#include "engine/core/types.h"

namespace flowvi::testing {

// d f / d x at x, each coordinate by Richardson-extrapolated central differences with step h
// (relative to max(1, |x_i|)). Truncation error O(h^4).
Vector NumericGradient(const std::function<double(const Vector&)>& f, const Vector& x,
                       double h = 1e-3);

// The m x n Jacobian of f: R^n -> R^m at x, same scheme.
Eigen::MatrixXd NumericJacobian(const std::function<Vector(const Vector&)>& f, const Vector& x,
                                double h = 1e-3);

// max_i |a_i - b_i| / max(scale, |b_i|): the relative error, with `scale` guarding entries
// that are (nearly) zero.
double MaxRelativeError(const Vector& a, const Vector& b, double scale = 1.0);

}  // namespace flowvi::testing

#endif  // FLOWVI_TESTS_ENGINE_TESTING_GRADIENT_CHECK_H_
