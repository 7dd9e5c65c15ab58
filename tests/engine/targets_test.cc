// Tests of the built-in target catalog: analytic gradients against finite differences, batch
// against one-column evaluation, log Z against independent quadratures and closed forms, eight
// schools against a plain scalar implementation, and the catalog's error reporting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "engine/core/params.h"
#include "engine/core/types.h"
#include "engine/targets/catalog.h"
#include "engine/targets/target.h"
#include "tests/engine/testing/gradient_check.h"

namespace flowvi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kPi = std::numbers::pi;

std::unique_ptr<Target> MustMake(const std::string& name, const ParamMap& params = {}) {
  absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget(name, params);
  EXPECT_TRUE(target.ok()) << name << ": " << target.status();
  return target.ok() ? std::move(*target) : nullptr;
}

double LogDensityAt(Target& target, const Vector& x) {
  const Matrix z = x;
  RowVector log_p(1);
  target.LogDensity(z, &log_p, nullptr);
  return log_p[0];
}

// log N(x | mean, sd), written out independently of the engine.
double LogNormal(double x, double mean, double sd) {
  const double u = (x - mean) / sd;
  return -0.5 * std::log(2 * kPi) - std::log(sd) - 0.5 * u * u;
}

bool CloseRelative(double a, double b, double tol) {
  return std::abs(a - b) <= tol * std::max(1.0, std::abs(b));
}

// A target configuration and a box of sensible points to test it at.
struct Variant {
  std::string name;
  ParamMap params;
  Vector lo, hi;
};

Vector Constant(int d, double v) { return Vector::Constant(d, v); }

Vector Vec(std::initializer_list<double> values) {
  Vector v(static_cast<Eigen::Index>(values.size()));
  Eigen::Index i = 0;
  for (double x : values) v[i++] = x;
  return v;
}

// Eight schools points: theta (or eta), mu, log tau.
Variant EightSchools(bool centered, int schools) {
  Variant v{"eight_schools",
            {{"centered", centered}, {"schools", int64_t{schools}}},
            Vector(schools + 2),
            Vector(schools + 2)};
  v.lo.head(schools).setConstant(centered ? -10.0 : -2.5);
  v.hi.head(schools).setConstant(centered ? 30.0 : 2.5);
  v.lo.tail(2) << -5.0, -1.0;
  v.hi.tail(2) << 15.0, 3.0;
  return v;
}

Variant Funnel(int dim) {
  Variant v{"funnel", {{"dim", int64_t{dim}}}, Constant(dim, -2.0), Constant(dim, 2.0)};
  v.lo[0] = -3.0;
  v.hi[0] = 3.0;
  return v;
}

const std::vector<double> kCov3 = {2.0, 0.6, -0.4, 0.6, 1.0, 0.3, -0.4, 0.3, 0.5};
const std::vector<double> kMean3 = {1.0, -2.0, 0.5};
const std::vector<double> kCov2 = {1.5, 0.7, 0.7, 0.8};
const std::vector<double> kMean2 = {0.5, -1.0};

Variant Gaussian3() {
  return {"gaussian",
          {{"dim", int64_t{3}}, {"mean", kMean3}, {"cov", kCov3}},
          Vec({-2, -5, -2}),
          Vec({4, 1, 3})};
}

std::vector<Variant> AllVariants() {
  return {
      {"u1", {}, Constant(2, -4), Constant(2, 4)},
      {"u2", {}, Constant(2, -4), Constant(2, 4)},
      {"u3", {}, Constant(2, -4), Constant(2, 4)},
      {"u4", {}, Constant(2, -4), Constant(2, 4)},
      {"two_hills", {}, Constant(1, -2), Constant(1, 2)},
      {"banana", {}, Vec({-2, -5}), Vec({8, 5})},
      {"circle", {}, Constant(2, -5), Constant(2, 5)},
      {"demo_gmm", {}, Vec({0, -8}), Vec({15, 12})},
      {"figure_eight", {}, Constant(2, -2.5), Constant(2, 2.5)},
      EightSchools(true, 8),
      EightSchools(false, 8),
      EightSchools(true, 2),
      EightSchools(false, 2),
      Funnel(10),
      Funnel(2),
      Funnel(5),
      {"gaussian", {}, Constant(2, -3), Constant(2, 3)},
      Gaussian3(),
      {"gaussian",
       {{"dim", int64_t{2}}, {"mean", kMean2}, {"cov", kCov2}},
       Vec({-3, -4}),
       Vec({4, 2})},
      {"gaussian",
       {{"dim", int64_t{1}},
        {"mean", std::vector<double>{2.0}},
        {"cov", std::vector<double>{0.25}}},
       Constant(1, 0.5),
       Constant(1, 3.5)},
  };
}

