// The wide element-wise kernels (engine/core/array_math.h) and the thin dense products
// (engine/flows/tiled_product.h) against independent references: long-double tanh/exp and
// naive triple loops. The kernels must also give, bit for bit, what the two-lane simd.h math
// and a plain in-order sum give, so that results never depend on the vector width of the build.
#include "engine/core/array_math.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engine/core/simd.h"
#include "engine/core/types.h"
#include "engine/flows/tiled_product.h"
#include "gtest/gtest.h"
#include "tests/engine/testing/ulp.h"

namespace flowvi {
namespace {

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

using testing::UlpError;

// Random arguments of many magnitudes and the special values, in an order that puts each kind in
// every lane position.
std::vector<double> Arguments(int n) {
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> uniform(-30.0, 30.0);
  std::uniform_real_distribution<double> log_mag(std::log(1e-310), std::log(800.0));
  std::vector<double> xs = {0.0,   -0.0,   5e-324, -1e-310, 1e-300, 350.0, -351.0,
                            1e300, -1e300, 709.0,  -708.5,  20.0,   -20.0, 0.5};
  for (int i = 0; static_cast<int>(xs.size()) < n; ++i) {
    const double m = std::exp(log_mag(gen));
    xs.push_back(i % 3 == 0 ? uniform(gen) : (i % 2 == 0 ? m : -m));
  }
  return xs;
}

TEST(ArrayMathTest, TanhArrayMatchesTwoLaneTanhBitForBitAtEveryLength) {
  const std::vector<double> xs = Arguments(1031);
  for (int n : {0, 1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1031}) {
    std::vector<double> out(n + 1, 42.0);
    TanhArray(xs.data(), n, out.data());
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(SameBits(out[i], simd::FastTanh(xs[i])))
          << "n = " << n << ", i = " << i << ", x = " << xs[i] << ": " << out[i];
    }
    EXPECT_EQ(out[n], 42.0) << "wrote past the end, n = " << n;
  }
}

TEST(ArrayMathTest, TanhArrayIsAccurateAndWorksInPlace) {
  std::vector<double> xs = Arguments(5000);
  std::vector<double> in = xs;
  TanhArray(in.data(), static_cast<int64_t>(in.size()), in.data());
  for (size_t i = 0; i < xs.size(); ++i) {
    EXPECT_LE(UlpError(in[i], std::tanh(static_cast<long double>(xs[i]))), 6.0) << xs[i];
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> special = {nan, inf, -inf, -0.0, 1.0};
  TanhArray(special.data(), 5, special.data());
  EXPECT_TRUE(std::isnan(special[0]));
  EXPECT_EQ(special[1], 1.0);
  EXPECT_EQ(special[2], -1.0);
  EXPECT_TRUE(std::signbit(special[3]) && special[3] == 0.0);
}

TEST(ArrayMathTest, SoftClampExpIsBoundedAccurateAndWidthIndependent) {
  constexpr double kC = 3.0;
  const std::vector<double> xs = Arguments(2003);
  std::vector<double> s(xs.size()), e(xs.size());
  SoftClampExpArray(xs.data(), static_cast<int64_t>(xs.size()), kC, s.data(), e.data());
  for (size_t i = 0; i < xs.size(); ++i) {
    const long double want = kC * std::tanh(static_cast<long double>(xs[i]) / kC);
    EXPECT_LE(std::abs(s[i]), kC);
    EXPECT_LE(std::abs(static_cast<long double>(s[i]) - want), 8 * 0x1p-52L * kC) << xs[i];
    EXPECT_LE(UlpError(e[i], std::exp(static_cast<long double>(s[i]))), 3.0) << xs[i];
    // The same arithmetic as the two-lane math element by element.
    const simd::Vec sv = kC * simd::Tanh(simd::Broadcast(xs[i]) * (1.0 / kC));
    ASSERT_TRUE(SameBits(s[i], sv[0])) << xs[i];
    ASSERT_TRUE(SameBits(e[i], simd::Exp(sv)[0])) << xs[i];
  }
  // In place (s aliasing a).
  std::vector<double> a = xs, e2(xs.size());
  SoftClampExpArray(a.data(), static_cast<int64_t>(a.size()), kC, a.data(), e2.data());
  for (size_t i = 0; i < xs.size(); ++i) ASSERT_TRUE(SameBits(a[i], s[i]));
}

Matrix RandomMatrix(Eigen::Index rows, Eigen::Index cols, std::mt19937_64& gen) {
  std::normal_distribution<double> normal;
  Matrix m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j) {
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = normal(gen);
  }
  return m;
}

// Products of every shape class the dispatch in TiledProduct distinguishes (thin with one or two
// rows, thin with a multiple of the vector width, thin otherwise, GEMM tiles and their edges),
// with a plain and a transposed left operand, set and accumulated, against a long-double loop.
TEST(TiledProductTest, MatchesNaiveProductForEveryShapeClass) {
  std::mt19937_64 gen(11);
  for (Eigen::Index m : {1, 2, 3, 4, 8, 23, 64, 65, 130}) {
    for (Eigen::Index k : {1, 2, 4, 8, 9, 40, 300}) {
      for (Eigen::Index n : {1, 5, 256}) {
        for (bool transposed : {false, true}) {
          for (bool accumulate : {false, true}) {
            const Matrix a_store = transposed ? RandomMatrix(k, m, gen) : RandomMatrix(m, k, gen);
            const Matrix b = RandomMatrix(k, n, gen);
            const Matrix c0 = RandomMatrix(m, n, gen);
            Matrix c = c0;
            if (transposed) {
              TiledProduct(a_store.transpose(), b, c, accumulate);
            } else {
              TiledProduct(a_store, b, c, accumulate);
            }
            for (Eigen::Index j = 0; j < n; ++j) {
              for (Eigen::Index i = 0; i < m; ++i) {
                long double want = accumulate ? c0(i, j) : 0.0L;
                long double scale = std::abs(want);
                for (Eigen::Index p = 0; p < k; ++p) {
                  const long double ap = transposed ? a_store(p, i) : a_store(i, p);
                  want += ap * b(p, j);
                  scale += std::abs(ap * b(p, j));
                }
                ASSERT_NEAR(c(i, j), static_cast<double>(want),
                            1e-14 * static_cast<double>(scale) + 1e-300)
                    << "m " << m << " k " << k << " n " << n << " transposed " << transposed
                    << " accumulate " << accumulate << " at (" << i << ", " << j << ")";
              }
            }
          }
        }
      }
    }
  }
}

// Thin products sum in order of the depth index, whatever the vector width: the same bits as a
// scalar loop, on row blocks of a larger batch too (the coupling layers pass such views).
TEST(TiledProductTest, ThinProductsSumInOrderBitForBit) {
  std::mt19937_64 gen(12);
  for (Eigen::Index m : {1, 2, 4, 8, 16, 64}) {
    for (Eigen::Index k : {1, 3, 8}) {
      const Matrix a = RandomMatrix(m, k, gen);
      const Matrix batch = RandomMatrix(k + 3, 37, gen);
      const auto b = batch.middleRows(2, k);
      Matrix out = RandomMatrix(m + 2, 37, gen);
      const Matrix out0 = out;
      TiledProduct(a, b, out.middleRows(1, m), /*accumulate=*/true);
      for (Eigen::Index j = 0; j < 37; ++j) {
        for (Eigen::Index i = 0; i < m; ++i) {
          double s = a(i, 0) * b(0, j);
          for (Eigen::Index p = 1; p < k; ++p) s += a(i, p) * b(p, j);
          ASSERT_TRUE(SameBits(out(1 + i, j), out0(1 + i, j) + s)) << m << " " << k << " " << i;
        }
        EXPECT_EQ(out(0, j), out0(0, j));  // rows outside the block untouched
        EXPECT_EQ(out(m + 1, j), out0(m + 1, j));
      }
    }
  }
}

// The fused bias: the same bits as the product followed by adding the bias to every column.
TEST(TiledProductTest, PlusBiasEqualsProductThenBias) {
  std::mt19937_64 gen(13);
  for (Eigen::Index m : {1, 2, 3, 4, 8, 23, 64, 65}) {
    for (Eigen::Index k : {1, 2, 8, 9, 40}) {
      const Matrix a = RandomMatrix(m, k, gen);
      const Matrix b = RandomMatrix(k, 29, gen);
      const Vector bias = RandomMatrix(m, 1, gen);
      Matrix want(m, 29), got(m, 29);
      TiledProduct(a, b, want, /*accumulate=*/false);
      want.colwise() += bias;
      TiledProductPlusBias(a, b, bias.data(), got);
      ASSERT_EQ(std::memcmp(got.data(), want.data(), sizeof(double) * got.size()), 0)
          << "m " << m << " k " << k;
    }
  }
}

}  // namespace
}  // namespace flowvi
