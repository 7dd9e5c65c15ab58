#include "engine/diagnostics/psis.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace flowvi {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// loo does not fit a tail shorter than this.
constexpr int kMinTailLength = 5;

// Mean with long-double accumulation and one correction pass, as R's mean() does, so the fitted
// shape (an average of logs over the tail) rounds the way loo's does.
double Mean(const std::vector<double>& x) {
  const auto n = static_cast<long double>(x.size());
  long double s = 0.0L;
  for (double v : x) s += v;
  s /= n;
  if (std::isfinite(static_cast<double>(s))) {
    long double t = 0.0L;
    for (double v : x) t += v - s;
    s += t / n;
  }
  return static_cast<double>(s);
}

// log(sum(exp(x))) for a non-empty x: shift by the maximum and add the other terms through
// log1p, as matrixStats::logSumExp (which loo uses) does. -inf if every entry is -inf.
template <typename Container>
double LogSumExp(const Container& x) {
  std::ptrdiff_t arg_max = 0;
  const auto n = static_cast<std::ptrdiff_t>(x.size());
  for (std::ptrdiff_t i = 1; i < n; ++i) {
    if (x[i] > x[arg_max]) arg_max = i;
  }
  const double x_max = x[arg_max];
  if (std::isinf(x_max)) return x_max;
  double sum = 0.0;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    if (i != arg_max) sum += std::exp(x[i] - x_max);
  }
  return x_max + std::log1p(sum);
}

struct GpdFit {
  double k;      // Shape, after the weakly-informative prior; +inf if the fit is NaN.
  double sigma;  // Scale.
};

// Zhang & Stephens (2009) estimate of a generalized Pareto fitted to the exceedances x (sorted
// ascending, at least 5 of them), with the grid size and prior of loo's gpdfit(): the profile
// likelihood of theta = k / sigma is evaluated on a grid and averaged with its posterior weights.
GpdFit FitGpd(const std::vector<double>& x) {
  const auto n = static_cast<std::ptrdiff_t>(x.size());
  const double n_real = static_cast<double>(n);
  const double grid_size = 30.0 + std::floor(std::sqrt(n_real));
  const double x_star = x[static_cast<std::size_t>(std::floor(n_real / 4.0 + 0.5)) - 1];
  const double x_max = x.back();
  const auto m = static_cast<std::ptrdiff_t>(grid_size);
  std::vector<double> theta(m);
  std::vector<double> log_lik(m);
  std::vector<double> terms(x.size());
  for (std::ptrdiff_t j = 0; j < m; ++j) {
    const double jj = static_cast<double>(j + 1);
    // The order of the operations mirrors loo's expression so the grid is bit-identical.
    theta[j] = 1.0 / x_max + (1.0 - std::sqrt(grid_size / (jj - 0.5))) / 3.0 / x_star;
    const double a = -theta[j];
    for (std::ptrdiff_t i = 0; i < n; ++i) terms[i] = std::log1p(a * x[i]);
    const double k = Mean(terms);
    log_lik[j] = n_real * (std::log(a / k) - k - 1.0);
  }
  const double log_norm = LogSumExp(log_lik);
  long double theta_sum = 0.0L;  // R's sum() accumulates in long double too.
  for (std::ptrdiff_t j = 0; j < m; ++j) {
    theta_sum += theta[j] * std::exp(log_lik[j] - log_norm);
  }
  const double theta_hat = static_cast<double>(theta_sum);
  for (std::ptrdiff_t i = 0; i < n; ++i) terms[i] = std::log1p(-theta_hat * x[i]);
  double k = Mean(terms);
  const double sigma = -k / theta_hat;
  // Shrink towards 0.5 as if 10 prior observations had k = 0.5 (Vehtari et al., appendix).
  constexpr double kPriorCount = 10.0;
  const double n_plus_a = n_real + kPriorCount;
  k = k * n_real / n_plus_a + kPriorCount * 0.5 / n_plus_a;
  // A NaN fit (e.g. a zero reference quantile x_star from ties at the cutoff) is reported as an
  // infinitely heavy tail, as loo does.
  if (std::isnan(k)) k = kInf;
  return {k, sigma};
}

// Quantile function of the generalized Pareto with location 0, or NaN where loo's qgpd() has
// none (scale not positive).
double GpdQuantile(double p, double k, double sigma) {
  if (std::isnan(sigma) || sigma <= 0.0) return kNaN;
  // loo divides by k and would return NaN at exactly k == 0; use the exponential limit instead.
  if (k == 0.0) return -sigma * std::log1p(-p);
  return sigma * std::expm1(-k * std::log1p(-p)) / k;
}

