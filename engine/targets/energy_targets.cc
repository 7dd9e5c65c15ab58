// The four 2-D energy functions of Rezende & Mohamed (2015), Table 1: p~(z) = exp(-U(z)).
// Only U1 is normalizable; U2-U4 are offered as in the paper, flagged improper.
#include <cmath>
#include <memory>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/targets/builtin.h"
#include "engine/targets/target.h"

namespace flowvi::targets_internal {
namespace {

constexpr double kHalfPi = std::numbers::pi / 2;  // w1(z) = sin(2 pi z1 / 4) = sin(z1 pi / 2)

// Keeps the radial gradient (2 - r) / r * z finite (and zero) at the origin, where the cone
// point of |z| has no gradient.
constexpr double kMinRadius = 1e-300;

// U1: a ring of radius 2 (width 0.4) cut into two lobes at z1 = +-2.
class U1Target final : public Target {
 public:
  // log of the integral of exp(-U1) over R^2, by quadrature in long double: Simpson in r on
  // [0, 8] (20000 intervals) times the trapezoid rule in the angle (2048 points, spectrally
  // accurate for a periodic integrand), cross-checked by a 2-D Simpson rule on a 6000^2 grid over
  // [-6, 6]^2 and by an arbitrary-precision adaptive quadrature; all agree to 1e-14 (the
  // reference value is 1.877502).
  static constexpr double kLogZ = 1.8775016261097079;

  int dim() const override { return 2; }
  std::optional<double> log_normalizer() const override { return kLogZ; }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    const Eigen::Index n = z.cols();
    r_.resize(n);
    a_.resize(n);
    b_.resize(n);
    const auto z1 = z.row(0).array();
    const auto z2 = z.row(1).array();
    r_.array() = (z1.square() + z2.square()).sqrt();
    a_.array() = -0.5 * ((z1 - 2.0) / 0.6).square();
    b_.array() = -0.5 * ((z1 + 2.0) / 0.6).square();
    log_p->array() = -0.5 * ((r_.array() - 2.0) / 0.4).square() + a_.array().max(b_.array()) +
                     (-(a_.array() - b_.array()).abs()).exp().log1p();
    if (grad == nullptr) return;
    a_.array() = (a_.array() - b_.array()).logistic();  // weight of the lobe at z1 = +2
    r_.array() = (2.0 - r_.array()) / (0.16 * r_.array().max(kMinRadius));
    grad->row(0).array() = r_.array() * z1 - (z1 + 2.0 - 4.0 * a_.array()) / 0.36;
    grad->row(1).array() = r_.array() * z2;
  }

 private:
  RowVector r_, a_, b_;  // scratch, resized only when the batch size changes
};

// U2: a sine-shaped valley z2 = w1(z1) of width 0.4.
class U2Target final : public Target {
 public:
  int dim() const override { return 2; }
  bool proper() const override { return false; }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    e_.resize(z.cols());
    const auto z1 = z.row(0).array();
    const auto z2 = z.row(1).array();
    e_.array() = z2 - (kHalfPi * z1).sin();
    log_p->array() = -0.5 * (e_.array() / 0.4).square();
    if (grad == nullptr) return;
    grad->row(0).array() = e_.array() / 0.16 * kHalfPi * (kHalfPi * z1).cos();
    grad->row(1).array() = -e_.array() / 0.16;
  }

 private:
  RowVector e_;
};

// U3: the valley of U2 and a copy shifted down by the bump w2 near z1 = 1.
class U3Target final : public Target {
 public:
  int dim() const override { return 2; }
  bool proper() const override { return false; }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    const Eigen::Index n = z.cols();
    e1_.resize(n);
    e2_.resize(n);
    w2_.resize(n);
    a_.resize(n);
    b_.resize(n);
    const auto z1 = z.row(0).array();
    const auto z2 = z.row(1).array();
    w2_.array() = 3.0 * (-0.5 * ((z1 - 1.0) / 0.6).square()).exp();
    e1_.array() = z2 - (kHalfPi * z1).sin();
    e2_.array() = e1_.array() + w2_.array();
    a_.array() = -0.5 * (e1_.array() / kWidth).square();
    b_.array() = -0.5 * (e2_.array() / kWidth).square();
    log_p->array() = a_.array().max(b_.array()) + (-(a_.array() - b_.array()).abs()).exp().log1p();
    if (grad == nullptr) return;
    a_.array() = (a_.array() - b_.array()).logistic();  // weight of the first valley
    // Scaled residuals e / width^2, weighted by their component's responsibility.
    e1_.array() *= a_.array() / (kWidth * kWidth);
    e2_.array() *= (1.0 - a_.array()) / (kWidth * kWidth);
    // dw1/dz1 - dw2/dz1 for the second valley; dw1/dz1 alone for the first.
    b_.array() = kHalfPi * (kHalfPi * z1).cos();
    grad->row(0).array() =
        e1_.array() * b_.array() + e2_.array() * (b_.array() + w2_.array() * (z1 - 1.0) / 0.36);
    grad->row(1).array() = -(e1_.array() + e2_.array());
  }

 private:
  static constexpr double kWidth = 0.35;
  RowVector e1_, e2_, w2_, a_, b_;
};

