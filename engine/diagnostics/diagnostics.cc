#include "engine/diagnostics/diagnostics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/core/rng.h"
#include "engine/diagnostics/psis.h"

namespace flowvi {

absl::StatusOr<Diagnostics> ComputeDiagnostics(const Flow& flow, Target& target,
                                               const DiagnosticsOptions& options) {
  if (flow.dim() != target.dim()) {
    return absl::InvalidArgumentError(absl::StrCat("the flow has dimension ", flow.dim(),
                                                   " but the target has dimension ", target.dim()));
  }
  if (options.num_draws < 100 || options.chunk_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("diagnostics need at least 100 draws, got ", options.num_draws));
  }
  const int64_t s_total = options.num_draws;
  const int d = flow.dim();
  Matrix draws(d, s_total);
  Vector log_ratio(s_total);
  Rng rng(options.seed);
  RowVector log_p;
  Matrix user;
  for (int64_t start = 0; start < s_total; start += options.chunk_size) {
    const int n = static_cast<int>(std::min<int64_t>(options.chunk_size, s_total - start));
    std::unique_ptr<FlowWorkspace> ws = flow.NewWorkspace(n);
    flow.Sample(rng, ws.get());
    log_p.resize(n);
    target.LogDensity(ws->z(), &log_p, nullptr);
    for (int j = 0; j < n; ++j) {
      const double r = log_p[j] - ws->log_q()[j];
      if (std::isnan(r) || r == INFINITY) {
        return absl::FailedPreconditionError(absl::StrCat(
            "draw ", start + j, " has log p~ = ", log_p[j], " and log q = ", ws->log_q()[j],
            "; the flow or the target is not finite there"));
      }
      log_ratio[start + j] = r;
    }
    if (options.to_user_space) {
      options.to_user_space(ws->z(), &user);
      if (user.rows() != d || user.cols() != n) {
        return absl::InvalidArgumentError("to_user_space changed the shape of the draws");
      }
      draws.middleCols(start, n) = user;
    } else {
      draws.middleCols(start, n) = ws->z();
    }
  }

  Diagnostics out;
  out.num_draws = s_total;
  const double s = static_cast<double>(s_total);
  // -inf ratios (p~ = 0 where q > 0) would make the ELBO -inf; that is the right answer.
  out.elbo = log_ratio.mean();
  const double var = (log_ratio.array() - out.elbo).square().sum() / (s - 1);
  out.elbo_se = std::sqrt(var / s);
  absl::StatusOr<PsisResult> psis = Psis(log_ratio);
  if (!psis.ok()) return psis.status();
  out.k_hat = psis->k_hat;
  out.ess = psis->ess;
  out.log_z = psis->log_z;
  out.log_z_se = psis->log_z_se;
  if (std::optional<double> lz = target.log_normalizer(); lz.has_value()) out.kl = *lz - out.elbo;

  out.mean = draws.rowwise().mean();
  out.sd = ((draws.colwise() - out.mean).array().square().rowwise().sum() / (s - 1)).sqrt();
  const Vector w = psis->log_weights.array().exp();
  out.psis_mean = draws * w;
  out.psis_sd = ((draws.colwise() - out.psis_mean).array().square().matrix() * w).array().sqrt();
  return out;
}

}  // namespace flowvi