std::string Describe(const Variant& v) {
  std::string out = v.name;
  for (const auto& [key, value] : v.params) {
    out += " " + key + "=" + FormatParamValue(value);
  }
  return out;
}

// `n` points uniform in the variant's box, one per column, from a fixed seed.
Matrix RandomPoints(const Variant& v, int n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Matrix z(v.lo.size(), n);
  for (int j = 0; j < n; ++j) {
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
      z(i, j) = v.lo[i] + (v.hi[i] - v.lo[i]) * unit(gen);
    }
  }
  return z;
}

TEST(TargetsTest, VariantsCoverTheWholeCatalog) {
  std::set<std::string> covered;
  for (const Variant& v : AllVariants()) covered.insert(v.name);
  for (const TargetInfo& info : TargetCatalog()) {
    EXPECT_TRUE(covered.contains(info.name)) << info.name << " has no gradient test variant";
  }
}

TEST(TargetsTest, AnalyticGradientMatchesFiniteDifferences) {
  constexpr int kPoints = 20;
  for (const Variant& v : AllVariants()) {
    SCOPED_TRACE(Describe(v));
    std::unique_ptr<Target> target = MustMake(v.name, v.params);
    ASSERT_NE(target, nullptr);
    ASSERT_EQ(target->dim(), v.lo.size());
    const Matrix z = RandomPoints(v, kPoints, 20240611);
    RowVector log_p(kPoints);
    Matrix grad(target->dim(), kPoints);
    target->LogDensity(z, &log_p, &grad);
    for (int j = 0; j < kPoints; ++j) {
      const Vector numeric = testing::NumericGradient(
          [&](const Vector& x) { return LogDensityAt(*target, x); }, z.col(j), 1e-4);
      EXPECT_LT(testing::MaxRelativeError(grad.col(j), numeric, 1.0), 1e-6)
          << "at z = " << z.col(j).transpose() << "\nanalytic " << grad.col(j).transpose()
          << "\nnumeric  " << numeric.transpose();
      EXPECT_TRUE(std::isfinite(log_p[j]));
    }
  }
}

TEST(TargetsTest, BatchEqualsColumnByColumn) {
  constexpr int kPoints = 20;
  for (const Variant& v : AllVariants()) {
    SCOPED_TRACE(Describe(v));
    std::unique_ptr<Target> target = MustMake(v.name, v.params);
    ASSERT_NE(target, nullptr);
    const int d = target->dim();
    const Matrix z = RandomPoints(v, kPoints, 7);
    RowVector log_p(kPoints);
    Matrix grad(d, kPoints);
    target->LogDensity(z, &log_p, &grad);

    RowVector log_p_only(kPoints);  // without the gradient
    target->LogDensity(z, &log_p_only, nullptr);
    RowVector one_lp(1);
    Matrix one_grad(d, 1);
    for (int j = 0; j < kPoints; ++j) {
      EXPECT_TRUE(CloseRelative(log_p_only[j], log_p[j], 1e-14)) << "column " << j;
      const Matrix col = z.col(j);
      target->LogDensity(col, &one_lp, &one_grad);
      EXPECT_TRUE(CloseRelative(one_lp[0], log_p[j], 1e-12))
          << "column " << j << ": " << one_lp[0] << " vs " << log_p[j];
      EXPECT_LT(testing::MaxRelativeError(one_grad.col(0), grad.col(j), 1.0), 1e-12)
          << "column " << j;
    }
    // The scratch was resized to one column in between; a second batch must not notice.
    RowVector again(kPoints);
    Matrix grad_again(d, kPoints);
    target->LogDensity(z, &again, &grad_again);
    EXPECT_EQ(again, log_p);
    EXPECT_EQ(grad_again, grad);
  }
}

