// Targets from the "Normalizing Flows Are Not Magic" blog post's code: a 1-D bimodal toy
// (two_hills) and four 2-D shapes (banana, circle, demo_gmm, figure_eight). In N(x | m, s) the
// second argument is the standard deviation.
#include <Eigen/LU>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/targets/builtin.h"
#include "engine/targets/target.h"

namespace flowvi::targets_internal {
namespace {

// two_hills: the posterior of z ~ N(0, 1) after observing 0.5 ~ N(z^2, sqrt(0.1)), with modes
// at z = +-sqrt(0.45).
class TwoHillsTarget final : public Target {
 public:
  // log of the integral of p~ over R: Simpson's rule on [-10, 10] with 2e5 intervals in long
  // double, cross-checked by an arbitrary-precision adaptive quadrature (agree to 1e-15).
  static constexpr double kLogZ = -0.6486104892846638;

  int dim() const override { return 1; }
  std::optional<double> log_normalizer() const override { return kLogZ; }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    const auto x = z.row(0).array();
    log_p->array() = kConst - (0.5 - x.square()).square() / 0.2 - 0.5 * x.square();
    if (grad == nullptr) return;
    grad->row(0).array() = 20.0 * x * (0.5 - x.square()) - x;
  }

 private:
  // Two Gaussian normalizers, one with sd sqrt(0.1): -2 log sqrt(2 pi) - log sqrt(0.1).
  static constexpr double kConst = -2 * kHalfLog2Pi + 1.1512925464970228420;
};

// banana: z2 ~ N(0, 4), z1 | z2 ~ N(z2^2 / 4, 1). Normalized by construction.
class BananaTarget final : public Target {
 public:
  int dim() const override { return 2; }
  std::optional<double> log_normalizer() const override { return 0.0; }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    e_.resize(z.cols());
    const auto z1 = z.row(0).array();
    const auto z2 = z.row(1).array();
    e_.array() = z1 - 0.25 * z2.square();
    log_p->array() = kConst - z2.square() / 32.0 - 0.5 * e_.array().square();
    if (grad == nullptr) return;
    grad->row(0).array() = -e_.array();
    grad->row(1).array() = -z2 / 16.0 + 0.5 * z2 * e_.array();
  }

 private:
  static constexpr double kConst = -2 * kHalfLog2Pi - 1.3862943611198906188;  // - log 4
  RowVector e_;
};

// circle: a ring of radius 4 (width 0.4) with two broad lobes at z1 = +-2.
class CircleTarget final : public Target {
 public:
  // log of the integral of p~ over R^2, computed as for u1: Simpson in r on [0, 10] (20000
  // intervals) times a 4096-point trapezoid rule in the angle, in long double, cross-checked by a
  // 2-D Simpson rule on an 8000^2 grid over [-8, 8]^2 (agree to 1e-14).
  static constexpr double kLogZ = 2.786238651952672;

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
    a_.array() = -0.2 * ((z1 - 2.0) / 0.8).square();
    b_.array() = -0.2 * ((z1 + 2.0) / 0.8).square();
    log_p->array() = -0.5 * ((r_.array() - 4.0) / 0.4).square() + a_.array().max(b_.array()) +
                     (-(a_.array() - b_.array()).abs()).exp().log1p();
    if (grad == nullptr) return;
    a_.array() = (a_.array() - b_.array()).logistic();  // weight of the lobe at z1 = +2
    // The radial term has no gradient at the origin; 1e-300 makes it zero there, not NaN.
    r_.array() = (4.0 - r_.array()) / (0.16 * r_.array().max(1e-300));
    grad->row(0).array() = r_.array() * z1 - 0.4 / 0.64 * (z1 + 2.0 - 4.0 * a_.array());
    grad->row(1).array() = r_.array() * z2;
  }

 private:
  RowVector r_, a_, b_;
};

// An equal-weight mixture of two 2-D Gaussians with full covariances.
class Gmm2Target final : public Target {
 public:
  struct Component {
    Eigen::Vector2d mean;
    Eigen::Matrix2d cov;
  };

  Gmm2Target(const Component& c1, const Component& c2) {
    const Component* cs[2] = {&c1, &c2};
    for (int k = 0; k < 2; ++k) {
      mean_[k] = cs[k]->mean;
      precision_[k] = cs[k]->cov.inverse();
      // log(1/2) + log N's normalizer in 2-D.
      log_scale_[k] = -std::log(2.0) - 2 * kHalfLog2Pi - 0.5 * std::log(cs[k]->cov.determinant());
    }
  }

