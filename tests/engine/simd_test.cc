// The vectorized math of engine/core/simd.h against long-double references: tanh (and the
// 1 − tanh² that kernels derive from the same division) over the whole real line including
// tiny, subnormal, signed-zero, large and non-finite arguments, and log.
#include "engine/core/simd.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/testing/ulp.h"

namespace flowvi {
namespace {

using simd::Vec;

using testing::UlpError;

// Arguments spread over many magnitudes, both signs: log-uniform in [1e-320, 400] plus uniform
// in [−25, 25].
std::vector<double> Arguments(int n) {
  std::mt19937_64 gen(42);
  std::uniform_real_distribution<double> log_mag(std::log(1e-320), std::log(400.0));
  std::uniform_real_distribution<double> uniform(-25.0, 25.0);
  std::vector<double> xs;
  for (int i = 0; i < n; ++i) {
    const double m = std::exp(log_mag(gen));
    xs.push_back(i % 2 == 0 ? m : -m);
    xs.push_back(uniform(gen));
  }
  return xs;
}

TEST(SimdTanhTest, WithinFewUlpsOfTanhEverywhere) {
  double worst = 0, worst_x = 0;
  for (double x : Arguments(200000)) {
    const double e = UlpError(simd::FastTanh(x), std::tanh(static_cast<long double>(x)));
    if (e > worst) {
      worst = e;
      worst_x = x;
    }
  }
  EXPECT_LE(worst, 6.0) << "at x = " << worst_x;
}

TEST(SimdTanhTest, RelativeAccuracyForTinyArguments) {
  for (double x : {1e-300, -3e-200, 1e-100, 2.5e-20, -1e-12, 1e-8, 3e-5}) {
    EXPECT_LE(UlpError(simd::FastTanh(x), std::tanh(static_cast<long double>(x))), 4.0) << x;
  }
  // Subnormal arguments: tanh x = x.
  for (double x : {5e-324, -5e-324, 1e-310, -2.2e-308}) EXPECT_EQ(simd::FastTanh(x), x);
}

TEST(SimdTanhTest, SpecialValues) {
  EXPECT_EQ(simd::FastTanh(0.0), 0.0);
  EXPECT_FALSE(std::signbit(simd::FastTanh(0.0)));
  EXPECT_EQ(simd::FastTanh(-0.0), 0.0);
  EXPECT_TRUE(std::signbit(simd::FastTanh(-0.0)));
  // Beyond ~19.06 tanh rounds to ±1, as std::tanh's does; past the internal clamp at 350 too.
  for (double x : {19.5, 20.0, 21.0, 50.0, 349.0, 351.0, 1e10, 1e300}) {
    EXPECT_EQ(simd::FastTanh(x), 1.0) << x;
    EXPECT_EQ(simd::FastTanh(-x), -1.0) << x;
  }
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(simd::FastTanh(inf), 1.0);
  EXPECT_EQ(simd::FastTanh(-inf), -1.0);
  EXPECT_TRUE(std::isnan(simd::FastTanh(std::nan(""))));
}

TEST(SimdTanhTest, OneMinusTanhSquaredKeepsRelativeAccuracy) {
  // 1 − tanh² = 4 qnum/den² is free of the cancellation of 1 − h·h, down to ~1e-300.
  double worst = 0, worst_x = 0;
  for (double x : Arguments(100000)) {
    if (std::abs(x) > 340) continue;  // past the clamp it is only an upper bound (< 4e-296)
    const simd::TanhRatio r = simd::TanhParts(simd::Broadcast(x));
    const double got = 4.0 * r.qnum[0] / (r.den[0] * r.den[0]);
    const long double c = std::cosh(static_cast<long double>(x));
    const double e = UlpError(got, 1.0L / (c * c));
    if (e > worst) {
      worst = e;
      worst_x = x;
    }
    ASSERT_GE(r.den[0], 1.6) << x;
    ASSERT_LE(r.den[0], 4.1) << x;
    ASSERT_GE(r.qnum[0], 0.0) << x;
  }
  EXPECT_LE(worst, 8.0) << "at x = " << worst_x;
}

TEST(SimdTanhTest, LanesAgreeWithTheScalarForm) {
  const std::vector<double> xs = Arguments(2000);
  for (size_t i = 0; i + 1 < xs.size(); i += 2) {
    const Vec t = simd::Tanh(Vec{xs[i], xs[i + 1]});
    EXPECT_EQ(t[0], simd::FastTanh(xs[i]));
    EXPECT_EQ(t[1], simd::FastTanh(xs[i + 1]));
  }
}

TEST(SimdLogTest, WithinOneUlpOfLog) {
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> log2_mag(-1021.0, 1023.0);
  double worst = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = std::exp2(log2_mag(gen));
    const double got = simd::Log(simd::Broadcast(x))[0];
    worst = std::max(worst, UlpError(got, std::log(static_cast<long double>(x))));
  }
  for (double x : {1.0, 0.5, 2.0, std::sqrt(0.5), std::sqrt(2.0), 1.0 + 1e-15, 1.0 - 1e-16}) {
    worst = std::max(
        worst, UlpError(simd::Log(simd::Broadcast(x))[0], std::log(static_cast<long double>(x))));
  }
  EXPECT_LE(worst, 1.0);
  EXPECT_EQ(simd::Log(simd::Broadcast(1.0))[0], 0.0);
}

TEST(SimdLogTest, SpecialLanesBehaveAsStdLog) {
  const double inf = std::numeric_limits<double>::infinity();
  const Vec special[] = {{0.0, 1e-310}, {-1.0, inf}, {std::nan(""), 2.0}, {-0.0, 5e-324}};
  for (const Vec& x : special) {
    const Vec got = simd::Log(x);
    for (int l = 0; l < simd::kLanes; ++l) {
      const double want = std::log(x[l]);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got[l])) << x[l];
      } else if (std::isnormal(x[l])) {  // a normal lane next to a special one
        EXPECT_LE(UlpError(got[l], std::log(static_cast<long double>(x[l]))), 1.0) << x[l];
      } else {
        EXPECT_EQ(got[l], want) << x[l];
      }
    }
  }
}

}  // namespace
}  // namespace flowvi