// log of the trapezoid rule for the integral of p~ over [x0, x1] x [y0, y1] with step h,
// evaluating the target one grid row (a batch) at a time.
double LogIntegral2D(Target& target, double x0, double x1, double y0, double y1, double h) {
  const int nx = static_cast<int>(std::lround((x1 - x0) / h)) + 1;
  const int ny = static_cast<int>(std::lround((y1 - y0) / h)) + 1;
  Matrix z(2, ny);
  RowVector log_p(ny);
  RowVector wy = RowVector::Ones(ny);
  wy[0] = wy[ny - 1] = 0.5;
  for (int j = 0; j < ny; ++j) z(1, j) = y0 + j * h;
  double total = 0;
  for (int i = 0; i < nx; ++i) {
    z.row(0).setConstant(x0 + i * h);
    target.LogDensity(z, &log_p, nullptr);
    const double wx = (i == 0 || i == nx - 1) ? 0.5 : 1.0;
    total += wx * (log_p.array().exp() * wy.array()).sum();
  }
  return std::log(total * h * h);
}

double LogIntegral1D(Target& target, double x0, double x1, double h) {
  const int n = static_cast<int>(std::lround((x1 - x0) / h)) + 1;
  Matrix z(1, n);
  RowVector log_p(n);
  for (int i = 0; i < n; ++i) z(0, i) = x0 + i * h;
  target.LogDensity(z, &log_p, nullptr);
  const double total =
      log_p.array().exp().sum() - 0.5 * (std::exp(log_p[0]) + std::exp(log_p[n - 1]));
  return std::log(total * h);
}

