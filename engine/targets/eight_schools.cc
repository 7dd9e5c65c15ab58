// The eight-schools hierarchical model (Gelman et al., BDA3 section 5.5) as a target on the
// unconstrained space (theta or eta, mu, log tau), in the centered or non-centered form.
#include <cmath>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/targets/builtin.h"
#include "engine/targets/target.h"

namespace flowvi::targets_internal {
namespace {

constexpr int kMaxSchools = 8;
constexpr double kEffects[kMaxSchools] = {28, 8, -3, 7, -1, 1, 18, 12};
constexpr double kStdErrors[kMaxSchools] = {15, 10, 16, 11, 9, 11, 10, 18};
constexpr double kPriorScale = 5;  // mu ~ N(0, 5), tau ~ HalfCauchy(0, 5)

class EightSchoolsTarget final : public Target {
 public:
  EightSchoolsTarget(int schools, bool centered)
      : k_(schools), centered_(centered), y_(schools), inv_var_(schools) {
    const double log_scale = std::log(kPriorScale);
    // Every Gaussian and Cauchy normalizer, so that values agree with a model written out in
    // full (e.g. in Stan) and differences between the two forms are only the Jacobian.
    log_const_ = 2 * k_ * -kHalfLog2Pi                                      // likelihood, theta/eta
                 - kHalfLog2Pi - log_scale                                  // mu prior
                 + std::log(2.0) - std::log(std::numbers::pi) - log_scale;  // half-Cauchy
    for (int j = 0; j < k_; ++j) {
      y_[j] = kEffects[j];
      inv_var_[j] = 1.0 / (kStdErrors[j] * kStdErrors[j]);
      log_const_ -= std::log(kStdErrors[j]);
    }
  }

  int dim() const override { return k_ + 2; }

  std::vector<std::string> coordinate_names() const override {
    std::vector<std::string> names;
    for (int j = 1; j <= k_; ++j) names.push_back(absl::StrCat(centered_ ? "theta" : "eta", j));
    names.push_back("mu");
    names.push_back("log_tau");
    return names;
  }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    const Eigen::Index n = z.cols();
    resid_.resize(k_, n);
    dev_.resize(k_, n);
    tau_pow_.resize(n);
    sum_sq_.resize(n);
    cauchy_.resize(n);
    const auto mu = z.row(k_).array();
    const auto log_tau = z.row(k_ + 1).array();
    // log(1 + (tau / 5)^2) = softplus(2 log tau - 2 log 5), safe for any log tau.
    cauchy_.array() = 2.0 * (log_tau - std::log(kPriorScale));
    if (centered_) {
      LogDensityCentered(z, log_p, grad);
    } else {
      LogDensityNonCentered(z, log_p, grad);
    }
    // Shared by both forms: the mu and tau priors and the Jacobian of tau = exp(log tau).
    log_p->array() += log_const_ - 0.5 * (mu / kPriorScale).square() -
                      (cauchy_.array().max(0.0) + (-cauchy_.array().abs()).exp().log1p()) + log_tau;
    if (grad == nullptr) return;
    grad->row(k_).array() -= mu / (kPriorScale * kPriorScale);
    grad->row(k_ + 1).array() += 1.0 - 2.0 * cauchy_.array().logistic();
  }

 private:
  // Writes the likelihood and theta-prior terms (and their gradients).
  void LogDensityCentered(const Matrix& z, RowVector* log_p, Matrix* grad) {
    const auto theta = z.topRows(k_);
    const auto mu = z.row(k_);
    const auto log_tau = z.row(k_ + 1).array();
    resid_ = theta.colwise() - y_;              // theta - y
    dev_ = theta.rowwise() - mu;                // theta - mu
    tau_pow_.array() = (-2.0 * log_tau).exp();  // 1 / tau^2
    sum_sq_.array() = tau_pow_.array() * dev_.colwise().squaredNorm().array();
    log_p->array() = -0.5 * (resid_.array().square().colwise() * inv_var_.array()).colwise().sum() -
                     0.5 * sum_sq_.array() - static_cast<double>(k_) * log_tau;
    if (grad == nullptr) return;
    grad->topRows(k_).array() =
        -(resid_.array().colwise() * inv_var_.array()) - dev_.array().rowwise() * tau_pow_.array();
    grad->row(k_).array() = tau_pow_.array() * dev_.colwise().sum().array();
    grad->row(k_ + 1).array() = sum_sq_.array() - static_cast<double>(k_);
  }

