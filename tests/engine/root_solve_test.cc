#include "engine/core/root_solve.h"

#include <cmath>
#include <optional>

#include "gtest/gtest.h"

namespace flowvi {
namespace {

// The planar layer's inverse equation, α + a tanh(α + b) = wᵀy, bracketed by wᵀy ∓ |a|, at a
// saturated tanh (b far below zero) with a = -1: mathematically f(lo) = 0 exactly, but rounding
// can leave it a few ulps above zero. The solver must still find the root (it used to give up,
// failing LogDensity at whole regions of the plane for some trained flows).
TEST(SolveMonotoneTest, RootAtABracketEndWithRoundingOfTheWrongSign) {
  const double a = -1.0;
  const double b = -20.0;
  for (int i = 0; i <= 2000; ++i) {
    const double wy = -3 + i * 0.003;
    auto fdf = [&](double alpha, double* f, double* df) {
      const double t = std::tanh(alpha + b);
      *f = alpha + a * t - wy;
      *df = 1.0 + a * (1.0 - t * t);
    };
    const std::optional<double> alpha = SolveMonotone(fdf, wy - std::abs(a), wy + std::abs(a));
    ASSERT_TRUE(alpha.has_value()) << "wy = " << wy;
    double f = 0;
    double df = 0;
    fdf(*alpha, &f, &df);
    EXPECT_LE(std::abs(f), 1e-14) << "wy = " << wy;
  }
}

TEST(SolveMonotoneTest, StillRejectsABracketWithoutASignChange) {
  auto fdf = [](double x, double* f, double* df) {
    *f = x + 10;
    *df = 1;
  };
  EXPECT_FALSE(SolveMonotone(fdf, 0.0, 1.0).has_value());
  EXPECT_FALSE(SolveMonotone(fdf, -30.0, -20.0).has_value());
  const std::optional<double> root = SolveMonotone(fdf, -11.0, 1.0);
  ASSERT_TRUE(root.has_value());
  EXPECT_NEAR(*root, -10.0, 1e-12);
}

}  // namespace
}  // namespace flowvi
