// Tests of Psis (engine/diagnostics/psis.h): agreement with R's loo 2.5.1 on fixtures made by
// tests/engine/testdata/make_psis_fixtures.R, plus checks that need no reference implementation
// (known Pareto shapes, closed-form log Z, input validation, the k̂ reading).
#include "engine/diagnostics/psis.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#ifndef FLOWVI_TESTDATA_DIR
#error "FLOWVI_TESTDATA_DIR must name tests/engine/testdata (see tests/engine/CMakeLists.txt)"
#endif

namespace flowvi {
namespace {

using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct LooCase {
  double pareto_k = 0.0;
  double n_eff = 0.0;
  Vector log_ratios;
  Vector log_weights;
};

// strtod, unlike operator>>, reads R's "Inf" and "-Inf".
double ParseDouble(const std::string& token) {
  char* end = nullptr;
  const double value = std::strtod(token.c_str(), &end);
  EXPECT_TRUE(end != token.c_str() && *end == '\0') << "bad number in fixture: " << token;
  return value;
}

std::map<std::string, LooCase> ReadFixtures() {
  const std::string path = std::string(FLOWVI_TESTDATA_DIR) + "/psis_fixtures.txt";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::map<std::string, LooCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream header(line);
    std::string tag, name;
    int s = 0;
    header >> tag >> name >> s;
    EXPECT_EQ(tag, "case") << line;
    if (tag != "case" || s <= 0) break;
    LooCase& c = cases[name];
    c.log_ratios.resize(s);
    c.log_weights.resize(s);
    std::string key, value;
    std::getline(in, line);
    std::istringstream(line) >> key >> value;
    EXPECT_EQ(key, "pareto_k");
    c.pareto_k = ParseDouble(value);
    std::getline(in, line);
    std::istringstream(line) >> key >> value;
    EXPECT_EQ(key, "n_eff");
    c.n_eff = ParseDouble(value);
    for (int i = 0; i < s; ++i) {
      std::string r, lw;
      std::getline(in, line);
      std::istringstream(line) >> r >> lw;
      c.log_ratios[i] = ParseDouble(r);
      c.log_weights[i] = ParseDouble(lw);
    }
  }
  return cases;
}

const std::map<std::string, LooCase>& Fixtures() {
  static const auto* const kCases = new std::map<std::string, LooCase>(ReadFixtures());
  return *kCases;
}

const std::vector<std::string>& CaseNames() {
  static const auto* const kNames = new std::vector<std::string>{
      "good_fit", "heavy_tail",   "very_heavy_tail", "small_s100", "neg_inf",
      "ties",     "ties_nan_fit", "constant",        "short_s20"};
  return *kNames;
}

TEST(PsisFixtureTest, HoldsExactlyTheExpectedCases) {
  std::vector<std::string> names;
  for (const auto& [name, c] : Fixtures()) names.push_back(name);
  EXPECT_THAT(names, ::testing::UnorderedElementsAreArray(CaseNames()));
}

class PsisMatchesLooTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PsisMatchesLooTest, KHatWeightsAndEss) {
  const auto it = Fixtures().find(GetParam());
  ASSERT_NE(it, Fixtures().end()) << "fixture case missing: " << GetParam();
  const LooCase& loo = it->second;
  const absl::StatusOr<PsisResult> result = Psis(loo.log_ratios);
  ASSERT_TRUE(result.ok()) << result.status();

  if (std::isinf(loo.pareto_k)) {
    EXPECT_EQ(result->k_hat, loo.pareto_k);
  } else {
    EXPECT_NEAR(result->k_hat, loo.pareto_k, 1e-8);
  }
  ASSERT_EQ(result->log_weights.size(), loo.log_weights.size());
  for (Eigen::Index i = 0; i < loo.log_weights.size(); ++i) {
    if (std::isinf(loo.log_weights[i])) {
      EXPECT_EQ(result->log_weights[i], loo.log_weights[i]) << "draw " << i;
      continue;
    }
    EXPECT_NEAR(result->log_weights[i], loo.log_weights[i], 1e-8) << "draw " << i;
  }
  EXPECT_NEAR(result->ess / loo.n_eff, 1.0, 1e-8);
}

