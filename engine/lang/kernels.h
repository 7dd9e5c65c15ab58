// The numeric kernels of the model language: elementwise functions, operators and log densities
// over rows of values, each with its partial derivatives. The tape (tape.h) runs them on rows of
// N samples; the compiler runs the same kernels to fold constants, so a value computed at compile
// time is the value the tape would have computed.
//
// All kernels allocate nothing. Inputs and outputs never alias.
#ifndef FLOWVI_ENGINE_LANG_KERNELS_H_
#define FLOWVI_ENGINE_LANG_KERNELS_H_

#include "engine/lang/builtins.h"

namespace flowvi::lang {

// log |Gamma(x)| and its derivative digamma(x), accurate to about 1e-15 (absolute near the zeros
// of log Gamma, relative elsewhere); +inf and NaN at the poles (x = 0, -1, -2, ...).
double LogGamma(double x);
double Digamma(double x);

// y = f(x) over n values; when dydx is not null, dydx = f'(x).
void UnaryKernel(UnaryOp op, int n, const double* x, double* y, double* dydx);

// out = a op b over n values; a_scalar means a[0] is used for every j (same for b). When da / db
// are not null they receive d out / d a and d out / d b (one per j, broadcast or not).
void BinaryKernel(BinaryOp op, int n, const double* a, bool a_scalar, const double* b,
                  bool b_scalar, double* out, double* da, double* db);

// Number of scratch doubles per value that DistKernel needs.
inline constexpr int kDistScratchRows = 3;

// Adds to lp[j] the log density of item j of distribution d, for j < n: x[0][j] is the variate
// and x[1..] the parameters (each an array of n values: the caller broadcasts). When dx[k] is
// not null it receives d lp_j / d x[k][j]. For the discrete distributions, the terms that depend
// on the integer arguments alone (log binomial coefficients, log n!) are left out: add
// DiscreteConstant. `scratch` holds kDistScratchRows * n doubles. Out-of-support values give
// unspecified results (the caller checks the supports); except that a uniform variate outside
// [alpha, beta] gives -inf, as in Stan.
void DistKernel(Dist d, int n, const double* const* x, double* lp, double* const* dx,
                double* scratch);

// The sum over j < n of the integer-only terms of discrete distribution d (0 for continuous).
double DiscreteConstant(Dist d, int n, const double* const* x);

// Sets bad[j] = 1 for each j < n where x[j] is outside `s`; returns the first such j, or -1.
int MarkOutOfSupport(Support s, int n, const double* x, double* bad);

}  // namespace flowvi::lang

#endif  // FLOWVI_ENGINE_LANG_KERNELS_H_