TEST(TargetsTest, FiniteFarFromTheMassAndAtSingularPoints) {
  // Far out, each mixture component's log-density is around -1e4: summing exp() of them would
  // give log(0); the origin is the cone point of |z| in u1 and circle.
  const Matrix far = (Matrix(2, 5) << 0, 60, -60, 60, -60, 0, 60, 60, -60, -60).finished();
  for (const char* name :
       {"u1", "u2", "u3", "u4", "banana", "circle", "demo_gmm", "figure_eight", "gaussian"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<Target> target = MustMake(name);
    ASSERT_NE(target, nullptr);
    RowVector log_p(far.cols());
    Matrix grad(2, far.cols());
    target->LogDensity(far, &log_p, &grad);
    EXPECT_TRUE(log_p.allFinite()) << log_p;
    EXPECT_TRUE(grad.allFinite()) << grad;
  }
  // A huge tau: the half-Cauchy term must not overflow.
  std::unique_ptr<Target> schools = MustMake("eight_schools");
  ASSERT_NE(schools, nullptr);
  Matrix z = Matrix::Zero(10, 1);
  z(9, 0) = 400;
  RowVector log_p(1);
  Matrix grad(10, 1);
  schools->LogDensity(z, &log_p, &grad);
  EXPECT_TRUE(log_p.allFinite()) << log_p;
  EXPECT_TRUE(grad.allFinite()) << grad.transpose();
}

TEST(TargetsTest, U1LogNormalizerMatchesPaperValue) {
  std::unique_ptr<Target> u1 = MustMake("u1");
  ASSERT_NE(u1, nullptr);
  ASSERT_TRUE(u1->log_normalizer().has_value());
  EXPECT_NEAR(*u1->log_normalizer(), 1.877502, 2e-6);
}

TEST(TargetsTest, LogNormalizerMatchesQuadrature2D) {
  struct Case {
    std::string name;
    ParamMap params;
    double x0, x1, y0, y1, h;
  };
  const std::vector<Case> cases = {
      {"u1", {}, -7, 7, -7, 7, 0.005},
      {"circle", {}, -8, 8, -8, 8, 0.005},
      {"banana", {}, -10, 160, -25, 25, 0.05},
      {"demo_gmm", {}, -25, 40, -30, 40, 0.05},
      {"figure_eight", {}, -5, 5, -5, 5, 0.01},
      {"gaussian", {}, -10, 10, -10, 10, 0.02},
      {"gaussian", {{"dim", int64_t{2}}, {"mean", kMean2}, {"cov", kCov2}}, -12, 13, -13, 11, 0.02},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<Target> target = MustMake(c.name, c.params);
    ASSERT_NE(target, nullptr);
    ASSERT_EQ(target->dim(), 2);
    ASSERT_TRUE(target->log_normalizer().has_value());
    const double quadrature = LogIntegral2D(*target, c.x0, c.x1, c.y0, c.y1, c.h);
    EXPECT_NEAR(*target->log_normalizer(), quadrature, 1e-8);
  }
}

TEST(TargetsTest, LogNormalizerMatchesQuadrature1D) {
  std::unique_ptr<Target> two_hills = MustMake("two_hills");
  ASSERT_NE(two_hills, nullptr);
  ASSERT_TRUE(two_hills->log_normalizer().has_value());
  EXPECT_NEAR(*two_hills->log_normalizer(), LogIntegral1D(*two_hills, -8, 8, 1e-4), 1e-8);

  std::unique_ptr<Target> gaussian = MustMake("gaussian", {{"dim", int64_t{1}},
                                                           {"mean", std::vector<double>{2.0}},
                                                           {"cov", std::vector<double>{0.25}}});
  ASSERT_NE(gaussian, nullptr);
  ASSERT_TRUE(gaussian->log_normalizer().has_value());
  EXPECT_NEAR(*gaussian->log_normalizer(), LogIntegral1D(*gaussian, -4, 8, 1e-3), 1e-8);
}

TEST(TargetsTest, FunnelIsNormalizedIn2D) {
  // The x-scale exp(v / 2) spans orders of magnitude, so each v gets its own x grid of
  // +-12 standard deviations.
  std::unique_ptr<Target> funnel = MustMake("funnel", {{"dim", int64_t{2}}});
  ASSERT_NE(funnel, nullptr);
  ASSERT_TRUE(funnel->log_normalizer().has_value());
  constexpr int kNx = 1201;
  Matrix z(2, kNx);
  RowVector log_p(kNx);
  const double hv = 0.01;
  double total = 0;
  for (double v = -30; v <= 30 + hv / 2; v += hv) {
    const double sd = std::exp(v / 2);
    const double hx = 24 * sd / (kNx - 1);
    z.row(0).setConstant(v);
    for (int j = 0; j < kNx; ++j) z(1, j) = -12 * sd + j * hx;
    funnel->LogDensity(z, &log_p, nullptr);
    total += log_p.array().exp().sum() * hx * hv;
  }
  EXPECT_NEAR(*funnel->log_normalizer(), std::log(total), 1e-8);
}

TEST(TargetsTest, FunnelMatchesScalarFormula) {
  for (int dim : {2, 5, 10}) {
    SCOPED_TRACE(dim);
    const Variant v = Funnel(dim);
    std::unique_ptr<Target> funnel = MustMake("funnel", v.params);
    ASSERT_NE(funnel, nullptr);
    EXPECT_EQ(funnel->log_normalizer(), 0.0);
    const Matrix z = RandomPoints(v, 20, 99);
    RowVector log_p(z.cols());
    funnel->LogDensity(z, &log_p, nullptr);
    for (int j = 0; j < z.cols(); ++j) {
      double expected = LogNormal(z(0, j), 0, 3);
      for (int i = 1; i < dim; ++i) expected += LogNormal(z(i, j), 0, std::exp(z(0, j) / 2));
      EXPECT_TRUE(CloseRelative(log_p[j], expected, 1e-12)) << log_p[j] << " vs " << expected;
    }
  }
}

// log N(z | mean, cov) for 3-D z by cofactors and Cramer's rule.
double LogNormal3(const double* z, const std::vector<double>& mean, const std::vector<double>& c) {
  auto a = [&](int i, int j) { return c[3 * i + j]; };
  auto det3 = [](const double m[3][3]) {
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
           m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  };
  double m[3][3];
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) m[i][j] = a(i, j);
  }
  const double det = det3(m);
  const double d[3] = {z[0] - mean[0], z[1] - mean[1], z[2] - mean[2]};
  double quad = 0;
  for (int k = 0; k < 3; ++k) {
    double mk[3][3];
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) mk[i][j] = j == k ? d[i] : m[i][j];
    }
    quad += d[k] * det3(mk) / det;  // (cov^{-1} d)_k by Cramer's rule
  }
  return -1.5 * std::log(2 * kPi) - 0.5 * std::log(det) - 0.5 * quad;
}