  int dim() const override { return 2; }
  std::optional<double> log_normalizer() const override { return 0.0; }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    const Eigen::Index n = z.cols();
    a_.resize(n);
    b_.resize(n);
    const auto z1 = z.row(0).array();
    const auto z2 = z.row(1).array();
    ComponentLogDensity(0, z1, z2, &a_);
    ComponentLogDensity(1, z1, z2, &b_);
    log_p->array() = a_.array().max(b_.array()) + (-(a_.array() - b_.array()).abs()).exp().log1p();
    if (grad == nullptr) return;
    a_.array() = (a_.array() - b_.array()).logistic();  // responsibility of component 0
    const Eigen::Matrix2d& p = precision_[0];
    const Eigen::Matrix2d& q = precision_[1];
    const Eigen::Vector2d& m = mean_[0];
    const Eigen::Vector2d& u = mean_[1];
    grad->row(0).array() = -a_.array() * (p(0, 0) * (z1 - m[0]) + p(0, 1) * (z2 - m[1])) -
                           (1.0 - a_.array()) * (q(0, 0) * (z1 - u[0]) + q(0, 1) * (z2 - u[1]));
    grad->row(1).array() = -a_.array() * (p(1, 0) * (z1 - m[0]) + p(1, 1) * (z2 - m[1])) -
                           (1.0 - a_.array()) * (q(1, 0) * (z1 - u[0]) + q(1, 1) * (z2 - u[1]));
  }

 private:
  template <typename Row>
  void ComponentLogDensity(int k, const Row& z1, const Row& z2, RowVector* out) const {
    const Eigen::Matrix2d& p = precision_[k];
    const Eigen::Vector2d& m = mean_[k];
    out->array() = log_scale_[k] - 0.5 * (p(0, 0) * (z1 - m[0]).square() +
                                          2.0 * p(0, 1) * (z1 - m[0]) * (z2 - m[1]) +
                                          p(1, 1) * (z2 - m[1]).square());
  }

  Eigen::Vector2d mean_[2];
  Eigen::Matrix2d precision_[2];
  double log_scale_[2];
  RowVector a_, b_;
};

template <typename Make>
TargetInfo NoParamEntry(std::string name, std::string description, Make make) {
  return TargetInfo{.name = std::move(name),
                    .description = std::move(description),
                    .params = {},
                    .factory = [make](const ParamMap&) -> absl::StatusOr<std::unique_ptr<Target>> {
                      return std::unique_ptr<Target>(make());
                    }};
}

}  // namespace

void AppendBlogTargets(std::vector<TargetInfo>* catalog) {
  catalog->push_back(NoParamEntry(
      "two_hills",
      "1-D bimodal posterior from the 'Normalizing Flows Are Not Magic' blog post: "
      "log p~(z) = log N(0.5 | z^2, sqrt(0.1)) + log N(z | 0, 1) (sd as second argument), "
      "modes at z = +-0.67. 1-D, log Z = -0.6486105 (quadrature).",
      [] { return std::make_unique<TwoHillsTarget>(); }));
  catalog->push_back(NoParamEntry(
      "banana",
      "Banana-shaped 2-D density from the 'Normalizing Flows Are Not Magic' blog post: "
      "log p~(z) = log N(z2 | 0, 4) + log N(z1 | z2^2 / 4, 1) (sd as second argument). 2-D, "
      "normalized (log Z = 0).",
      [] { return std::make_unique<BananaTarget>(); }));
  catalog->push_back(
      NoParamEntry("circle",
                   "Ring-shaped 2-D density from the 'Normalizing Flows Are Not Magic' blog post: "
                   "log p~(z) = -((|z| - 4) / 0.4)^2 / 2 + log(exp(-0.2 ((z1 - 2) / 0.8)^2) + "
                   "exp(-0.2 ((z1 + 2) / 0.8)^2)), a ring of radius 4 with two lobes. 2-D, "
                   "log Z = 2.7862387 (quadrature).",
                   [] { return std::make_unique<CircleTarget>(); }));
  catalog->push_back(NoParamEntry(
      "demo_gmm",
      "Equal-weight mixture of two correlated 2-D Gaussians from the 'Normalizing Flows Are Not "
      "Magic' blog post: means (7.1867262, 6.33361695) and (9.08082621, -3.88217883), "
      "covariances [[8.74083795, -6.74083795], [-6.74083795, 8.74083795]] and "
      "[[4.18261901, 2.18261901], [2.18261901, 4.18261901]]. 2-D, normalized (log Z = 0).",
      [] {
        using C = Gmm2Target::Component;
        return std::make_unique<Gmm2Target>(
            C{Eigen::Vector2d(7.1867262, 6.33361695),
              (Eigen::Matrix2d() << 8.74083795, -6.74083795, -6.74083795, 8.74083795).finished()},
            C{Eigen::Vector2d(9.08082621, -3.88217883),
              (Eigen::Matrix2d() << 4.18261901, 2.18261901, 2.18261901, 4.18261901).finished()});
      }));
  catalog->push_back(NoParamEntry(
      "figure_eight",
      "Equal-weight mixture of two isotropic 2-D Gaussians, N(z | (-1, -1), 0.45^2 I) and "
      "N(z | (1, 1), 0.45^2 I), from the 'Normalizing Flows Are Not Magic' blog post. 2-D, "
      "normalized (log Z = 0).",
      [] {
        const Eigen::Matrix2d cov = 0.45 * 0.45 * Eigen::Matrix2d::Identity();
        using C = Gmm2Target::Component;
        return std::make_unique<Gmm2Target>(C{Eigen::Vector2d(-1, -1), cov},
                                            C{Eigen::Vector2d(1, 1), cov});
      }));
}

}  // namespace flowvi::targets_internal
