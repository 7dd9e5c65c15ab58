// Models written in the language against the built-in targets (eight schools centered and
// non-centered, u1, the funnel): log density and gradient agree to 1e-12 at random points.
// Also the public API around a compiled model: names, transforms, ConstrainBatch and its
// inverse, the 2-D shorthand, batch-size changes and thread-safe sharing of a compiled model.
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/core/rng.h"
#include "engine/lang/model.h"
#include "engine/targets/catalog.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/testing/gradient_check.h"

namespace flowvi {
namespace {

using ::testing::ElementsAre;

constexpr char kEightSchoolsData[] = R"({
  "J": 8,
  "y": [28, 8, -3, 7, -1, 1, 18, 12],
  "sigma": [15, 10, 16, 11, 9, 11, 10, 18]
})";

// Every prior term once, with all normalizing constants (as the built-in), including log 2 of
// the half-Cauchy: Stan's cauchy is the full Cauchy.
constexpr char kEightSchoolsCentered[] = R"(
data {
  int<lower=0> J;
  array[J] real y;
  array[J] real<lower=0> sigma;
}
parameters {
  vector[J] theta;
  real mu;
  real<lower=0> tau;
}
model {
  mu ~ normal(0, 5);
  tau ~ cauchy(0, 5);
  target += log(2);
  theta ~ normal(mu, tau);
  y ~ normal(theta, sigma);
}
)";

constexpr char kEightSchoolsNonCentered[] = R"(
data {
  int<lower=0> J;
  real y[J];                 // the old array syntax works too
  real<lower=0> sigma[J];
}
parameters {
  vector[J] eta;
  real mu;
  real<lower=0> tau;
}
transformed parameters {
  vector[J] theta = mu + tau * eta;
}
model {
  mu ~ normal(0, 5);
  target += cauchy_lpdf(tau | 0, 5) + log(2);
  eta ~ std_normal();
  y ~ normal(theta, sigma);
}
)";

constexpr char kU1[] = R"(
parameters {
  real z1;
  real z2;
}
model {
  target += -0.5 * square((sqrt(square(z1) + square(z2)) - 2) / 0.4)
            + log_sum_exp(-0.5 * ((z1 - 2) / 0.6)^2, -0.5 * ((z1 + 2) / 0.6)^2);
}
)";

constexpr char kFunnel[] = R"(
parameters {
  real v;
  vector[9] x;
}
model {
  v ~ normal(0, 3);
  x ~ normal(0, exp(v / 2));
}
)";