TEST(TargetsTest, GaussianMatchesClosedForm) {
  const Variant v3 = Gaussian3();
  std::unique_ptr<Target> g3 = MustMake(v3.name, v3.params);
  ASSERT_NE(g3, nullptr);
  EXPECT_EQ(g3->log_normalizer(), 0.0);
  const Matrix z3 = RandomPoints(v3, 20, 5);
  RowVector log_p(20);
  Matrix grad(3, 20);
  g3->LogDensity(z3, &log_p, &grad);
  for (int j = 0; j < 20; ++j) {
    const double expected = LogNormal3(z3.col(j).data(), kMean3, kCov3);
    EXPECT_TRUE(CloseRelative(log_p[j], expected, 1e-12)) << log_p[j] << " vs " << expected;
  }

  // Defaults in high dimension: zero mean, identity covariance.
  std::unique_ptr<Target> g50 = MustMake("gaussian", {{"dim", int64_t{50}}});
  ASSERT_NE(g50, nullptr);
  Variant box{"gaussian", {}, Constant(50, -3), Constant(50, 3)};
  const Matrix z50 = RandomPoints(box, 20, 6);
  Matrix grad50(50, 20);
  g50->LogDensity(z50, &log_p, &grad50);
  for (int j = 0; j < 20; ++j) {
    double expected = 0;
    for (int i = 0; i < 50; ++i) expected += LogNormal(z50(i, j), 0, 1);
    EXPECT_TRUE(CloseRelative(log_p[j], expected, 1e-12)) << log_p[j] << " vs " << expected;
    EXPECT_LT(testing::MaxRelativeError(grad50.col(j), -z50.col(j), 1.0), 1e-14);
  }
}

// The eight-schools density written out with plain loops.
double EightSchoolsScalar(const double* z, int k, bool centered) {
  const double y[] = {28, 8, -3, 7, -1, 1, 18, 12};
  const double sigma[] = {15, 10, 16, 11, 9, 11, 10, 18};
  const double mu = z[k];
  const double tau = std::exp(z[k + 1]);
  double lp = 0;
  for (int j = 0; j < k; ++j) {
    const double theta = centered ? z[j] : mu + tau * z[j];
    lp += LogNormal(y[j], theta, sigma[j]);
    lp += centered ? LogNormal(theta, mu, tau) : LogNormal(z[j], 0, 1);
  }
  lp += LogNormal(mu, 0, 5);
  lp += std::log(2 / (kPi * 5 * (1 + (tau / 5) * (tau / 5))));  // half-Cauchy(0, 5)
  lp += std::log(tau);                                          // Jacobian of exp
  return lp;
}

TEST(TargetsTest, EightSchoolsMatchesScalarImplementation) {
  for (bool centered : {true, false}) {
    for (int schools : {8, 2, 1}) {
      SCOPED_TRACE(::testing::PrintToString(centered) + " schools " + std::to_string(schools));
      const Variant v = EightSchools(centered, schools);
      std::unique_ptr<Target> target = MustMake("eight_schools", v.params);
      ASSERT_NE(target, nullptr);
      ASSERT_EQ(target->dim(), schools + 2);
      EXPECT_FALSE(target->log_normalizer().has_value());
      const Matrix z = RandomPoints(v, 20, 1234 + schools);
      RowVector log_p(20);
      target->LogDensity(z, &log_p, nullptr);
      for (int j = 0; j < 20; ++j) {
        const double expected = EightSchoolsScalar(z.col(j).data(), schools, centered);
        EXPECT_TRUE(CloseRelative(log_p[j], expected, 1e-12)) << log_p[j] << " vs " << expected;
      }
    }
  }
}