namespace flowvi {
namespace {

TEST(SimdExpTest, WithinFewUlpsOfExp) {
  std::mt19937_64 gen(11);
  std::uniform_real_distribution<double> wide(-708.0, 709.0), narrow(-30.0, 30.0);
  double worst = 0;
  for (int i = 0; i < 200000; ++i) {
    for (double x : {wide(gen), narrow(gen)}) {
      const double got = simd::Exp(simd::Broadcast(x))[0];
      worst = std::max(worst, UlpError(got, std::exp(static_cast<long double>(x))));
    }
  }
  EXPECT_LE(worst, 2.0);
  EXPECT_EQ(simd::Exp(simd::Broadcast(0.0))[0], 1.0);
}

TEST(SimdExpTest, SpecialLanesBehaveAsStdExp) {
  const double inf = std::numeric_limits<double>::infinity();
  const Vec special[] = {{-750.0, 1.0}, {710.0, -inf}, {std::nan(""), inf}, {-708.5, 709.5}};
  for (const Vec& x : special) {
    const Vec got = simd::Exp(x);
    for (int l = 0; l < simd::kLanes; ++l) {
      const double want = std::exp(x[l]);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got[l])) << x[l];
      } else if (x[l] >= -708.0 && x[l] <= 709.0) {
        EXPECT_LE(UlpError(got[l], std::exp(static_cast<long double>(x[l]))), 2.0) << x[l];
      } else {
        EXPECT_EQ(got[l], want) << x[l];
      }
    }
  }
}

}  // namespace
}  // namespace flowvi