std::unique_ptr<lang::CompiledModel> MustCompile(absl::string_view source,
                                                 absl::string_view data = "") {
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(source, data);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

// Compares log p and its gradient of two targets at `n` random points (columns of one batch)
// drawn from N(center, scale^2).
void ExpectSameDensity(Target& mine, Target& builtin, const Vector& center, double scale,
                       uint64_t seed) {
  ASSERT_EQ(mine.dim(), builtin.dim());
  const int d = mine.dim();
  const int n = 64;
  Rng rng(seed);
  Matrix z(d, n);
  rng.FillNormal(&z);
  z = (scale * z).colwise() + center;
  RowVector lp_a(n), lp_b(n);
  Matrix g_a(d, n), g_b(d, n);
  mine.LogDensity(z, &lp_a, &g_a);
  builtin.LogDensity(z, &lp_b, &g_b);
  for (int j = 0; j < n; ++j) {
    EXPECT_NEAR(lp_a[j], lp_b[j], 1e-12 * std::max(1.0, std::abs(lp_b[j]))) << "column " << j;
    for (int i = 0; i < d; ++i) {
      EXPECT_NEAR(g_a(i, j), g_b(i, j), 1e-12 * std::max(1.0, std::abs(g_b(i, j))))
          << "coordinate " << i << " column " << j;
    }
  }
  // Without the gradient, the same values.
  RowVector lp_c(n);
  mine.LogDensity(z, &lp_c, nullptr);
  EXPECT_EQ(lp_c, lp_a);
}

std::unique_ptr<Target> Builtin(absl::string_view name, const ParamMap& params = {}) {
  absl::StatusOr<std::unique_ptr<Target>> t = MakeTarget(name, params);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(LangModelTest, EightSchoolsCenteredMatchesBuiltin) {
  auto model = MustCompile(kEightSchoolsCentered, kEightSchoolsData);
  ASSERT_NE(model, nullptr);
  auto builtin = Builtin("eight_schools", {{"centered", true}});
  auto target = model->NewTarget();
  Vector center = Vector::Zero(10);
  center.head(8).setConstant(5);
  center[8] = 4;
  center[9] = 1;
  ExpectSameDensity(*target, *builtin, center, 3.0, 1);
  ExpectSameDensity(*target, *builtin, Vector::Zero(10), 1.0, 2);
}

TEST(LangModelTest, EightSchoolsNonCenteredMatchesBuiltin) {
  auto model = MustCompile(kEightSchoolsNonCentered, kEightSchoolsData);
  ASSERT_NE(model, nullptr);
  auto builtin = Builtin("eight_schools", {{"centered", false}});
  auto target = model->NewTarget();
  ExpectSameDensity(*target, *builtin, Vector::Zero(10), 1.5, 3);
}

TEST(LangModelTest, U1MatchesBuiltin) {
  auto model = MustCompile(kU1);
  ASSERT_NE(model, nullptr);
  auto builtin = Builtin("u1");
  auto target = model->NewTarget();
  ExpectSameDensity(*target, *builtin, Vector::Zero(2), 2.0, 4);
}

TEST(LangModelTest, U1ShorthandMatchesBuiltin) {
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileExpression2D(
      "-0.5 * square((sqrt(z1^2 + z2^2) - 2) / 0.4) + "
      "log_sum_exp(-0.5 * square((z1 - 2) / 0.6), -0.5 * square((z1 + 2) / 0.6))");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_THAT((*model)->names(), ElementsAre("z1", "z2"));
  auto builtin = Builtin("u1");
  auto target = (*model)->NewTarget();
  ExpectSameDensity(*target, *builtin, Vector::Zero(2), 2.0, 5);
}

TEST(LangModelTest, FunnelMatchesBuiltin) {
  auto model = MustCompile(kFunnel);
  ASSERT_NE(model, nullptr);
  auto builtin = Builtin("funnel");
  auto target = model->NewTarget();
  ExpectSameDensity(*target, *builtin, Vector::Zero(10), 2.0, 6);
}

TEST(LangModelTest, NamesAndTransforms) {
  auto model = MustCompile(kEightSchoolsCentered, kEightSchoolsData);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->dim(), 10);
  EXPECT_THAT(model->names(),
              ElementsAre("theta[1]", "theta[2]", "theta[3]", "theta[4]", "theta[5]", "theta[6]",
                          "theta[7]", "theta[8]", "mu", "tau"));
  EXPECT_EQ(model->unconstrained_names()[9], "log(tau)");
  EXPECT_EQ(model->NewTarget()->coordinate_names()[9], "log(tau)");
  EXPECT_EQ(model->transforms()[9].kind, lang::ParamTransform::Kind::kLower);
}

TEST(LangModelTest, ArrayOfVectorNamesAreArrayMajor) {
  auto model = MustCompile(R"(
    parameters { array[2] vector<lower=-1, upper=2>[3] x; real<upper=4> y; }
    model { for (i in 1:2) x[i] ~ normal(0, 1); y ~ normal(0, 1); })");
  ASSERT_NE(model, nullptr);
  EXPECT_THAT(model->names(),
              ElementsAre("x[1,1]", "x[1,2]", "x[1,3]", "x[2,1]", "x[2,2]", "x[2,3]", "y"));
  EXPECT_EQ(model->unconstrained_names()[0], "logit((x[1,1] - -1) / 3)");
  EXPECT_EQ(model->unconstrained_names()[6], "log(4 - y)");
}

TEST(LangModelTest, ConstrainUnconstrainAndJacobian) {
  auto model = MustCompile(R"(
    parameters { real a; real<lower=1> b; real<upper=-2> c; real<lower=0, upper=1> p;
                 real<lower=-3, upper=5> q; }
    model { })");
  ASSERT_NE(model, nullptr);
  Matrix u(5, 3);
  u << 0.3, -1, 2,  //
      0.5, -4, 3,   //
      -0.2, 1, 0,   //
      0.1, -6, 6,   //
      2, -0.5, 0;
  Matrix x;
  model->ConstrainBatch(u, &x);
  for (int j = 0; j < 3; ++j) {
    EXPECT_DOUBLE_EQ(x(0, j), u(0, j));
    EXPECT_DOUBLE_EQ(x(1, j), 1 + std::exp(u(1, j)));
    EXPECT_DOUBLE_EQ(x(2, j), -2 - std::exp(u(2, j)));
    EXPECT_DOUBLE_EQ(x(3, j), 1 / (1 + std::exp(-u(3, j))));
    EXPECT_DOUBLE_EQ(x(4, j), -3 + 8 / (1 + std::exp(-u(4, j))));
  }
  Matrix back;
  ASSERT_TRUE(model->UnconstrainBatch(x, &back).ok());
  EXPECT_LT((back - u).cwiseAbs().maxCoeff(), 1e-9);
  // The model's density is exactly the log-Jacobian (its model block is empty).
  RowVector jac, lp(3);
  model->LogJacobianBatch(u, &jac);
  auto target = model->NewTarget();
  target->LogDensity(u, &lp, nullptr);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(lp[j], jac[j], 1e-12);
  // The Jacobian against finite differences of the constraining map.
  for (int j = 0; j < 3; ++j) {
    double logdet = 0;
    for (int i = 0; i < 5; ++i) {
      const double h = 1e-6;
      Matrix up = u.col(j), dn = u.col(j);
      up(i, 0) += h;
      dn(i, 0) -= h;
      Matrix xu, xd;
      model->ConstrainBatch(up, &xu);
      model->ConstrainBatch(dn, &xd);
      logdet += std::log(std::abs(xu(i, 0) - xd(i, 0)) / (2 * h));
    }
    EXPECT_NEAR(jac[j], logdet, 1e-6);
  }
  Matrix outside = x;
  outside(3, 1) = 1.5;
  absl::Status s = model->UnconstrainBatch(outside, &back);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("'p'"));
}