absl::Status Validate(const Vector& log_ratios) {
  if (log_ratios.size() == 0) {
    return absl::InvalidArgumentError("Psis: log_ratios is empty");
  }
  if (log_ratios.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("Psis: need at least 2 log-ratios, got ", log_ratios.size()));
  }
  for (Eigen::Index i = 0; i < log_ratios.size(); ++i) {
    if (std::isnan(log_ratios[i])) {
      return absl::InvalidArgumentError(absl::StrCat("Psis: log_ratios[", i, "] is NaN"));
    }
    if (log_ratios[i] == kInf) {
      return absl::InvalidArgumentError(absl::StrCat("Psis: log_ratios[", i, "] is +inf"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PsisResult> Psis(const Vector& log_ratios) {
  if (absl::Status status = Validate(log_ratios); !status.ok()) return status;
  const Eigen::Index s = log_ratios.size();
  const double s_real = static_cast<double>(s);
  const double max_ratio = log_ratios.maxCoeff();
  if (max_ratio == -kInf) {
    return absl::InvalidArgumentError("Psis: every log-ratio is -inf, so no draw has weight");
  }

  PsisResult result;
  result.k_hat = kInf;
  result.sigma = kNaN;
  // Shifting by the maximum keeps exp() in range; the fit and the truncation work on this scale.
  Vector lw = log_ratios.array() - max_ratio;

  // Same expression as loo's n_pareto() with r_eff = 1, so the rounding before ceil() agrees.
  const double tail_real = std::ceil(std::min(0.2 * s_real, 3.0 * std::sqrt(s_real / 1.0)));
  const auto m = static_cast<Eigen::Index>(tail_real);
  result.tail_length = static_cast<int>(m);

  if (m >= kMinTailLength) {
    // loo sorts with R's stable radix sort, so tied draws keep their input order; that decides
    // which of several tied draws at the cutoff enter the tail and which tied tail draw gets
    // which smoothed value. Ordering by (value, index) reproduces it, and only the M + 1 largest
    // need sorting.
    std::vector<Eigen::Index> order(static_cast<std::size_t>(s));
    std::iota(order.begin(), order.end(), Eigen::Index{0});
    const auto before = [&lw](Eigen::Index a, Eigen::Index b) {
      return lw[a] < lw[b] || (lw[a] == lw[b] && a < b);
    };
    const auto cutoff_pos = order.begin() + (s - m - 1);
    std::nth_element(order.begin(), cutoff_pos, order.end(), before);
    std::sort(cutoff_pos + 1, order.end(), before);

    const double cutoff = lw[*cutoff_pos];
    std::vector<double> tail(static_cast<std::size_t>(m));
    for (Eigen::Index i = 0; i < m; ++i) tail[i] = lw[*(cutoff_pos + 1 + i)];

    // loo declines to fit when the tail is flat (it warns instead), leaving k̂ = inf.
    if (std::abs(tail.back() - tail.front()) >= std::numeric_limits<double>::epsilon() / 100.0) {
      const double exp_cutoff = std::exp(cutoff);
      std::vector<double> exceedances(tail.size());
      for (std::size_t i = 0; i < tail.size(); ++i) exceedances[i] = std::exp(tail[i]) - exp_cutoff;
      const GpdFit fit = FitGpd(exceedances);
      result.k_hat = fit.k;
      result.sigma = fit.sigma;
      // loo keeps the raw tail when k is not finite. It would write NaN weights when the scale
      // is not positive (only when theta_hat is exactly 0); we keep the raw tail there too.
      const bool smooth = std::isfinite(fit.k) && !std::isnan(fit.sigma) && fit.sigma > 0.0;
      if (smooth) {
        for (Eigen::Index i = 0; i < m; ++i) {
          const Eigen::Index draw = *(cutoff_pos + 1 + i);
          // A draw of zero target density stays at zero weight. The tail holds such draws only
          // when more than S - M ratios are -inf; loo would hand them smoothed weights there.
          if (lw[draw] == -kInf) continue;
          const double p = (static_cast<double>(i + 1) - 0.5) / tail_real;
          lw[draw] = std::log(GpdQuantile(p, fit.k, fit.sigma) + exp_cutoff);
        }
      }
    }
  }

  // Truncate at the largest raw ratio so no smoothed draw outweighs every observed one.
  lw = lw.cwiseMin(0.0);
  const double log_norm = LogSumExp(lw);
  result.log_weights = lw.array() - log_norm;
  result.ess = 1.0 / (2.0 * result.log_weights.array()).exp().sum();

  // log Z and its standard error use the raw ratios: smoothing would bias the estimate.
  const Eigen::ArrayXd ratios = (log_ratios.array() - max_ratio).exp();
  const double mean = ratios.mean();
  const double var = (ratios - mean).square().sum() / (s_real - 1.0);
  result.log_z = max_ratio + std::log(ratios.sum()) - std::log(s_real);
  result.log_z_se = std::sqrt(var) / (mean * std::sqrt(s_real));
  return result;
}

std::string_view KHatReading(double k_hat) {
  if (k_hat < 0.5) return "good";
  if (k_hat <= 0.7) return "ok";
  if (k_hat <= 1.0) return "bad";
  return "very bad";  // Also +inf and NaN: nothing can be read from the weights.
}

}  // namespace flowvi
