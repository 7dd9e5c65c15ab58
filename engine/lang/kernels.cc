#include "engine/lang/kernels.h"

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <numbers>

namespace flowvi::lang {
namespace {

using Arr = Eigen::ArrayXd;
using CMap = Eigen::Map<const Arr>;
using MMap = Eigen::Map<Arr>;

constexpr double kPi = std::numbers::pi;
constexpr double kHalfLog2Pi = 0.91893853320467274178;  // log(sqrt(2 pi))
constexpr double kLogPi = 1.1447298858494002;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// log(1 + exp(x)) and 1 / (1 + exp(-x)), elementwise and stable.
template <class X>
auto Softplus(const X& x) {
  return x.max(0.0) + (-x.abs()).exp().log1p();
}

// Stirling's series for log Gamma(x), x >= 10 (error below 1e-17 there).
double StirlingLogGamma(double x) {
  const double r = 1.0 / x;
  const double r2 = r * r;
  const double series =
      r *
      (1.0 / 12 +
       r2 * (-1.0 / 360 +
             r2 * (1.0 / 1260 + r2 * (-1.0 / 1680 + r2 * (1.0 / 1188 + r2 * (-691.0 / 360360 +
                                                                             r2 * (1.0 / 156)))))));
  return (x - 0.5) * std::log(x) - x + kHalfLog2Pi + series;
}

// Asymptotic series for digamma(x), x >= 10.
double AsymptoticDigamma(double x) {
  const double r = 1.0 / x;
  const double r2 = r * r;
  const double series =
      r2 * (1.0 / 12 -
            r2 * (1.0 / 120 -
                  r2 * (1.0 / 252 -
                        r2 * (1.0 / 240 - r2 * (1.0 / 132 - r2 * (691.0 / 32760 - r2 / 12))))));
  return std::log(x) - 0.5 * r - series;
}

template <class F>
void Elementwise(int n, const double* x, double* y, F f) {
  for (int j = 0; j < n; ++j) y[j] = f(x[j]);
}

}  // namespace

double LogGamma(double x) {
  if (std::isnan(x)) return x;
  if (x == kInf) return kInf;
  if (x <= 0) {
    if (x == std::floor(x)) return kInf;  // poles (and -inf)
    // Reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x).
    return std::log(kPi / std::abs(std::sin(kPi * x))) - LogGamma(1 - x);
  }
  if (x >= 10) return StirlingLogGamma(x);
  // Gamma(x) = Gamma(x + k) / (x (x + 1) ... (x + k - 1)).
  double prod = 1;
  double z = x;
  while (z < 10) {
    prod *= z;
    z += 1;
  }
  return StirlingLogGamma(z) - std::log(prod);
}

double Digamma(double x) {
  if (std::isnan(x)) return x;
  if (x == kInf) return kInf;
  if (x <= 0) {
    if (x == std::floor(x)) return kNaN;
    // Reflection: psi(1 - x) - psi(x) = pi cot(pi x).
    return Digamma(1 - x) - kPi / std::tan(kPi * x);
  }
  double acc = 0;
  double z = x;
  while (z < 10) {
    acc -= 1.0 / z;
    z += 1;
  }
  return acc + AsymptoticDigamma(z);
}

void UnaryKernel(UnaryOp op, int n, const double* x, double* y, double* dydx) {
  const CMap X(x, n);
  MMap Y(y, n);
  const bool d = dydx != nullptr;
  MMap D(d ? dydx : y, n);  // only written when d
  switch (op) {
    case UnaryOp::kNeg:
      Y = -X;
      if (d) D.setConstant(-1.0);
      return;
    case UnaryOp::kExp:
      Y = X.exp();
      if (d) D = Y;
      return;
    case UnaryOp::kLog:
      Y = X.log();
      if (d) D = X.inverse();
      return;
    case UnaryOp::kLog1p:
      Y = X.log1p();
      if (d) D = (1.0 + X).inverse();
      return;
    case UnaryOp::kExpm1:
      Y = X.expm1();
      if (d) D = Y + 1.0;
      return;
    case UnaryOp::kSqrt:
      Y = X.sqrt();
      if (d) D = 0.5 / Y;
      return;
    case UnaryOp::kSquare:
      Y = X.square();
      if (d) D = 2.0 * X;
      return;
    case UnaryOp::kAbs:
      Y = X.abs();
      if (d) D = X.sign();
      return;
    case UnaryOp::kSin:
      Y = X.sin();
      if (d) D = X.cos();
      return;
    case UnaryOp::kCos:
      Y = X.cos();
      if (d) D = -X.sin();
      return;
    case UnaryOp::kTanh:
      Y = X.tanh();
      if (d) D = 1.0 - Y.square();
      return;
    case UnaryOp::kInvLogit:
      Y = X.logistic();
      if (d) D = Y * (1.0 - Y);
      return;
    case UnaryOp::kLogit:
      Y = X.log() - (-X).log1p();
      if (d) D = (X * (1.0 - X)).inverse();
      return;
    case UnaryOp::kLog1m:
      Y = (-X).log1p();
      if (d) D = -(1.0 - X).inverse();
      return;
    case UnaryOp::kLogInvLogit:
      Y = -Softplus(-X);
      if (d) D = (-X).logistic();
      return;
    case UnaryOp::kLog1mInvLogit:
      Y = -Softplus(X);
      if (d) D = -X.logistic();
      return;
    case UnaryOp::kInv:
      Y = X.inverse();
      if (d) D = -Y.square();
      return;
    case UnaryOp::kLgamma:
      Elementwise(n, x, y, LogGamma);
      if (d) Elementwise(n, x, dydx, Digamma);
      return;
  }
}

namespace {

template <class A, class B>
void BinaryImpl(BinaryOp op, int n, const A& a, const B& b, double* out, double* da, double* db) {
  MMap O(out, n);
  switch (op) {
    case BinaryOp::kAdd:
      O = a + b;
      if (da != nullptr) MMap(da, n).setOnes();
      if (db != nullptr) MMap(db, n).setOnes();
      return;
    case BinaryOp::kSub:
      O = a - b;
      if (da != nullptr) MMap(da, n).setOnes();
      if (db != nullptr) MMap(db, n).setConstant(-1.0);
      return;
    case BinaryOp::kMul:
      O = a * b;
      if (da != nullptr) MMap(da, n) = b;
      if (db != nullptr) MMap(db, n) = a;
      return;
    case BinaryOp::kDiv:
      O = a / b;
      if (da != nullptr) MMap(da, n) = b.inverse();
      if (db != nullptr) MMap(db, n) = -O / b;
      return;
    case BinaryOp::kPow:
      O = a.pow(b);
      if (da != nullptr) MMap(da, n) = b * a.pow(b - 1.0);
      if (db != nullptr) MMap(db, n) = (O == 0.0).select(0.0, O * a.log());
      return;
    case BinaryOp::kLogSumExp:
      // max(a, b) + log1p(exp(-|a - b|)); both -inf gives -inf.
      O = (a.max(b) == -kInf).select(-kInf, a.max(b) + (-(a - b).abs()).exp().log1p());
      if (da != nullptr) MMap(da, n) = (a - O).exp();
      if (db != nullptr) MMap(db, n) = (b - O).exp();
      return;
  }
}

}  // namespace

void BinaryKernel(BinaryOp op, int n, const double* a, bool a_scalar, const double* b,
                  bool b_scalar, double* out, double* da, double* db) {
  if (a_scalar && b_scalar) {
    BinaryImpl(op, n, Arr::Constant(n, a[0]), Arr::Constant(n, b[0]), out, da, db);
  } else if (a_scalar) {
    BinaryImpl(op, n, Arr::Constant(n, a[0]), CMap(b, n), out, da, db);
  } else if (b_scalar) {
    BinaryImpl(op, n, CMap(a, n), Arr::Constant(n, b[0]), out, da, db);
  } else {
    BinaryImpl(op, n, CMap(a, n), CMap(b, n), out, da, db);
  }
}

void DistKernel(Dist d, int n, const double* const* x, double* lp, double* const* dx,
                double* scratch) {
  MMap LP(lp, n);
  MMap T0(scratch, n), T1(scratch + n, n), T2(scratch + 2 * n, n);
  auto arg = [&](int k) { return CMap(x[k], n); };
  auto has = [&](int k) { return dx[k] != nullptr; };
  auto out = [&](int k) { return MMap(dx[k], n); };
  switch (d) {
    case Dist::kNormal: {
      const CMap y = arg(0), mu = arg(1), sigma = arg(2);
      T0 = sigma.inverse();
      T1 = (y - mu) * T0;  // z
      LP += -0.5 * T1.square() + T0.log() - kHalfLog2Pi;
      if (has(0)) out(0) = -T1 * T0;
      if (has(1)) out(1) = T1 * T0;
      if (has(2)) out(2) = (T1.square() - 1.0) * T0;
      return;
    }
    case Dist::kStdNormal: {
      const CMap y = arg(0);
      LP += -0.5 * y.square() - kHalfLog2Pi;
      if (has(0)) out(0) = -y;
      return;
    }
    case Dist::kStudentT: {
      const CMap y = arg(0), nu = arg(1), mu = arg(2), sigma = arg(3);
      T0 = (y - mu) / sigma;         // z
      T1 = T0.square() / nu;         // t = z^2 / nu
      for (int j = 0; j < n; ++j) {  // T2 = lgamma((nu + 1) / 2) - lgamma(nu / 2)
        T2[j] = LogGamma(0.5 * (nu[j] + 1)) - LogGamma(0.5 * nu[j]);
      }
      LP += T2 - 0.5 * nu.log() - 0.5 * kLogPi - sigma.log() - 0.5 * (nu + 1.0) * T1.log1p();
      if (has(0) || has(2)) {
        T2 = -(nu + 1.0) * T0 / (sigma * (nu + T0.square()));  // d/dy
        if (has(0)) out(0) = T2;
        if (has(2)) out(2) = -T2;
      }
      if (has(3)) out(3) = (-1.0 + (nu + 1.0) * T0.square() / (nu + T0.square())) / sigma;
      if (has(1)) {
        MMap dnu = out(1);
        for (int j = 0; j < n; ++j) {
          dnu[j] = 0.5 * (Digamma(0.5 * (nu[j] + 1)) - Digamma(0.5 * nu[j])) - 0.5 / nu[j];
        }
        dnu += -0.5 * T1.log1p() + (nu + 1.0) * T1 / (2.0 * nu * (1.0 + T1));
      }
      return;
    }
    case Dist::kCauchy: {
      const CMap y = arg(0), mu = arg(1), sigma = arg(2);
      T0 = (y - mu) / sigma;  // z
      T1 = 1.0 + T0.square();
      LP += -kLogPi - sigma.log() - T1.log();
      if (has(0) || has(1)) {
        T2 = -2.0 * T0 / (sigma * T1);
        if (has(0)) out(0) = T2;
        if (has(1)) out(1) = -T2;
      }
      if (has(2)) out(2) = (T0.square() - 1.0) / (sigma * T1);
      return;
    }
    case Dist::kExponential: {
      const CMap y = arg(0), beta = arg(1);
      LP += beta.log() - beta * y;
      if (has(0)) out(0) = -beta;
      if (has(1)) out(1) = beta.inverse() - y;
      return;
    }
    case Dist::kGamma: {
      const CMap y = arg(0), a = arg(1), b = arg(2);
      for (int j = 0; j < n; ++j) T0[j] = LogGamma(a[j]);
      T1 = y.log();
      LP += a * b.log() - T0 + (a - 1.0) * T1 - b * y;
      if (has(0)) out(0) = (a - 1.0) / y - b;
      if (has(1)) {
        MMap da = out(1);
        for (int j = 0; j < n; ++j) da[j] = -Digamma(a[j]);
        da += b.log() + T1;
      }
      if (has(2)) out(2) = a / b - y;
      return;
    }
    case Dist::kLognormal: {
      const CMap y = arg(0), mu = arg(1), sigma = arg(2);
      T0 = y.log();
      T2 = sigma.inverse();
      T1 = (T0 - mu) * T2;  // z
      LP += -0.5 * T1.square() + T2.log() - kHalfLog2Pi - T0;
      if (has(0)) out(0) = -(T1 * T2 + 1.0) / y;
      if (has(1)) out(1) = T1 * T2;
      if (has(2)) out(2) = (T1.square() - 1.0) * T2;
      return;
    }
    case Dist::kBeta: {
      const CMap y = arg(0), a = arg(1), b = arg(2);
      for (int j = 0; j < n; ++j) T0[j] = LogGamma(a[j] + b[j]) - LogGamma(a[j]) - LogGamma(b[j]);
      T1 = y.log();
      T2 = (-y).log1p();
      LP += T0 + (a - 1.0) * T1 + (b - 1.0) * T2;
      if (has(0)) out(0) = (a - 1.0) / y - (b - 1.0) / (1.0 - y);
      if (has(1) || has(2)) {
        for (int j = 0; j < n; ++j) T0[j] = Digamma(a[j] + b[j]);
        if (has(1)) {
          MMap da = out(1);
          for (int j = 0; j < n; ++j) da[j] = -Digamma(a[j]);
          da += T1 + T0;
        }
        if (has(2)) {
          MMap db = out(2);
          for (int j = 0; j < n; ++j) db[j] = -Digamma(b[j]);
          db += T2 + T0;
        }
      }
      return;
    }
    case Dist::kUniform: {
      const CMap y = arg(0), a = arg(1), b = arg(2);
      T0 = (y >= a && y <= b).cast<double>();  // inside
      T1 = (b - a).inverse();
      LP += (T0 > 0).select(T1.log(), -kInf);
      if (has(0)) out(0).setZero();
      if (has(1)) out(1) = T0 * T1;
      if (has(2)) out(2) = -T0 * T1;
      return;
    }
    case Dist::kBernoulli: {
      const CMap k = arg(0), theta = arg(1);
      LP += (k == 1.0).select(theta.log(), (-theta).log1p());
      if (has(1)) out(1) = (k == 1.0).select(theta.inverse(), -(1.0 - theta).inverse());
      return;
    }
    case Dist::kBernoulliLogit: {
      const CMap k = arg(0), alpha = arg(1);
      LP += k * alpha - Softplus(alpha);
      if (has(1)) out(1) = k - alpha.logistic();
      return;
    }
    case Dist::kBinomial: {
      const CMap k = arg(0), trials = arg(1), theta = arg(2);
      T0 = trials - k;  // failures
      LP += (k > 0).select(k * theta.log(), 0.0) + (T0 > 0).select(T0 * (-theta).log1p(), 0.0);
      if (has(2)) {
        out(2) = (k > 0).select(k / theta, 0.0) - (T0 > 0).select(T0 / (1.0 - theta), 0.0);
      }
      return;
    }
    case Dist::kBinomialLogit: {
      const CMap k = arg(0), trials = arg(1), alpha = arg(2);
      LP += k * alpha - trials * Softplus(alpha);
      if (has(2)) out(2) = k - trials * alpha.logistic();
      return;
    }
    case Dist::kPoisson: {
      const CMap k = arg(0), lambda = arg(1);
      LP += (k > 0).select(k * lambda.log(), 0.0) - lambda;
      if (has(1)) out(1) = (k > 0).select(k / lambda, 0.0) - 1.0;
      return;
    }
    case Dist::kPoissonLog: {
      const CMap k = arg(0), alpha = arg(1);
      LP += k * alpha - alpha.exp();
      if (has(1)) out(1) = k - alpha.exp();
      return;
    }
  }
}

double DiscreteConstant(Dist d, int n, const double* const* x) {
  double sum = 0;
  switch (d) {
    case Dist::kBinomial:
    case Dist::kBinomialLogit:
      for (int j = 0; j < n; ++j) {
        const double k = x[0][j], trials = x[1][j];
        sum += LogGamma(trials + 1) - LogGamma(k + 1) - LogGamma(trials - k + 1);
      }
      return sum;
    case Dist::kPoisson:
    case Dist::kPoissonLog:
      for (int j = 0; j < n; ++j) sum -= LogGamma(x[0][j] + 1);
      return sum;
    default:
      return 0;
  }
}

int MarkOutOfSupport(Support s, int n, const double* x, double* bad) {
  if (s == Support::kAny) return -1;
  const CMap X(x, n);
  bool all = true;
  switch (s) {
    case Support::kPositive:
      all = (X > 0).all();
      break;
    case Support::kNonNegative:
      all = (X >= 0).all();
      break;
    case Support::kUnit:
      all = (X >= 0 && X <= 1).all();
      break;
    case Support::kBinary:
    case Support::kAny:
      all = false;
      break;
  }
  if (all) return -1;
  int first = -1;
  for (int j = 0; j < n; ++j) {
    if (!InSupport(s, x[j])) {
      if (first < 0) first = j;
      bad[j] = 1;
    }
  }
  return first;
}

}  // namespace flowvi::lang