TEST(TargetsTest, EightSchoolsFormsAgreeThroughTheReparameterization) {
  // With theta = mu + tau eta, the two densities differ exactly by the Jacobian k log tau.
  std::unique_ptr<Target> centered = MustMake("eight_schools");
  std::unique_ptr<Target> non_centered = MustMake("eight_schools", {{"centered", false}});
  ASSERT_NE(centered, nullptr);
  ASSERT_NE(non_centered, nullptr);
  const Matrix eta = RandomPoints(EightSchools(false, 8), 10, 3);
  Matrix theta = eta;
  for (int j = 0; j < eta.cols(); ++j) {
    const double tau = std::exp(eta(9, j));
    theta.col(j).head(8) = eta(8, j) + tau * eta.col(j).head(8).array();
  }
  RowVector lp_c(10), lp_n(10);
  centered->LogDensity(theta, &lp_c, nullptr);
  non_centered->LogDensity(eta, &lp_n, nullptr);
  for (int j = 0; j < 10; ++j) {
    EXPECT_TRUE(CloseRelative(lp_c[j] + 8 * eta(9, j), lp_n[j], 1e-12));
  }
}

TEST(TargetsTest, ProperAndNormalizers) {
  for (const TargetInfo& info : TargetCatalog()) {
    SCOPED_TRACE(info.name);
    std::unique_ptr<Target> target = MustMake(info.name);
    ASSERT_NE(target, nullptr);
    const bool improper = info.name == "u2" || info.name == "u3" || info.name == "u4";
    EXPECT_EQ(target->proper(), !improper);
    if (improper) {
      EXPECT_FALSE(target->log_normalizer().has_value());
      EXPECT_THAT(absl::AsciiStrToLower(info.description), HasSubstr("improper"));
    }
    const bool unknown_z = improper || info.name == "eight_schools";
    EXPECT_EQ(target->log_normalizer().has_value(), !unknown_z);
  }
}

TEST(TargetsTest, CoordinateNames) {
  EXPECT_THAT(MustMake("u1")->coordinate_names(), ElementsAre("z1", "z2"));
  EXPECT_THAT(MustMake("gaussian", {{"dim", int64_t{3}}})->coordinate_names(),
              ElementsAre("z1", "z2", "z3"));
  EXPECT_THAT(MustMake("funnel", {{"dim", int64_t{3}}})->coordinate_names(),
              ElementsAre("v", "x1", "x2"));
  EXPECT_THAT(MustMake("eight_schools")->coordinate_names(),
              ElementsAre("theta1", "theta2", "theta3", "theta4", "theta5", "theta6", "theta7",
                          "theta8", "mu", "log_tau"));
  EXPECT_THAT(
      MustMake("eight_schools", {{"centered", false}, {"schools", int64_t{2}}})->coordinate_names(),
      ElementsAre("eta1", "eta2", "mu", "log_tau"));
  for (const TargetInfo& info : TargetCatalog()) {
    std::unique_ptr<Target> target = MustMake(info.name);
    ASSERT_NE(target, nullptr);
    EXPECT_EQ(std::ssize(target->coordinate_names()), target->dim()) << info.name;
  }
}

TEST(TargetCatalogTest, EntriesAreDescribedAndUnique) {
  const std::vector<TargetInfo>& catalog = TargetCatalog();
  EXPECT_EQ(catalog.size(), 12u);
  std::set<std::string> names;
  for (const TargetInfo& info : catalog) {
    SCOPED_TRACE(info.name);
    EXPECT_FALSE(info.name.empty());
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate name";
    EXPECT_GT(info.description.size(), 40u);
    EXPECT_TRUE(info.factory != nullptr);
    for (const ParamSpec& spec : info.params) {
      EXPECT_FALSE(spec.name.empty());
      EXPECT_FALSE(spec.description.empty()) << spec.name;
    }
    absl::StatusOr<const TargetInfo*> found = FindTarget(info.name);
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(*found, &info);
  }
}