// U4: the valley of U2 and a copy shifted down by the step w3 (a sigmoid at z1 = 1).
class U4Target final : public Target {
 public:
  int dim() const override { return 2; }
  bool proper() const override { return false; }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    const Eigen::Index n = z.cols();
    e1_.resize(n);
    e2_.resize(n);
    s_.resize(n);
    a_.resize(n);
    b_.resize(n);
    const auto z1 = z.row(0).array();
    const auto z2 = z.row(1).array();
    s_.array() = ((z1 - 1.0) / 0.3).logistic();
    e1_.array() = z2 - (kHalfPi * z1).sin();
    e2_.array() = e1_.array() + 3.0 * s_.array();
    a_.array() = -0.5 * (e1_.array() / kWidth1).square();
    b_.array() = -0.5 * (e2_.array() / kWidth2).square();
    log_p->array() = a_.array().max(b_.array()) + (-(a_.array() - b_.array()).abs()).exp().log1p();
    if (grad == nullptr) return;
    a_.array() = (a_.array() - b_.array()).logistic();  // weight of the first valley
    e1_.array() *= a_.array() / (kWidth1 * kWidth1);
    e2_.array() *= (1.0 - a_.array()) / (kWidth2 * kWidth2);
    b_.array() = kHalfPi * (kHalfPi * z1).cos();
    // dw3/dz1 = 3 s (1 - s) / 0.3 = 10 s (1 - s).
    grad->row(0).array() = e1_.array() * b_.array() +
                           e2_.array() * (b_.array() - 10.0 * s_.array() * (1.0 - s_.array()));
    grad->row(1).array() = -(e1_.array() + e2_.array());
  }

 private:
  static constexpr double kWidth1 = 0.4;
  static constexpr double kWidth2 = 0.35;
  RowVector e1_, e2_, s_, a_, b_;
};

template <typename T>
TargetInfo NoParamEntry(std::string name, std::string description) {
  return TargetInfo{.name = std::move(name),
                    .description = std::move(description),
                    .params = {},
                    .factory = [](const ParamMap&) -> absl::StatusOr<std::unique_ptr<Target>> {
                      return std::make_unique<T>();
                    }};
}

constexpr char kWDefinitions[] =
    " Here w1(z) = sin(2 pi z1 / 4), w2(z) = 3 exp(-((z1 - 1) / 0.6)^2 / 2), "
    "w3(z) = 3 sigmoid((z1 - 1) / 0.3).";

}  // namespace

void AppendEnergyTargets(std::vector<TargetInfo>* catalog) {
  catalog->push_back(NoParamEntry<U1Target>(
      "u1",
      "Energy function U1 of Rezende & Mohamed (2015, Table 1), p~(z) = exp(-U1(z)) with "
      "U1(z) = ((|z| - 2) / 0.4)^2 / 2 - log(exp(-((z1 - 2) / 0.6)^2 / 2) + "
      "exp(-((z1 + 2) / 0.6)^2 / 2)): a ring of radius 2 split into two lobes. 2-D, proper, "
      "log Z = 1.8775016 (quadrature)."));
  catalog->push_back(NoParamEntry<U2Target>(
      "u2",
      absl::StrCat("Energy function U2 of Rezende & Mohamed (2015, Table 1), p~(z) = exp(-U2(z)) "
                   "with U2(z) = ((z2 - w1(z)) / 0.4)^2 / 2: a sine-shaped valley. 2-D. IMPROPER: "
                   "p~ does not decay along z1, so log Z is infinite and the ELBO can grow "
                   "without bound; use it, as in the paper, to look at the fitted shape.",
                   kWDefinitions)));
  catalog->push_back(NoParamEntry<U3Target>(
      "u3",
      absl::StrCat("Energy function U3 of Rezende & Mohamed (2015, Table 1), p~(z) = exp(-U3(z)) "
                   "with U3(z) = -log(exp(-((z2 - w1) / 0.35)^2 / 2) + "
                   "exp(-((z2 - w1 + w2) / 0.35)^2 / 2)): two sine valleys that split near "
                   "z1 = 1. 2-D. IMPROPER: p~ does not decay along z1, so log Z is infinite and "
                   "the ELBO can grow without bound; use it, as in the paper, to look at the "
                   "fitted shape.",
                   kWDefinitions)));
  catalog->push_back(NoParamEntry<U4Target>(
      "u4",
      absl::StrCat("Energy function U4 of Rezende & Mohamed (2015, Table 1), p~(z) = exp(-U4(z)) "
                   "with U4(z) = -log(exp(-((z2 - w1) / 0.4)^2 / 2) + "
                   "exp(-((z2 - w1 + w3) / 0.35)^2 / 2)): two sine valleys separated by a step "
                   "at z1 = 1. 2-D. IMPROPER: p~ does not decay along z1, so log Z is infinite "
                   "and the ELBO can grow without bound; use it, as in the paper, to look at the "
                   "fitted shape.",
                   kWDefinitions)));
}

}  // namespace flowvi::targets_internal
