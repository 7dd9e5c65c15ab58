// Every function, operator and distribution of the language: the value against an independent
// formula written here with <cmath>, and the tape's gradient against finite differences, for
// scalar and vectorized forms, with parameters and data mixed.
#include <cmath>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/core/rng.h"
#include "engine/lang/kernels.h"
#include "engine/lang/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/testing/gradient_check.h"

namespace flowvi {
namespace {

constexpr double kPi = std::numbers::pi;

struct Case {
  std::string name;
  std::string source;
  std::string data;
  std::vector<double> point;                       // unconstrained parameters
  std::function<double(const Vector&)> reference;  // log density at the point
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

double LogDensityAt(lang::ModelTarget& target, const Vector& x) {
  RowVector lp(1);
  target.LogDensity(Matrix(x), &lp, nullptr);
  return lp[0];
}

class LangFunctionTest : public ::testing::TestWithParam<Case> {};

TEST_P(LangFunctionTest, ValueAndGradient) {
  const Case& c = GetParam();
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(c.source, c.data);
  ASSERT_TRUE(model.ok()) << model.status();
  auto target = (*model)->NewTarget();
  const Vector x =
      Eigen::Map<const Vector>(c.point.data(), static_cast<Eigen::Index>(c.point.size()));
  ASSERT_EQ(target->dim(), x.size());
  RowVector lp(1);
  Matrix grad(x.size(), 1);
  target->LogDensity(Matrix(x), &lp, &grad);
  EXPECT_TRUE(target->last_error().ok()) << target->last_error();
  const double ref = c.reference(x);
  EXPECT_NEAR(lp[0], ref, 1e-12 * std::max(1.0, std::abs(ref)));
  const Vector numeric =
      testing::NumericGradient([&](const Vector& v) { return LogDensityAt(*target, v); }, x, 1e-4);
  EXPECT_LT(testing::MaxRelativeError(grad.col(0), numeric), 2e-7)
      << "tape " << grad.col(0).transpose() << "\nnumeric " << numeric.transpose();
  // The same through a batch of several copies of the point (broadcast paths, N > 1).
  Matrix batch = x.replicate(1, 5);
  RowVector lp5(5);
  Matrix g5(x.size(), 5);
  target->LogDensity(batch, &lp5, &g5);
  // (Equal up to rounding: vectorized math differs from scalar math in the last bits.)
  for (int j = 0; j < 5; ++j) {
    EXPECT_NEAR(lp5[j], lp[0], 1e-14 * std::max(1.0, std::abs(lp[0])));
    EXPECT_LT(testing::MaxRelativeError(g5.col(j), grad.col(0)), 1e-14);
  }
}

// A case for `target += f(x)` with one real parameter x.
Case Unary(const std::string& f, double x, double (*ref)(double)) {
  return Case{f,
              absl::StrCat("parameters { real x; } model { target += ", f, "(x); }"),
              "",
              {x},
              [ref](const Vector& v) { return ref(v[0]); }};
}

// The vectorized form over vector[3], summed.
Case UnaryVec(const std::string& f, std::vector<double> x, double (*ref)(double)) {
  return Case{absl::StrCat(f, "_vector"),
              absl::StrCat("parameters { vector[3] x; } model { target += sum(", f, "(x)); }"), "",
              std::move(x), [ref](const Vector& v) { return ref(v[0]) + ref(v[1]) + ref(v[2]); }};
}

double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

std::vector<Case> FunctionCases() {
  std::vector<Case> cases = {
      Unary("exp", 0.7, [](double x) { return std::exp(x); }),
      Unary("log", 1.3, [](double x) { return std::log(x); }),
      Unary("log1p", 0.4, [](double x) { return std::log1p(x); }),
      Unary("expm1", -0.3, [](double x) { return std::expm1(x); }),
      Unary("sqrt", 2.2, [](double x) { return std::sqrt(x); }),
      Unary("square", -1.7, [](double x) { return x * x; }),
      Unary("abs", -0.8, [](double x) { return std::abs(x); }),
      Unary("fabs", 0.8, [](double x) { return std::abs(x); }),
      Unary("sin", 0.9, [](double x) { return std::sin(x); }),
      Unary("cos", 0.9, [](double x) { return std::cos(x); }),
      Unary("tanh", 0.4, [](double x) { return std::tanh(x); }),
      Unary("inv_logit", 0.3, [](double x) { return Sigmoid(x); }),
      Unary("logit", 0.3, [](double x) { return std::log(x / (1 - x)); }),
      Unary("log1m", 0.3, [](double x) { return std::log(1 - x); }),
      Unary("log_inv_logit", -0.6, [](double x) { return std::log(Sigmoid(x)); }),
      Unary("log1m_inv_logit", -0.6, [](double x) { return std::log(1 - Sigmoid(x)); }),
      Unary("inv", 1.7, [](double x) { return 1 / x; }),
      Unary("lgamma", 2.5, [](double x) { return std::lgamma(x); }),
      Unary("lgamma", 0.3, [](double x) { return std::lgamma(x); }),
      Unary("lgamma", 17.5, [](double x) { return std::lgamma(x); }),
      UnaryVec("exp", {0.1, -0.5, 1.2}, [](double x) { return std::exp(x); }),
      UnaryVec("log", {0.1, 0.5, 3.2}, [](double x) { return std::log(x); }),
      UnaryVec("log1p", {0.1, 0.5, 3.2}, [](double x) { return std::log1p(x); }),
      UnaryVec("expm1", {0.1, -0.5, 1.2}, [](double x) { return std::expm1(x); }),
      UnaryVec("sqrt", {0.1, 0.5, 3.2}, [](double x) { return std::sqrt(x); }),
      UnaryVec("square", {0.1, -0.5, 3.2}, [](double x) { return x * x; }),
      UnaryVec("abs", {0.1, -0.5, 3.2}, [](double x) { return std::abs(x); }),
      UnaryVec("sin", {0.1, -0.5, 3.2}, [](double x) { return std::sin(x); }),
      UnaryVec("cos", {0.1, -0.5, 3.2}, [](double x) { return std::cos(x); }),
      UnaryVec("tanh", {0.1, -0.5, 3.2}, [](double x) { return std::tanh(x); }),
      UnaryVec("inv_logit", {0.1, -0.5, 3.2}, [](double x) { return Sigmoid(x); }),
      UnaryVec("log_inv_logit", {0.1, -0.5, 3.2}, [](double x) { return std::log(Sigmoid(x)); }),
      UnaryVec("inv", {0.1, -0.5, 3.2}, [](double x) { return 1 / x; }),
      UnaryVec("lgamma", {0.1, 1.5, 12.2}, [](double x) { return std::lgamma(x); }),
  };
  const std::string two = "parameters { real x; real y; } model { target += ";
  auto binary = [&](const std::string& name, const std::string& expr, double x, double y,
                    double (*ref)(double, double)) {
    return Case{name, absl::StrCat(two, expr, "; }"), "", {x, y}, [ref](const Vector& v) {
                  return ref(v[0], v[1]);
                }};
  };
  cases.push_back(binary("add", "x + y", 0.3, -1.2, [](double x, double y) { return x + y; }));
  cases.push_back(binary("sub", "x - y", 0.3, -1.2, [](double x, double y) { return x - y; }));
  cases.push_back(binary("mul", "x * y", 0.3, -1.2, [](double x, double y) { return x * y; }));
  cases.push_back(binary("div", "x / y", 0.3, -1.2, [](double x, double y) { return x / y; }));
  cases.push_back(
      binary("pow_op", "x ^ y", 1.3, -1.2, [](double x, double y) { return std::pow(x, y); }));
  cases.push_back(
      binary("pow_fn", "pow(x, y)", 0.7, 2.5, [](double x, double y) { return std::pow(x, y); }));
  cases.push_back(binary("log_sum_exp2", "log_sum_exp(x, y)", 0.3, -1.2,
                         [](double x, double y) { return std::log(std::exp(x) + std::exp(y)); }));
  cases.push_back(binary("constants",
                         "2 * x - x / 3 + 3 / y - 1 + (1 - x) + x ^ 3 + 2 ^ y + y ^ 2 + x ^ 0.5 + "
                         "y ^ -1 + x ^ 1 + 0 - x",
                         1.3, 0.7, [](double x, double y) {
                           return 2 * x - x / 3 + 3 / y - 1 + (1 - x) + std::pow(x, 3) +
                                  std::pow(2, y) + y * y + std::sqrt(x) + 1 / y + x - x;
                         }));
  cases.push_back(binary("unary_minus_and_cond", "-x + (1 > 0 ? y : x) - (-y)", 0.4, 0.9,
                         [](double x, double y) { return -x + y + y; }));
  const std::string vec = "parameters { vector[4] v; vector[4] w; } model { target += ";
  auto vector_case = [&](const std::string& name, const std::string& expr,
                         double (*ref)(const Vector&, const Vector&)) {
    return Case{
        name,
        absl::StrCat("data { matrix[2, 4] X; vector[4] d; array[3] int idx; }\n", vec, expr, "; }"),
        R"({"X": [[1, 2, 3, 4], [-1, 0.5, 2, -3]], "d": [0.5, -1, 2, 3], "idx": [4, 1, 4]})",
        {0.3, -0.7, 1.1, 0.2, -0.4, 0.8, 0.05, 1.6},
        [ref](const Vector& x) { return ref(x.head(4), x.tail(4)); }};
  };
  cases.push_back(
      vector_case("sum", "sum(v)", [](const Vector& v, const Vector&) { return v.sum(); }));
  cases.push_back(
      vector_case("mean", "mean(v)", [](const Vector& v, const Vector&) { return v.mean(); }));
  cases.push_back(vector_case("log_sum_exp", "log_sum_exp(v)", [](const Vector& v, const Vector&) {
    return std::log(v.array().exp().sum());
  }));
  cases.push_back(vector_case("dot_product", "dot_product(v, w)",
                              [](const Vector& v, const Vector& w) { return v.dot(w); }));
  cases.push_back(vector_case("dot_product_self", "dot_product(v, v)",
                              [](const Vector& v, const Vector&) { return v.dot(v); }));
  cases.push_back(vector_case("row_times_col", "v' * w",
                              [](const Vector& v, const Vector& w) { return v.dot(w); }));
  cases.push_back(
      vector_case("dot_data", "dot_product(d, w) + d' * v", [](const Vector& v, const Vector& w) {
        Vector d(4);
        d << 0.5, -1, 2, 3;
        return d.dot(w) + d.dot(v);
      }));
  cases.push_back(vector_case("matvec", "sum(square(X * v)) + sum(w' * X')",
                              [](const Vector& v, const Vector& w) {
                                Eigen::MatrixXd x(2, 4);
                                x << 1, 2, 3, 4, -1, 0.5, 2, -3;
                                return (x * v).squaredNorm() + (x * w).sum();
                              }));
  cases.push_back(vector_case("elementwise",
                              "sum(v .* w) + sum(v ./ (w + 3)) + sum(v + w) - sum(2 * v - w / 2) + "
                              "sum(v .^ 2) + sum(pow(w, 3))",
                              [](const Vector& v, const Vector& w) {
                                return v.dot(w) + (v.array() / (w.array() + 3)).sum() + v.sum() +
                                       w.sum() - (2 * v - w / 2).sum() + v.squaredNorm() +
                                       w.array().cube().sum();
                              }));
  cases.push_back(vector_case("indexing",
                              "v[2] * w[3] + sum(v[2:4]) + sum(w[:2]) + sum(v[idx]) + sum(w[3:])",
                              [](const Vector& v, const Vector& w) {
                                return v[1] * w[2] + v.tail(3).sum() + w.head(2).sum() +
                                       (v[3] + v[0] + v[3]) + w.tail(2).sum();
                              }));
  cases.push_back(vector_case("locals_and_loops", R"(0;
    vector[4] u;
    real acc = 0;
    for (i in 1:4) {
      u[i] = v[5 - i] * w[i];
      if (i == 2) continue;
      acc += u[i];
    }
    for (x in v) acc += square(x);
    target += acc + sum(rep_vector(v[1], 3)) + sum(to_vector({v[2], w[2], 1.5})))",
                              [](const Vector& v, const Vector& w) {
                                double acc = 0;
                                for (int i = 0; i < 4; ++i) {
                                  if (i != 1) acc += v[3 - i] * w[i];
                                }
                                return acc + v.squaredNorm() + 3 * v[0] + v[1] + w[1] + 1.5;
                              }));
  return cases;
}

INSTANTIATE_TEST_SUITE_P(LangFunctions, LangFunctionTest, ::testing::ValuesIn(FunctionCases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           return absl::StrCat(param_info.param.name, "_", param_info.index);
                         });

double LogNormalPdf(double y, double mu, double sigma) {
  const double z = (y - mu) / sigma;
  return -0.5 * z * z - std::log(sigma) - 0.5 * std::log(2 * kPi);
}

double LogChoose(double n, double k) {
  return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1);
}

// Each distribution with every argument a parameter (or data, for the integer ones), through
// both `~` and `_lpdf` / `_lpmf`.
std::vector<Case> DistributionCases() {
  struct Dist {
    std::string name;
    std::string args;  // e.g. "y | mu, sigma"
    std::string decls;
    std::string data_decls;
    std::string data;
    std::vector<double> point;
    std::function<double(const Vector&)> ref;
  };
  const std::vector<Dist> dists = {
      {"normal",
       "y | mu, sigma",
       "real y; real mu; real sigma;",
       "",
       "",
       {0.3, -0.2, 1.4},
       [](const Vector& v) { return LogNormalPdf(v[0], v[1], v[2]); }},
      {"std_normal",
       "y",
       "real y;",
       "",
       "",
       {0.7},
       [](const Vector& v) { return LogNormalPdf(v[0], 0, 1); }},
      {"student_t",
       "y | nu, mu, sigma",
       "real y; real nu; real mu; real sigma;",
       "",
       "",
       {0.5, 3.5, 0.1, 1.2},
       [](const Vector& v) {
         const double y = v[0], nu = v[1], mu = v[2], s = v[3], z = (y - mu) / s;
         return std::lgamma((nu + 1) / 2) - std::lgamma(nu / 2) - 0.5 * std::log(nu * kPi) -
                std::log(s) - (nu + 1) / 2 * std::log1p(z * z / nu);
       }},
      {"cauchy",
       "y | mu, sigma",
       "real y; real mu; real sigma;",
       "",
       "",
       {0.5, -0.3, 2},
       [](const Vector& v) {
         const double z = (v[0] - v[1]) / v[2];
         return -std::log(kPi * v[2] * (1 + z * z));
       }},
      {"exponential",
       "y | beta",
       "real y; real beta;",
       "",
       "",
       {0.8, 1.7},
       [](const Vector& v) { return std::log(v[1]) - v[1] * v[0]; }},
      {"gamma",
       "y | alpha, beta",
       "real y; real alpha; real beta;",
       "",
       "",
       {1.3, 2.5, 1.5},
       [](const Vector& v) {
         const double y = v[0], a = v[1], b = v[2];
         return a * std::log(b) - std::lgamma(a) + (a - 1) * std::log(y) - b * y;
       }},
      {"lognormal",
       "y | mu, sigma",
       "real y; real mu; real sigma;",
       "",
       "",
       {1.6, 0.2, 0.7},
       [](const Vector& v) { return LogNormalPdf(std::log(v[0]), v[1], v[2]) - std::log(v[0]); }},
      {"beta",
       "y | alpha, beta",
       "real y; real alpha; real beta;",
       "",
       "",
       {0.35, 2.2, 3.1},
       [](const Vector& v) {
         const double y = v[0], a = v[1], b = v[2];
         return (a - 1) * std::log(y) + (b - 1) * std::log1p(-y) + std::lgamma(a + b) -
                std::lgamma(a) - std::lgamma(b);
       }},
      {"uniform",
       "y | alpha, beta",
       "real y; real alpha; real beta;",
       "",
       "",
       {0.5, -1, 2},
       [](const Vector& v) { return -std::log(v[2] - v[1]); }},
      {"bernoulli",
       "k | theta",
       "real theta;",
       "array[3] int k;",
       R"({"k": [1, 0, 1]})",
       {0.3},
       [](const Vector& v) { return 2 * std::log(v[0]) + std::log1p(-v[0]); }},
      {"bernoulli_logit",
       "k | alpha",
       "real alpha;",
       "array[3] int k;",
       R"({"k": [1, 0, 1]})",
       {0.4},
       [](const Vector& v) { return 2 * std::log(Sigmoid(v[0])) + std::log(1 - Sigmoid(v[0])); }},
      {"binomial",
       "k | n, theta",
       "real theta;",
       "array[2] int k; array[2] int n;",
       R"({"k": [3, 0], "n": [10, 4]})",
       {0.35},
       [](const Vector& v) {
         const double t = v[0];
         return LogChoose(10, 3) + 3 * std::log(t) + 7 * std::log1p(-t) + 4 * std::log1p(-t);
       }},
      {"binomial_logit",
       "k | n, alpha",
       "real alpha;",
       "array[2] int k; int n;",
       R"({"k": [3, 10], "n": 10})",
       {-0.5},
       [](const Vector& v) {
         const double t = Sigmoid(v[0]);
         return LogChoose(10, 3) + 3 * std::log(t) + 7 * std::log1p(-t) + 10 * std::log(t);
       }},
      {"poisson",
       "k | lambda",
       "real lambda;",
       "array[2] int k;",
       R"({"k": [4, 0]})",
       {2.5},
       [](const Vector& v) { return 4 * std::log(v[0]) - 2 * v[0] - std::lgamma(5); }},
      {"poisson_log",
       "k | alpha",
       "real alpha;",
       "array[2] int k;",
       R"({"k": [4, 0]})",
       {0.7},
       [](const Vector& v) { return 4 * v[0] - 2 * std::exp(v[0]) - std::lgamma(5); }},
  };
  std::vector<Case> cases;
  for (const Dist& d : dists) {
    const bool discrete = d.name.find("bernoulli") == 0 || d.name.find("binomial") == 0 ||
                          d.name.find("poisson") == 0;
    const std::string data_block =
        d.data_decls.empty() ? "" : absl::StrCat("data { ", d.data_decls, " }\n");
    const std::string params = absl::StrCat("parameters { ", d.decls, " }\n");
    const size_t bar = d.args.find('|');
    const std::string variate =
        d.args.substr(0, bar == std::string::npos ? d.args.size() : bar - 1);
    const std::string rest = bar == std::string::npos ? "" : d.args.substr(bar + 2);
    cases.push_back(Case{absl::StrCat(d.name, "_lpdf"),
                         absl::StrCat(data_block, params, "model { target += ", d.name,
                                      discrete ? "_lpmf(" : "_lpdf(", d.args, "); }"),
                         d.data, d.point, d.ref});
    cases.push_back(Case{
        absl::StrCat(d.name, "_tilde"),
        absl::StrCat(data_block, params, "model { ", variate, " ~ ", d.name, "(", rest, "); }"),
        d.data, d.point, d.ref});
  }
  // Vectorized over vectors and arrays, with data and parameters mixed and broadcast.
  cases.push_back(Case{"normal_vectorized",
                       "data { vector[3] y; array[3] real s; }\n"
                       "parameters { vector[3] mu; real sigma; }\n"
                       "model { y ~ normal(mu, sigma); mu ~ normal(0, s); mu ~ normal(y, 2); }",
                       R"({"y": [0.5, -1, 2], "s": [1, 2, 3]})",
                       {0.1, 0.2, -0.3, 1.3},
                       [](const Vector& v) {
                         const double y[3] = {0.5, -1, 2}, s[3] = {1, 2, 3};
                         double lp = 0;
                         for (int i = 0; i < 3; ++i) {
                           lp += LogNormalPdf(y[i], v[i], v[3]) + LogNormalPdf(v[i], 0, s[i]) +
                                 LogNormalPdf(v[i], y[i], 2);
                         }
                         return lp;
                       }});
  cases.push_back(Case{"student_t_vectorized_params",
                       "parameters { vector[2] y; vector[2] nu; real mu; vector[2] sigma; }\n"
                       "model { y ~ student_t(nu, mu, sigma); }",
                       "",
                       {0.4, -0.8, 2.5, 7, 0.2, 1.1, 0.6},
                       [](const Vector& v) {
                         double lp = 0;
                         for (int i = 0; i < 2; ++i) {
                           const double y = v[i], nu = v[2 + i], mu = v[4], s = v[5 + i],
                                        z = (y - mu) / s;
                           lp += std::lgamma((nu + 1) / 2) - std::lgamma(nu / 2) -
                                 0.5 * std::log(nu * kPi) - std::log(s) -
                                 (nu + 1) / 2 * std::log1p(z * z / nu);
                         }
                         return lp;
                       }});
  cases.push_back(Case{"gamma_beta_vectorized",
                       "data { vector[2] y; }\n"
                       "parameters { vector[2] a; real b; real p; }\n"
                       "model { y ~ gamma(a, b); p ~ beta(a, b); }",
                       R"({"y": [0.5, 2.5]})",
                       {1.5, 3, 0.8, 0.3},
                       [](const Vector& v) {
                         const double y[2] = {0.5, 2.5};
                         double lp = 0;
                         for (int i = 0; i < 2; ++i) {
                           const double a = v[i], b = v[2], p = v[3];
                           lp += a * std::log(b) - std::lgamma(a) + (a - 1) * std::log(y[i]) -
                                 b * y[i];
                           lp += (a - 1) * std::log(p) + (b - 1) * std::log1p(-p) +
                                 std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b);
                         }
                         return lp;
                       }});
  cases.push_back(Case{
      "logistic_regression",
      "data { int N; int K; matrix[N, K] x; array[N] int<lower=0, upper=1> y; }\n"
      "parameters { real alpha; vector[K] beta; }\n"
      "model { alpha ~ normal(0, 5); beta ~ normal(0, 1); y ~ bernoulli_logit(alpha + x * beta); }",
      R"({"N": 4, "K": 2, "x": [[1, 2], [0.5, -1], [-2, 0.3], [0, 1]], "y": [1, 0, 0, 1]})",
      {0.2, -0.5, 0.7},
      [](const Vector& v) {
        const double x[4][2] = {{1, 2}, {0.5, -1}, {-2, 0.3}, {0, 1}};
        const int y[4] = {1, 0, 0, 1};
        double lp = LogNormalPdf(v[0], 0, 5) + LogNormalPdf(v[1], 0, 1) + LogNormalPdf(v[2], 0, 1);
        for (int i = 0; i < 4; ++i) {
          const double eta = v[0] + x[i][0] * v[1] + x[i][1] * v[2];
          lp += y[i] ? std::log(Sigmoid(eta)) : std::log(1 - Sigmoid(eta));
        }
        return lp;
      }});
  cases.push_back(Case{"hierarchical_multi_index",
                       "data { int N; array[N] int g; vector[N] y; }\n"
                       "parameters { vector[2] a; real<lower=0> s; }\n"
                       "model { y ~ normal(a[g], s); a ~ normal(0, 1); }",
                       R"({"N": 3, "g": [1, 2, 2], "y": [0.3, -0.4, 1.1]})",
                       {0.1, -0.2, 0.3},
                       [](const Vector& v) {
                         const double s = std::exp(v[2]);
                         return LogNormalPdf(0.3, v[0], s) + LogNormalPdf(-0.4, v[1], s) +
                                LogNormalPdf(1.1, v[1], s) + LogNormalPdf(v[0], 0, 1) +
                                LogNormalPdf(v[1], 0, 1) + v[2];
                       }});
  cases.push_back(Case{
      "bounded_parameters",
      "parameters { real<lower=1> a; real<upper=2> b; real<lower=-1, upper=3> c; "
      "vector<lower=0>[2] d; }\n"
      "model { target += a + b + c + sum(d); }",
      "",
      {0.3, -0.2, 0.5, 0.1, -1.5},
      [](const Vector& v) {
        const double a = 1 + std::exp(v[0]), b = 2 - std::exp(v[1]), c = -1 + 4 * Sigmoid(v[2]);
        const double jac =
            v[0] + v[1] + std::log(4 * Sigmoid(v[2]) * (1 - Sigmoid(v[2]))) + v[3] + v[4];
        return a + b + c + std::exp(v[3]) + std::exp(v[4]) + jac;
      }});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(LangDistributions, LangFunctionTest,
                         ::testing::ValuesIn(DistributionCases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           return absl::StrCat(param_info.param.name, "_", param_info.index);
                         });

TEST(LangKernelsTest, LogGammaAndDigammaAgainstReferences) {
  for (double x : {1e-8, 0.1, 0.5, 1.0, 1.5, 2.0, 3.7, 9.99, 10.0, 25.5, 171.3, 1e5, -0.5, -2.3}) {
    EXPECT_NEAR(lang::LogGamma(x), std::lgamma(x), 1e-13 * std::max(1.0, std::abs(std::lgamma(x))))
        << x;
    if (x < 1e-3) continue;
    // digamma by a central difference of lgamma (step scaled to x).
    const double h = 1e-5 * std::max(1.0, std::abs(x)) * (x < 1 ? x : 1);
    const double fd = (std::lgamma(x + h) - std::lgamma(x - h)) / (2 * h);
    EXPECT_NEAR(lang::Digamma(x), fd, 1e-6 * std::max(1.0, std::abs(fd))) << x;
  }
  EXPECT_NEAR(lang::Digamma(1.0), -0.57721566490153286, 1e-15);
  EXPECT_NEAR(lang::Digamma(1e-8), -1e8 - 0.57721566490153286 + 1.6449340668 * 1e-8, 1e-6);
  EXPECT_EQ(lang::LogGamma(0.0), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(lang::Digamma(-2.0)));
}

}  // namespace
}  // namespace flowvi