TEST(TargetCatalogTest, UnknownTargetListsKnownNames) {
  const absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget("bananas", {});
  ASSERT_EQ(target.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(target.status().message(), HasSubstr("'bananas'"));
  for (const TargetInfo& info : TargetCatalog()) {
    EXPECT_THAT(target.status().message(), HasSubstr(info.name));
  }
  EXPECT_EQ(FindTarget("").status().code(), absl::StatusCode::kInvalidArgument);
}

struct BadParams {
  std::string target;
  ParamMap params;
  std::string param;   // must be named in the message
  std::string detail;  // and this too
};

TEST(TargetCatalogTest, BadParametersAreInvalidArgumentNamingTheParameter) {
  const std::vector<BadParams> cases = {
      {"funnel", {{"dims", int64_t{3}}}, "dims", "no parameter"},
      {"u1", {{"dim", int64_t{3}}}, "dim", "no parameter"},
      {"eight_schools", {{"schools", true}}, "schools", "int"},
      {"eight_schools", {{"centered", 1.5}}, "centered", "bool"},
      {"eight_schools", {{"schools", int64_t{0}}}, "schools", "between 1 and 8, got 0"},
      {"eight_schools", {{"schools", int64_t{9}}}, "schools", "between 1 and 8, got 9"},
      {"funnel", {{"dim", int64_t{1}}}, "dim", "between 2 and 1000, got 1"},
      {"funnel", {{"dim", int64_t{1001}}}, "dim", "between 2 and 1000"},
      {"gaussian", {{"dim", int64_t{0}}}, "dim", "between 1 and 1000"},
      {"gaussian", {{"cov", std::vector<double>{1, 2, 2, 1}}}, "cov", "positive definite"},
      {"gaussian", {{"cov", std::vector<double>{1, 0, 0, 0}}}, "cov", "positive definite"},
      {"gaussian", {{"cov", std::vector<double>{2, 0.5, 0.4, 2}}}, "cov", "symmetric"},
      {"gaussian", {{"cov", std::vector<double>{1, 0, 0}}}, "cov", "4 entries"},
      {"gaussian", {{"dim", int64_t{3}}, {"cov", kCov2}}, "cov", "9 entries"},
      {"gaussian", {{"dim", int64_t{3}}, {"mean", kMean2}}, "mean", "3 entries"},
      {"gaussian", {{"mean", kMean3}}, "mean", "2 entries"},
  };
  for (const BadParams& c : cases) {
    SCOPED_TRACE(c.target + " " + c.param);
    const absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget(c.target, c.params);
    ASSERT_EQ(target.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(target.status().message(), HasSubstr("'" + c.target + "'"));
    EXPECT_THAT(target.status().message(), HasSubstr("'" + c.param + "'"));
    EXPECT_THAT(target.status().message(), HasSubstr(c.detail));
  }
  EXPECT_EQ(MakeTarget("eight_schools", {{"schools", int64_t{9}}}).status().message(),
            "target 'eight_schools' parameter 'schools' must be between 1 and 8, got 9");
}

TEST(TargetCatalogTest, GoodParametersAreAccepted) {
  // A real with an integral value is accepted for an int; a symmetric cov up to rounding too.
  std::unique_ptr<Target> funnel = MustMake("funnel", {{"dim", 4.0}});
  ASSERT_NE(funnel, nullptr);
  EXPECT_EQ(funnel->dim(), 4);
  std::unique_ptr<Target> gaussian =
      MustMake("gaussian", {{"cov", std::vector<double>{2, 0.3, 0.3 * (1 + 1e-15), 1}}});
  ASSERT_NE(gaussian, nullptr);
  EXPECT_EQ(gaussian->dim(), 2);
  std::unique_ptr<Target> one_school = MustMake("eight_schools", {{"schools", int64_t{1}}});
  ASSERT_NE(one_school, nullptr);
  EXPECT_EQ(one_school->dim(), 3);
}

}  // namespace
}  // namespace flowvi
