// Diagnostics of a fitted flow against its target: whether the approximation can be trusted.
//
// From S fresh draws z_s ~ q with log-ratios r_s = log p~(z_s) − log q(z_s):
//   ELBO = mean r ± its Monte Carlo standard error; PSIS k̂ (Yao et al. 2018): < 0.5 good,
//   0.5–0.7 usable with care, > 0.7 unreliable; importance-sampling ESS of the smoothed
//   weights; log Ẑ = log mean exp(r) ± SE; per-dimension mean and sd, raw and PSIS-weighted
//   (of the draws mapped by DiagnosticsOptions::to_user_space when it is set).
#ifndef FLOWVI_ENGINE_DIAGNOSTICS_DIAGNOSTICS_H_
#define FLOWVI_ENGINE_DIAGNOSTICS_DIAGNOSTICS_H_

#include <cstdint>
#include <functional>
#include <optional>

#include "absl/status/statusor.h"
#include "engine/core/types.h"
#include "engine/flows/flow.h"
#include "engine/targets/target.h"

namespace flowvi {

struct Diagnostics {
  int64_t num_draws = 0;
  double elbo = 0;
  double elbo_se = 0;
  double k_hat = 0;
  double ess = 0;  // of the PSIS-smoothed weights, out of num_draws
  double log_z = 0;
  double log_z_se = 0;
  // log Z − ELBO when the target's log Z is known (KL(q ‖ p)), else empty.
  std::optional<double> kl;
  Vector mean, sd;            // of q, per dimension
  Vector psis_mean, psis_sd;  // importance-weighted (PSIS), estimates for p
};

struct DiagnosticsOptions {
  // Draws from q. PSIS wants thousands; the estimates' error shrinks as 1/sqrt(S).
  int64_t num_draws = 20000;
  uint64_t seed = 1;
  // Draws are made this many at a time, bounding memory.
  int chunk_size = 4096;
  // Maps draws (D x n) to the space whose moments are reported, e.g. a program's declared,
  // constrained parameters; empty: the flow's own space. Must keep the dimension.
  std::function<void(const Matrix&, Matrix*)> to_user_space;
};

// InvalidArgument if the dimensions differ or num_draws < 100; FailedPrecondition if a draw's
// log q or log p~ is NaN.
absl::StatusOr<Diagnostics> ComputeDiagnostics(const Flow& flow, Target& target,
                                               const DiagnosticsOptions& options = {});

}  // namespace flowvi

#endif  // FLOWVI_ENGINE_DIAGNOSTICS_DIAGNOSTICS_H_
