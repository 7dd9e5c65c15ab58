#include "tests/engine/testing/gradient_check.h"

#include <algorithm>
#include <cmath>

namespace flowvi::testing {
namespace {

// Richardson extrapolation of two central differences (steps h and h/2) for one coordinate.
template <typename F, typename T>
T Derivative(const F& f, const Vector& x, Eigen::Index i, double h) {
  const double step = h * std::max(1.0, std::abs(x[i]));
  auto central = [&](double s) {
    Vector xp = x, xm = x;
    xp[i] += s;
    xm[i] -= s;
    return T((f(xp) - f(xm)) / (2 * s));
  };
  const T d1 = central(step);
  const T d2 = central(step / 2);
  return T((4 * d2 - d1) / 3);
}

}  // namespace

Vector NumericGradient(const std::function<double(const Vector&)>& f, const Vector& x, double h) {
  Vector g(x.size());
  for (Eigen::Index i = 0; i < x.size(); ++i) g[i] = Derivative<decltype(f), double>(f, x, i, h);
  return g;
}

Eigen::MatrixXd NumericJacobian(const std::function<Vector(const Vector&)>& f, const Vector& x,
                                double h) {
  const Vector f0 = f(x);
  Eigen::MatrixXd jac(f0.size(), x.size());
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    jac.col(i) = Derivative<decltype(f), Vector>(f, x, i, h);
  }
  return jac;
}

double MaxRelativeError(const Vector& a, const Vector& b, double scale) {
  double worst = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(scale, std::abs(b[i])));
  }
  return worst;
}

}  // namespace flowvi::testing
