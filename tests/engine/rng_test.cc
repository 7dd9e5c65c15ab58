// The random number generator's normal draws: simd::SinCos2Pi against long-double sin/cos, and
// Rng::FillNormal against Box–Muller evaluated in long double on the same uniforms (drawn from a
// copy of the generator), plus the moments of many draws and reproducibility.
#include "engine/core/rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "engine/core/simd.h"
#include "gtest/gtest.h"

namespace flowvi {
namespace {

using simd::Wide;

TEST(SinCos2PiTest, MatchesLongDoubleAtQuadrantEdgesAndRandomAngles) {
  std::vector<double> us = {0.0,   1.0,  0.125, 0.25,   0.375,   0.5,
                            0.625, 0.75, 0.875, 1e-300, 0x1p-54, 1 - 0x1p-53};
  for (double e : {0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875}) {
    us.push_back(std::nextafter(e, 0.0));
    us.push_back(std::nextafter(e, 1.0));
  }
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  while (us.size() < 100000) us.push_back(uniform(gen));
  const long double two_pi = 2 * std::numbers::pi_v<long double>;
  double worst = 0;
  for (size_t i = 0; i + simd::kWideLanes <= us.size(); i += simd::kWideLanes) {
    Wide s, c;
    simd::SinCos2Pi(simd::Load<Wide>(us.data() + i), &s, &c);
    for (int l = 0; l < simd::kWideLanes; ++l) {
      const long double a = two_pi * us[i + l];
      const double es = std::abs(s[l] - static_cast<double>(std::sin(a)));
      const double ec = std::abs(c[l] - static_cast<double>(std::cos(a)));
      worst = std::max({worst, es, ec});
      ASSERT_LE(es, 4e-16) << "sin(2π·" << us[i + l] << ")";
      ASSERT_LE(ec, 4e-16) << "cos(2π·" << us[i + l] << ")";
    }
  }
  // Exact values at the quadrant points u = 0.25, 0.5 (lane 0 of vectors starting there).
  Wide s, c;
  simd::SinCos2Pi(simd::Load<Wide>(us.data() + 3), &s, &c);
  EXPECT_EQ(s[0], 1.0);
  EXPECT_EQ(c[0], 0.0);
  simd::SinCos2Pi(simd::Load<Wide>(us.data() + 5), &s, &c);
  EXPECT_EQ(c[0], -1.0);
  EXPECT_EQ(s[0], 0.0);
  RecordProperty("worst_abs_error", std::to_string(worst));
}

TEST(RngTest, FillNormalIsBoxMullerOnTheSameUniforms) {
  for (Eigen::Index size : {1, 2, 3, 7, 8, 9, 127, 128, 129, 1001}) {
    Rng rng(17), copy(17);
    Matrix z(1, size);
    rng.FillNormal(&z);
    const long double two_pi = 2 * std::numbers::pi_v<long double>;
    Eigen::Index i = 0;
    for (; i + 1 < size; i += 2) {
      const long double u1 = copy.Uniform(), u2 = copy.Uniform();
      const long double r = std::sqrt(-2 * std::log(u1));
      const long double a = r * std::cos(two_pi * u2), b = r * std::sin(two_pi * u2);
      ASSERT_NEAR(z(0, i), static_cast<double>(a), 1e-15 * (1 + r)) << size << " " << i;
      ASSERT_NEAR(z(0, i + 1), static_cast<double>(b), 1e-15 * (1 + r)) << size << " " << i;
    }
    if (i < size) {  // an odd tail is one Normal()
      EXPECT_EQ(z(0, i), copy.Normal());
    }
    EXPECT_EQ(rng.state(), copy.state()) << "the same number of uniforms drawn, size " << size;
  }
}

TEST(RngTest, FillNormalMomentsAndReproducibility) {
  Rng rng(5);
  Matrix z(4, 250000);
  rng.FillNormal(&z);
  const double n = static_cast<double>(z.size());
  const double mean = z.mean();
  const double var = (z.array() - mean).square().sum() / (n - 1);
  const double kurt = (z.array() - mean).pow(4).mean() / (var * var);
  EXPECT_LT(std::abs(mean), 5 / std::sqrt(n));
  EXPECT_LT(std::abs(var - 1), 5 * std::sqrt(2 / n));
  EXPECT_LT(std::abs(kurt - 3), 5 * std::sqrt(24 / n));
  // P(|z| > 3) = 0.0026998.
  const double tail = (z.array().abs() > 3.0).cast<double>().mean();
  EXPECT_NEAR(tail, 0.0026998, 5 * std::sqrt(0.0027 / n));
  Rng again(5);
  Matrix z2(4, 250000);
  again.FillNormal(&z2);
  EXPECT_EQ(std::memcmp(z.data(), z2.data(), sizeof(double) * z.size()), 0);
}

}  // namespace
}  // namespace flowvi