INSTANTIATE_TEST_SUITE_P(Loo, PsisMatchesLooTest, ::testing::ValuesIn(CaseNames()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

// Uniform on (0, 1) from 53 random bits, so the test does not depend on how the standard
// library implements its distributions.
double Uniform(std::mt19937_64& gen) { return (static_cast<double>(gen() >> 11) + 0.5) * 0x1p-53; }

// log of S draws from a generalized Pareto with shape k and scale 1, by inverse CDF. Exceedances
// of a GPD over any threshold are again GPD with the same shape, so PSIS should recover k.
Vector LogGpdDraws(double k, int s, uint64_t seed) {
  std::mt19937_64 gen(seed);
  Vector r(s);
  for (int i = 0; i < s; ++i) {
    const double u = Uniform(gen);
    r[i] = std::log(std::expm1(-k * std::log1p(-u)) / k);
  }
  return r;
}

TEST(PsisTest, RecoversKnownParetoShape) {
  constexpr int kS = 100000;
  for (const double k : {0.3, 0.8}) {
    double sum = 0.0;
    constexpr int kReps = 10;
    for (int rep = 0; rep < kReps; ++rep) {
      const absl::StatusOr<PsisResult> result = Psis(LogGpdDraws(k, kS, 1234 + rep));
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_EQ(result->tail_length, 949);  // ceil(3 sqrt(1e5)).
      // One fit from 949 tail draws has a standard error of about (1 + k) / sqrt(949) <= 0.06,
      // so a single k̂ is only loosely pinned; the average over the replications is tight.
      EXPECT_NEAR(result->k_hat, k, 0.15) << "k = " << k << ", rep " << rep;
      sum += result->k_hat;
    }
    EXPECT_NEAR(sum / kReps, k, 0.05) << "k = " << k;
  }
}

TEST(PsisTest, ConstantRatiosAreNotFittedAndGiveFullEss) {
  // Like loo: a flat tail is not fitted (k̂ = inf), and the weights are uniform.
  constexpr int kS = 500;
  const double c = 3.7;
  const absl::StatusOr<PsisResult> result = Psis(Vector::Constant(kS, std::log(c)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->k_hat, kInf);
  EXPECT_TRUE(std::isnan(result->sigma));
  EXPECT_NEAR(result->ess, kS, 1e-9);
  for (Eigen::Index i = 0; i < kS; ++i) {
    EXPECT_NEAR(result->log_weights[i], -std::log(kS), 1e-12);
  }
  EXPECT_NEAR(result->log_z, std::log(c), 1e-14);
  EXPECT_EQ(result->log_z_se, 0.0);
}

TEST(PsisTest, LogZAndStandardErrorMatchDirectFormulas) {
  std::mt19937_64 gen(99);
  constexpr int kS = 2000;
  Vector r(kS);
  for (int i = 0; i < kS; ++i) r[i] = 2.0 * Uniform(gen) - 1.0 + std::log(Uniform(gen));
  const absl::StatusOr<PsisResult> result = Psis(r);
  ASSERT_TRUE(result.ok()) << result.status();

  // Straight from the definitions, without shifting by the maximum (the values are moderate).
  long double sum = 0.0L;
  for (int i = 0; i < kS; ++i) sum += std::exp(static_cast<long double>(r[i]));
  const long double mean = sum / kS;
  long double ss = 0.0L;
  for (int i = 0; i < kS; ++i) {
    const long double d = std::exp(static_cast<long double>(r[i])) - mean;
    ss += d * d;
  }
  const double sd = static_cast<double>(std::sqrt(ss / (kS - 1)));
  EXPECT_NEAR(result->log_z, static_cast<double>(std::log(mean)), 1e-12);
  EXPECT_NEAR(result->log_z_se, sd / (static_cast<double>(mean) * std::sqrt(kS)), 1e-12);

  // A shift of every log-ratio (an unknown normalizing constant) moves log Z and nothing else.
  const absl::StatusOr<PsisResult> shifted = Psis(r.array() + 500.0);
  ASSERT_TRUE(shifted.ok()) << shifted.status();
  EXPECT_NEAR(shifted->log_z, result->log_z + 500.0, 1e-10);
  EXPECT_NEAR(shifted->log_z_se, result->log_z_se, 1e-12);
  EXPECT_NEAR(shifted->k_hat, result->k_hat, 1e-9);
  EXPECT_LT((shifted->log_weights - result->log_weights).cwiseAbs().maxCoeff(), 1e-9);
}

TEST(PsisTest, WeightsAreNormalizedAndTruncated) {
  const Vector r = LogGpdDraws(1.5, 3000, 7);
  const absl::StatusOr<PsisResult> result = Psis(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->k_hat, 1.0);
  const Vector& lw = result->log_weights;
  const double max_lw = lw.maxCoeff();
  EXPECT_NEAR(max_lw + std::log((lw.array() - max_lw).exp().sum()), 0.0, 1e-12);
  // Truncation caps every weight at the largest raw ratio, which the largest draw keeps.
  Eigen::Index arg_max = 0;
  r.maxCoeff(&arg_max);
  EXPECT_EQ(lw[arg_max], max_lw);
  EXPECT_GT(result->ess, 1.0);
  EXPECT_LT(result->ess, 3000.0);
}

TEST(PsisTest, NegativeInfinityMeansZeroWeight) {
  std::mt19937_64 gen(5);
  Vector r(200);
  for (Eigen::Index i = 0; i < r.size(); ++i) r[i] = Uniform(gen);
  r[3] = -kInf;
  r[150] = -kInf;
  const absl::StatusOr<PsisResult> result = Psis(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(std::isfinite(result->k_hat));
  EXPECT_EQ(result->log_weights[3], -kInf);
  EXPECT_EQ(result->log_weights[150], -kInf);
  EXPECT_TRUE(std::isfinite(result->log_z));
}

TEST(PsisTest, NegativeInfinityInTheTailKeepsZeroWeight) {
  // 165 of 200 draws at -inf: the tail (M = 40) takes the 35 finite ones and 5 of the -inf ones,
  // so the cutoff is -inf, yet the fit is finite. loo would give those 5 smoothed weights; we keep
  // them at zero.
  Vector r = Vector::Constant(200, -kInf);
  for (int i = 0; i < 35; ++i) r[i * 5] = 0.05 * i;
  const absl::StatusOr<PsisResult> result = Psis(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->tail_length, 40);
  EXPECT_TRUE(std::isfinite(result->k_hat));
  for (Eigen::Index i = 0; i < r.size(); ++i) {
    if (r[i] == -kInf) {
      EXPECT_EQ(result->log_weights[i], -kInf) << i;
    } else {
      EXPECT_TRUE(std::isfinite(result->log_weights[i])) << i;
    }
  }
  EXPECT_FALSE(std::isnan(result->ess));
}

TEST(PsisTest, ShortTailGivesInfiniteKHatLikeLoo) {
  // loo: S = 20 has M = ceil(4) = 4 < 5, so no fit and k = Inf; S = 21 has M = 5 and is fitted.
  std::mt19937_64 gen(11);
  Vector r(21);
  for (Eigen::Index i = 0; i < r.size(); ++i) r[i] = Uniform(gen);
  const absl::StatusOr<PsisResult> short_result = Psis(r.head(20));
  ASSERT_TRUE(short_result.ok()) << short_result.status();
  EXPECT_EQ(short_result->tail_length, 4);
  EXPECT_EQ(short_result->k_hat, kInf);
  EXPECT_EQ(KHatReading(short_result->k_hat), "very bad");
  // Unsmoothed: the weights are just the normalized ratios.
  const double lse = std::log(r.head(20).array().exp().sum());
  for (Eigen::Index i = 0; i < 20; ++i) {
    EXPECT_NEAR(short_result->log_weights[i], r[i] - lse, 1e-14);
  }

  const absl::StatusOr<PsisResult> result = Psis(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->tail_length, 5);
  EXPECT_TRUE(std::isfinite(result->k_hat));

  const absl::StatusOr<PsisResult> two = Psis(Vector::LinSpaced(2, 0.0, 1.0));
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->k_hat, kInf);
}

TEST(PsisTest, LargeInputRuns) {
  const absl::StatusOr<PsisResult> result = Psis(LogGpdDraws(0.5, 1000000, 3));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->tail_length, 3000);
  EXPECT_NEAR(result->k_hat, 0.5, 0.1);
}

TEST(PsisTest, RejectsBadInput) {
  EXPECT_EQ(Psis(Vector()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Psis(Vector::Constant(1, 0.0)).status().code(), absl::StatusCode::kInvalidArgument);

  Vector r = Vector::LinSpaced(100, -1.0, 1.0);
  r[37] = kNaN;
  absl::StatusOr<PsisResult> result = Psis(r);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("[37]"));

  r[37] = 0.0;
  r[42] = kInf;
  result = Psis(r);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("[42]"));

  EXPECT_EQ(Psis(Vector::Constant(50, -kInf)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KHatReadingTest, Thresholds) {
  EXPECT_EQ(KHatReading(-0.3), "good");
  EXPECT_EQ(KHatReading(0.49), "good");
  EXPECT_EQ(KHatReading(0.5), "ok");
  EXPECT_EQ(KHatReading(0.7), "ok");
  EXPECT_EQ(KHatReading(0.70001), "bad");
  EXPECT_EQ(KHatReading(1.0), "bad");
  EXPECT_EQ(KHatReading(1.01), "very bad");
  EXPECT_EQ(KHatReading(kInf), "very bad");
  EXPECT_EQ(KHatReading(kNaN), "very bad");
}

}  // namespace
}  // namespace flowvi
