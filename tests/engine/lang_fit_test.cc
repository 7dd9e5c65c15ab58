// Constrained parameters fitted by a flow (the engine's Fitter), checked against closed-form
// posteriors of conjugate models in the constrained space: draw from the flow, map through the
// model's constraining transform, average, and compare with the exact posterior mean within a
// few Monte Carlo standard errors.
#include <cmath>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/core/rng.h"
#include "engine/fit/fit_options.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow.h"
#include "engine/flows/flow_spec.h"
#include "engine/lang/model.h"
#include "gtest/gtest.h"

namespace flowvi {
namespace {

struct Posterior {
  double mean;
  double mcse;  // of the mean of the draws
};

// Fits `source` with `flow_spec` and returns the mean of coordinate `coord` of `draws`
// constrained draws.
Posterior FitAndAverage(absl::string_view source, absl::string_view data,
                        absl::string_view flow_spec, int coord) {
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(source, data);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  auto target = (*model)->NewTarget();
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec(flow_spec);
  EXPECT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, target->dim());
  EXPECT_TRUE(flow.ok()) << flow.status();
  FitOptions options;
  options.iterations = 10000;
  options.batch_size = 128;
  options.learning_rate = 2e-3;
  options.seed = 17;
  absl::StatusOr<std::unique_ptr<Fitter>> fitter =
      Fitter::Create(flow->get(), target.get(), options);
  EXPECT_TRUE(fitter.ok()) << fitter.status();
  absl::StatusOr<FitSummary> summary = (*fitter)->Run();
  EXPECT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->skipped_steps, 0);

  constexpr int kDraws = 20000;
  std::unique_ptr<FlowWorkspace> ws = (*flow)->NewWorkspace(kDraws);
  Rng rng(99);
  (*flow)->Sample(rng, ws.get());
  Matrix x;
  (*model)->ConstrainBatch(ws->z(), &x);
  const auto row = x.row(coord).array();
  const double mean = row.mean();
  const double sd = std::sqrt((row - mean).square().sum() / (kDraws - 1));
  return {mean, sd / std::sqrt(static_cast<double>(kDraws))};
}

// Poisson counts with a gamma prior on the rate: lambda | y ~ Gamma(a + sum y, b + n).
TEST(LangFitTest, LowerBoundedRateMatchesGammaPoissonPosterior) {
  const std::string source = R"(
    data { int<lower=0> n; array[n] int<lower=0> y; real<lower=0> a; real<lower=0> b; }
    parameters { real<lower=0> lambda; }
    model {
      lambda ~ gamma(a, b);
      y ~ poisson(lambda);
    })";
  const std::string data = R"({"n": 6, "y": [3, 1, 4, 1, 5, 2], "a": 2, "b": 1})";
  const double exact = (2.0 + 16) / (1.0 + 6);
  for (const char* flow : {"planar*4", "meanfield"}) {
    const Posterior p = FitAndAverage(source, data, flow, 0);
    // Monte Carlo error, plus a small allowance for the approximation (a lognormal-like q
    // against a gamma posterior with shape 18).
    EXPECT_NEAR(p.mean, exact, 4 * p.mcse + 0.01 * exact) << flow;
  }
}

// Bernoulli trials with a beta prior: theta | y ~ Beta(a + k, b + n - k).
TEST(LangFitTest, ProbabilityMatchesBetaBinomialPosterior) {
  const std::string source = R"(
    data { int<lower=0> n; array[n] int<lower=0, upper=1> y; }
    parameters { real<lower=0, upper=1> theta; }
    model {
      theta ~ beta(2, 3);
      y ~ bernoulli(theta);
    })";
  const std::string data = R"({"n": 10, "y": [1, 0, 1, 1, 0, 1, 1, 1, 0, 1]})";
  const double exact = (2.0 + 7) / (2.0 + 3 + 10);
  for (const char* flow : {"planar*4", "meanfield"}) {
    const Posterior p = FitAndAverage(source, data, flow, 0);
    EXPECT_NEAR(p.mean, exact, 4 * p.mcse + 0.01 * exact) << flow;
  }
}

// Two constrained parameters in one fit: a probability used through binomial_logit(N, logit(p)),
// and a precision.
TEST(LangFitTest, TwoConstrainedParametersTogether) {
  const std::string source = R"(
    data { int<lower=0> N; int<lower=0, upper=N> k; int<lower=0> m; vector[m] x; }
    parameters { real<lower=0, upper=1> p; real<lower=0> tau; }
    model {
      p ~ beta(1, 1);
      k ~ binomial_logit(N, logit(p));
      tau ~ gamma(3, 2);
      x ~ normal(0, 1 / sqrt(tau));
    })";
  const std::string data = R"({"N": 20, "k": 6, "m": 5, "x": [0.5, -1.2, 0.3, 2.0, -0.7]})";
  // p | k ~ Beta(1 + 6, 1 + 14); tau | x ~ Gamma(3 + m / 2, 2 + sum x^2 / 2).
  const double sum_sq = 0.25 + 1.44 + 0.09 + 4.0 + 0.49;
  const Posterior p = FitAndAverage(source, data, "planar*4", 0);
  EXPECT_NEAR(p.mean, 7.0 / 22, 4 * p.mcse + 0.01 * 7.0 / 22);
  const Posterior tau = FitAndAverage(source, data, "planar*4", 1);
  const double exact_tau = (3 + 2.5) / (2 + sum_sq / 2);
  EXPECT_NEAR(tau.mean, exact_tau, 4 * tau.mcse + 0.01 * exact_tau);
}

}  // namespace
}  // namespace flowvi
