// Pareto-smoothed importance sampling (PSIS; Vehtari, Simpson, Gelman, Yao & Gabry) and its k̂
// diagnostic, used to judge how well a fitted flow q covers the target p̃ (Yao et al. 2018).
//
// Psis follows R's loo package (version 2.5.1, psis() with r_eff = 1) step for step, including
// its tie order and the cases where it declines to fit, so that its k̂ and weights agree with
// loo's to rounding; tests/engine/psis_test.cc checks this against fixtures made by loo. The
// algorithm is written out in /work/shared/REFERENCE.md, "PSIS k̂".
//
// Thread-safety: Psis and KHatReading are pure functions of their arguments; call them from any
// number of threads.
#ifndef FLOWVI_ENGINE_DIAGNOSTICS_PSIS_H_
#define FLOWVI_ENGINE_DIAGNOSTICS_PSIS_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "engine/core/types.h"

namespace flowvi {

struct PsisResult {
  // Estimated Pareto shape of the upper tail of the importance ratios. +inf when no fit was made:
  // the tail is shorter than 5 draws (S <= 20), all tail ratios are equal, or the fit itself is
  // not finite (e.g. many ties at the cutoff), exactly where loo reports Inf.
  double k_hat = 0.0;
  // Fitted generalized Pareto scale, for ratios on the exp scale after subtracting the largest
  // log-ratio. NaN when no fit was made.
  double sigma = 0.0;
  // Number of largest draws in the tail, M = ceil(min(0.2 S, 3 sqrt(S))); set even when M < 5.
  int tail_length = 0;
  // Smoothed, truncated log-weights in input order, normalized so logsumexp(log_weights) == 0.
  // Draws with a log-ratio of -inf get -inf.
  Vector log_weights;
  // Effective sample size of the smoothed weights, 1 / sum(w^2) with sum(w) == 1.
  double ess = 0.0;
  // Plain (unsmoothed) importance estimate of log Z: logsumexp(r) - log S.
  double log_z = 0.0;
  // Delta-method standard error of log_z: sd(exp(r - max r)) / (mean(exp(r - max r)) sqrt(S)),
  // with the sample standard deviation (divisor S - 1).
  double log_z_se = 0.0;
};

// Runs PSIS on log-ratios r_s = log p̃(z_s) - log q(z_s) of draws z_s ~ q.
//
// Entries equal to -inf are allowed (draws with zero target density; loo's psis() rejects them)
// and are treated as loo's per-draw routine would treat them, except that they always keep a
// log-weight of -inf: when more than S - M entries are -inf some fall in the tail, and loo would
// give them smoothed weights.
// Returns InvalidArgument for fewer than 2 entries, any NaN or +inf (naming the first bad index),
// or all entries -inf (no draw carries weight).
absl::StatusOr<PsisResult> Psis(const Vector& log_ratios);

// The customary reading of k̂, for reports: "good" (k̂ < 0.5), "ok" (0.5 <= k̂ <= 0.7, usable with
// care), "bad" (0.7 < k̂ <= 1, estimates not reliable), "very bad" (k̂ > 1, +inf, or NaN).
std::string_view KHatReading(double k_hat);

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_DIAGNOSTICS_PSIS_H_
