// The conditioner MLP against finite differences (parameters and inputs, with and without
// masks), and the properties coupling layers rely on: zero output at initialization, masked
// weights that neither act nor receive gradient.
#include "engine/flows/mlp.h"

#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/testing/gradient_check.h"

namespace flowvi {
namespace {

using ::flowvi::testing::MaxRelativeError;
using ::flowvi::testing::NumericGradient;

struct MlpCase {
  int in, out, hidden, depth;
  MlpActivation activation;
  bool masked;
};

class MlpGradientTest : public ::testing::TestWithParam<MlpCase> {};

std::vector<Matrix> RandomMasks(const Mlp& mlp, Rng& rng) {
  std::vector<Matrix> masks;
  for (int l = 0; l <= mlp.depth(); ++l) {
    Matrix m(mlp.rows(l), mlp.cols(l));
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = rng.Uniform() < 0.5 ? 0.0 : 1.0;
    masks.push_back(m);
  }
  return masks;
}

TEST_P(MlpGradientTest, MatchesFiniteDifferences) {
  const MlpCase& k = GetParam();
  const Mlp mlp(k.in, k.out, k.hidden, k.depth, k.activation);
  const int n = 5;
  // (With relu, finite differences are wrong within a step of a kink; this seed keeps every
  // pre-activation of these cases away from zero.)
  Rng rng(5);
  Vector params(mlp.num_params());
  for (Eigen::Index i = 0; i < params.size(); ++i) params[i] = 0.7 * rng.Normal();
  Matrix x(k.in, n), c(k.out, n);
  rng.FillNormal(&x);
  rng.FillNormal(&c);
  const std::vector<Matrix> masks = k.masked ? RandomMasks(mlp, rng) : std::vector<Matrix>{};
  MlpCache cache = mlp.NewCache(n, k.masked);
  auto loss = [&](const Vector& p, const Matrix& in) {
    MlpCache local = mlp.NewCache(n, k.masked);
    mlp.Forward(p, in, &local, masks);
    return (local.output().array() * c.array()).sum();
  };
  mlp.Forward(params, x, &cache, masks);
  Vector grad = Vector::Zero(params.size());
  Matrix grad_x = Matrix::Constant(k.in, n, 0.25);  // Backward adds into it
  BatchRef grad_x_ref(grad_x);
  mlp.Backward(params, x, c, &cache, grad, &grad_x_ref, masks);
  grad_x.array() -= 0.25;

  const Vector num = NumericGradient([&](const Vector& p) { return loss(p, x); }, params);
  EXPECT_LT(MaxRelativeError(grad, num), 1e-6) << grad.transpose() << "\n" << num.transpose();
  const Vector flat_x = Eigen::Map<const Vector>(x.data(), x.size());
  const Vector num_x = NumericGradient(
      [&](const Vector& v) { return loss(params, Eigen::Map<const Matrix>(v.data(), k.in, n)); },
      flat_x);
  EXPECT_LT(MaxRelativeError(Eigen::Map<const Vector>(grad_x.data(), grad_x.size()), num_x), 1e-6);
  if (k.masked) {
    for (int l = 0; l <= mlp.depth(); ++l) {
      const Eigen::Map<const Matrix> g(grad.data() + mlp.weight_offset(l), mlp.rows(l),
                                       mlp.cols(l));
      EXPECT_EQ((g.array() * (1.0 - masks[l].array())).abs().maxCoeff(), 0.0) << "layer " << l;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MlpGradientTest,
                         ::testing::Values(MlpCase{1, 2, 4, 1, MlpActivation::kTanh, false},
                                           MlpCase{3, 4, 5, 2, MlpActivation::kTanh, false},
                                           MlpCase{3, 2, 6, 0, MlpActivation::kTanh, false},
                                           MlpCase{2, 3, 4, 2, MlpActivation::kRelu, false},
                                           MlpCase{4, 8, 7, 2, MlpActivation::kTanh, true},
                                           MlpCase{4, 8, 7, 1, MlpActivation::kRelu, true}));

TEST(MlpTest, StartsAtZeroOutput) {
  const Mlp mlp(3, 5, 8, 2, MlpActivation::kTanh);
  Rng rng(1);
  Vector params(mlp.num_params());
  mlp.InitParams(rng, params);
  EXPECT_GT(params.cwiseAbs().maxCoeff(), 0.0);  // hidden layers are random
  Matrix x(3, 4);
  rng.FillNormal(&x);
  MlpCache cache = mlp.NewCache(4);
  mlp.Forward(params, x, &cache);
  EXPECT_EQ(cache.output().cwiseAbs().maxCoeff(), 0.0);
}

TEST(MlpTest, MaskedInputDoesNotReachOutput) {
  // Input 0 may only reach output 1: every path from input 0 to output 0 is cut.
  const Mlp mlp(2, 2, 3, 1, MlpActivation::kTanh);
  Matrix m0 = Matrix::Ones(3, 2), m1 = Matrix::Ones(2, 3);
  m0.col(0) << 0, 0, 1;  // input 0 feeds hidden unit 2 only
  m1.row(0) << 1, 1, 0;  // output 0 ignores hidden unit 2
  const std::vector<Matrix> masks = {m0, m1};
  Rng rng(2);
  Vector params(mlp.num_params());
  for (Eigen::Index i = 0; i < params.size(); ++i) params[i] = rng.Normal();
  Matrix x(2, 1), x2(2, 1);
  x << 0.3, -0.4;
  x2 << 5.0, -0.4;
  MlpCache a = mlp.NewCache(1, true), b = mlp.NewCache(1, true);
  mlp.Forward(params, x, &a, masks);
  mlp.Forward(params, x2, &b, masks);
  EXPECT_EQ(a.output()(0, 0), b.output()(0, 0));
  EXPECT_NE(a.output()(1, 0), b.output()(1, 0));
}

TEST(MlpTest, ParsesActivations) {
  EXPECT_EQ(*ParseMlpActivation("relu", "layer 'x'"), MlpActivation::kRelu);
  const absl::StatusOr<MlpActivation> bad = ParseMlpActivation("gelu", "layer 'x'");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("gelu"), absl::string_view::npos);
}

}  // namespace
}  // namespace flowvi