  void LogDensityNonCentered(const Matrix& z, RowVector* log_p, Matrix* grad) {
    const auto eta = z.topRows(k_);
    const auto mu = z.row(k_);
    tau_pow_.array() = z.row(k_ + 1).array().exp();  // tau
    resid_.array() = (eta.array().rowwise() * tau_pow_.array()).rowwise() + mu.array();
    resid_.colwise() -= y_;  // theta - y with theta = mu + tau eta
    log_p->array() = -0.5 * (resid_.array().square().colwise() * inv_var_.array()).colwise().sum() -
                     0.5 * eta.colwise().squaredNorm().array();
    if (grad == nullptr) return;
    // dev_ = d log p / d theta = (y - theta) / sigma^2, chained through theta = mu + tau eta.
    dev_.array() = -(resid_.array().colwise() * inv_var_.array());
    grad->topRows(k_).array() = dev_.array().rowwise() * tau_pow_.array() - eta.array();
    grad->row(k_) = dev_.colwise().sum();
    grad->row(k_ + 1).array() = tau_pow_.array() * (dev_.array() * eta.array()).colwise().sum();
  }

  int k_;
  bool centered_;
  Vector y_;
  Vector inv_var_;
  double log_const_;
  // Scratch, resized only when the batch size changes.
  Matrix resid_, dev_;
  RowVector tau_pow_, sum_sq_, cauchy_;
};

}  // namespace

void AppendEightSchoolsTarget(std::vector<TargetInfo>* catalog) {
  catalog->push_back(TargetInfo{
      .name = "eight_schools",
      .description =
          "Eight schools hierarchical model (Gelman et al., BDA3 section 5.5; Rubin 1981): "
          "y_j ~ N(theta_j, sigma_j) with y = (28, 8, -3, 7, -1, 1, 18, 12), "
          "sigma = (15, 10, 16, 11, 9, 11, 10, 18), theta_j ~ N(mu, tau), mu ~ N(0, 5), "
          "tau ~ HalfCauchy(0, 5), on the unconstrained coordinates (theta_1..theta_k, mu, "
          "log tau), including the log tau Jacobian; non-centered uses theta_j = mu + tau eta_j "
          "with eta_j ~ N(0, 1). D = schools + 2 (10 by default). log Z unknown. The centered "
          "form has a funnel between theta and log tau that mean-field and short flows fit "
          "poorly; the non-centered form is much easier.",
      .params = {ParamSpec{.name = "centered",
                           .type = ParamType::kBool,
                           .default_value = true,
                           .description = "true: coordinates theta_j (centered form, hard "
                                          "funnel geometry); false: eta_j with "
                                          "theta_j = mu + tau eta_j (non-centered, easy)."},
                 ParamSpec{.name = "schools",
                           .type = ParamType::kInt,
                           .default_value = int64_t{kMaxSchools},
                           .description = "Use only the first k schools, 1 <= k <= 8 "
                                          "(D = k + 2); 2 gives the blog post's two-school "
                                          "experiment."}},
      .factory = [](const ParamMap& params) -> absl::StatusOr<std::unique_ptr<Target>> {
        absl::StatusOr<int> schools =
            IntParamInRange(params, "eight_schools", "schools", 1, kMaxSchools);
        if (!schools.ok()) return schools.status();
        return std::make_unique<EightSchoolsTarget>(*schools, GetBool(params, "centered"));
      }});
}

}  // namespace flowvi::targets_internal