TEST(LangModelTest, BatchSizeChangesAndColumnsAreIndependent) {
  auto model = MustCompile(kEightSchoolsNonCentered, kEightSchoolsData);
  ASSERT_NE(model, nullptr);
  auto target = model->NewTarget();
  Rng rng(9);
  Matrix z(10, 7);
  rng.FillNormal(&z);
  RowVector lp(7);
  Matrix g(10, 7);
  target->LogDensity(z, &lp, &g);
  for (int j = 0; j < 7; ++j) {
    Matrix col = z.col(j);
    RowVector l1(1);
    Matrix g1(10, 1);
    target->LogDensity(col, &l1, &g1);
    EXPECT_DOUBLE_EQ(l1[0], lp[j]);
    EXPECT_LT((g1.col(0) - g.col(j)).cwiseAbs().maxCoeff(), 1e-14);
  }
}

TEST(LangModelTest, CompiledModelIsSharedAcrossThreads) {
  auto model = MustCompile(kEightSchoolsCentered, kEightSchoolsData);
  ASSERT_NE(model, nullptr);
  Rng rng(10);
  Matrix z(10, 32);
  rng.FillNormal(&z);
  RowVector expected(32);
  model->NewTarget()->LogDensity(z, &expected, nullptr);
  std::vector<RowVector> results(4, RowVector(32));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto target = model->NewTarget();
      Matrix g(10, 32);
      for (int k = 0; k < 50; ++k) target->LogDensity(z, &results[t], &g);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const RowVector& r : results) EXPECT_EQ(r, expected);
}

}  // namespace
}  // namespace flowvi
