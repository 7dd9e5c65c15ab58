// Every layer against independent truths: finite-difference gradients (parameters and inputs),
// log|det J| against the log-determinant of a numerically computed Jacobian, and inverse
// round-trips, including near-degenerate planar layers. Fixed structure (permute, orthogonal)
// must get exactly zero gradient.
#include <Eigen/LU>
#include <cmath>
#include <memory>
#include <string>

#include "engine/core/math.h"
#include "engine/flows/flow_spec.h"
#include "engine/flows/layer_catalog.h"
#include "engine/flows/planar.h"
#include "engine/flows/radial.h"
#include "gtest/gtest.h"
#include "tests/engine/testing/gradient_check.h"

namespace flowvi {
namespace {

using ::flowvi::testing::MaxRelativeError;
using ::flowvi::testing::NumericGradient;
using ::flowvi::testing::NumericJacobian;

struct Case {
  std::string type;
  int dim;
  std::string options = "";  // flow-spec options, e.g. "hidden=4,depth=1"
  std::string label = "";    // tells cases of one type and dimension apart
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return info.param.type + "_d" + std::to_string(info.param.dim) + info.param.label;
}

class LayerTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const LayerInfo* info = FindLayer(GetParam().type);
    ASSERT_NE(info, nullptr);
    // Through the flow-spec syntax, which resolves the options against the catalog.
    const std::string text = GetParam().options.empty()
                                 ? GetParam().type
                                 : GetParam().type + "(" + GetParam().options + ")";
    absl::StatusOr<FlowSpec> spec = ParseFlowSpec(text);
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto layer = info->factory(GetParam().dim, spec->groups[0].options);
    ASSERT_TRUE(layer.ok()) << layer.status();
    layer_ = *std::move(layer);
    params_ = Vector::Zero(layer_->num_params());
    Rng rng(7);
    layer_->InitParams(rng, params_);
    // Move away from the initializer's special values (b = 0, a = 0) so all terms matter.
    for (Eigen::Index i = 0; i < params_.size(); ++i) params_[i] += 0.3 * rng.Normal();
    in_ = Matrix(GetParam().dim, 6);
    rng.FillNormal(&in_);
    in_ *= 1.5;
  }

  // out and logdet of the layer at (params, in).
  void Apply(const Vector& params, const Matrix& in, Matrix* out, RowVector* logdet) const {
    auto cache = layer_->NewCache(static_cast<int>(in.cols()));
    out->resize(in.rows(), in.cols());
    logdet->setZero(in.cols());
    layer_->Forward(params, in, *out, *logdet, cache.get());
  }

  std::unique_ptr<Layer> layer_;
  Vector params_;
  Matrix in_;
};

TEST_P(LayerTest, GradientsMatchFiniteDifferences) {
  const int d = GetParam().dim;
  const int n = static_cast<int>(in_.cols());
  Rng rng(11);
  Matrix c(d, n);
  rng.FillNormal(&c);
  Matrix dl(1, n);
  rng.FillNormal(&dl);
  const RowVector dlogdet = dl.row(0);
  // L = Σ c ⊙ out + Σ dlogdet ⊙ logdet.
  auto loss = [&](const Vector& params, const Matrix& in) {
    Matrix out;
    RowVector logdet;
    Apply(params, in, &out, &logdet);
    return (c.array() * out.array()).sum() + dlogdet.dot(logdet);
  };
  auto cache = layer_->NewCache(n);
  Matrix out(d, n);
  RowVector logdet = RowVector::Zero(n);
  layer_->Forward(params_, in_, out, logdet, cache.get());
  Vector grad_params = Vector::Zero(params_.size());
  Matrix grad_in(d, n);
  layer_->Backward(params_, in_, c, dlogdet, cache.get(), grad_params, grad_in);

  // Trainable parameters against finite differences; fixed structure (the last
  // num_fixed_params()) gets exactly zero gradient, whatever the loss's true dependence on it.
  const int trainable = layer_->num_params() - layer_->num_fixed_params();
  if (trainable > 0) {
    const Vector head = params_.head(trainable);
    const Vector num_params = NumericGradient(
        [&](const Vector& p) {
          Vector all = params_;
          all.head(trainable) = p;
          return loss(all, in_);
        },
        head);
    EXPECT_LT(MaxRelativeError(grad_params.head(trainable), num_params), 1e-6)
        << "analytic " << grad_params.head(trainable).transpose() << "\nnumeric  "
        << num_params.transpose();
  }
  if (layer_->num_fixed_params() > 0) {
    EXPECT_EQ(grad_params.tail(layer_->num_fixed_params()).cwiseAbs().maxCoeff(), 0.0);
  }

  const Vector flat_in = Eigen::Map<const Vector>(in_.data(), in_.size());
  const Vector num_in = NumericGradient(
      [&](const Vector& x) { return loss(params_, Eigen::Map<const Matrix>(x.data(), d, n)); },
      flat_in);
  const Vector flat_grad_in = Eigen::Map<const Vector>(grad_in.data(), grad_in.size());
  EXPECT_LT(MaxRelativeError(flat_grad_in, num_in), 1e-6)
      << "analytic " << flat_grad_in.transpose() << "\nnumeric  " << num_in.transpose();
}

TEST_P(LayerTest, LogDetMatchesNumericalJacobian) {
  const int d = GetParam().dim;
  Matrix out;
  RowVector logdet;
  Apply(params_, in_, &out, &logdet);
  for (Eigen::Index j = 0; j < in_.cols(); ++j) {
    auto f = [&](const Vector& z) {
      Matrix o;
      RowVector ld;
      Apply(params_, Matrix(z), &o, &ld);
      return Vector(o.col(0));
    };
    const Eigen::MatrixXd jac = NumericJacobian(f, in_.col(j));
    ASSERT_EQ(jac.rows(), d);
    const double expected = std::log(std::abs(jac.determinant()));
    EXPECT_NEAR(logdet[j], expected, 1e-8) << "column " << j;
  }
}

TEST_P(LayerTest, InverseRoundTrips) {
  Matrix out;
  RowVector logdet;
  Apply(params_, in_, &out, &logdet);
  Matrix back;
  RowVector inv_logdet = RowVector::Zero(in_.cols());
  ASSERT_TRUE(layer_->Inverse(params_, out, back, inv_logdet).ok());
  EXPECT_LT((back - in_).cwiseAbs().maxCoeff(), 1e-9);
  EXPECT_LT((inv_logdet - logdet).cwiseAbs().maxCoeff(), 1e-9);
}

TEST_P(LayerTest, InverseRejectsNonFinitePoints) {
  Matrix out = in_;
  out(0, 2) = std::nan("");
  Matrix back;
  RowVector ld = RowVector::Zero(out.cols());
  EXPECT_EQ(layer_->Inverse(params_, out, back, ld).code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(
    AllLayers, LayerTest,
    ::testing::Values(Case{"planar", 1}, Case{"planar", 2}, Case{"planar", 5}, Case{"radial", 1},
                      Case{"radial", 2}, Case{"radial", 5}, Case{"nice", 2, "hidden=4,depth=1"},
                      Case{"nice", 5, "hidden=5,depth=2"},
                      Case{"nice", 4, "hidden=3,depth=0", "_affine_conditioner"},
                      Case{"realnvp", 2, "hidden=4,depth=1"},
                      Case{"realnvp", 5, "hidden=5,depth=2,scale_bound=1.5"},
                      Case{"realnvp", 3, "hidden=4,depth=1,relu=true", "_relu"},
                      Case{"spline", 2, "hidden=4,depth=1,bins=4,bound=2"},
                      Case{"spline", 5, "hidden=5,depth=2,bins=5,bound=2"},
                      Case{"spline", 3, "hidden=4,depth=1,bins=1,bound=1.5", "_one_bin"},
                      Case{"permute", 1}, Case{"permute", 5}, Case{"orthogonal", 1},
                      Case{"orthogonal", 4}, Case{"scale", 1}, Case{"scale", 3}),
    CaseName);

// Planar layers whose wᵀû is pushed towards the −1 limit of invertibility.
class NearDegeneratePlanarTest : public ::testing::TestWithParam<double> {};

TEST_P(NearDegeneratePlanarTest, InvertsAndKeepsConstraint) {
  const int d = 3;
  PlanarLayer layer(d);
  Vector p(2 * d + 1);
  Vector w(d);
  w << 0.8, -0.5, 0.3;
  // û's constraint gives wᵀû = −1 + softplus(wᵀu): choose u along w with wᵀu = target.
  const double wu = GetParam();
  const Vector u = wu * w / w.squaredNorm();
  p << u, w, 0.4;
  const double w_uhat = -1 + Softplus(wu);
  ASSERT_GT(w_uhat, -1.0);
  Rng rng(3);
  Matrix in(d, 200);
  rng.FillNormal(&in);
  in *= 2;
  auto cache = layer.NewCache(200);
  Matrix out(d, 200);
  RowVector logdet = RowVector::Zero(200);
  layer.Forward(p, in, out, logdet, cache.get());
  ASSERT_TRUE(logdet.allFinite());
  Matrix back;
  RowVector inv_ld = RowVector::Zero(200);
  ASSERT_TRUE(layer.Inverse(p, out, back, inv_ld).ok());
  // The inverse's conditioning is 1/f'(α) with f' ≥ 1 + wᵀû(1 − tanh²): compare in the
  // direction where errors are amplified, scaled by that bound at each point.
  for (Eigen::Index j = 0; j < in.cols(); ++j) {
    const double t = std::tanh(w.dot(in.col(j)) + 0.4);
    const double slope = 1 + w_uhat * (1 - t * t);
    EXPECT_LT((back.col(j) - in.col(j)).norm(), 1e-12 / slope + 1e-12) << "point " << j;
  }
}

INSTANTIATE_TEST_SUITE_P(TowardsMinusOne, NearDegeneratePlanarTest,
                         ::testing::Values(-3.0, -8.0, -15.0, -25.0));

TEST(PlanarLayerTest, ConstraintHoldsForAnyParameters) {
  PlanarLayer layer(4);
  Rng rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    Vector p(9);
    for (Eigen::Index i = 0; i < p.size(); ++i) p[i] = 5 * rng.Normal();
    const Vector u = p.segment(0, 4), w = p.segment(4, 4);
    const double wu = w.dot(u);
    const Vector u_hat = u + (Softplus(wu) - 1 - wu) * w / w.squaredNorm();
    EXPECT_GE(w.dot(u_hat), -1.0 - 1e-12);
  }
}

TEST(PlanarLayerTest, ZeroWIsATranslation) {
  PlanarLayer layer(2);
  Vector p(5);
  p << 0.5, -1.0, 0.0, 0.0, 0.7;
  Matrix in(2, 3);
  in << 1, 2, 3, 4, 5, 6;
  auto cache = layer.NewCache(3);
  Matrix out(2, 3);
  RowVector logdet = RowVector::Zero(3);
  layer.Forward(p, in, out, logdet, cache.get());
  const double t = std::tanh(0.7);
  EXPECT_NEAR(out(0, 0), 1 + 0.5 * t, 1e-15);
  EXPECT_NEAR(out(1, 2), 6 - 1.0 * t, 1e-15);
  EXPECT_NEAR(logdet.cwiseAbs().maxCoeff(), 0.0, 1e-15);
}

TEST(RadialLayerTest, HandlesPointAtCenter) {
  RadialLayer layer(2);
  Vector p(4);
  p << 0.3, -0.2, 0.1, 0.5;
  Matrix in(2, 2);
  in << 0.3, 1.0, -0.2, 1.0;  // column 0 sits exactly on z₀
  auto cache = layer.NewCache(2);
  Matrix out(2, 2);
  RowVector logdet = RowVector::Zero(2);
  layer.Forward(p, in, out, logdet, cache.get());
  EXPECT_TRUE(out.allFinite());
  EXPECT_TRUE(logdet.allFinite());
  Matrix grad_in(2, 2);
  Vector grad = Vector::Zero(4);
  layer.Backward(p, in, Matrix::Ones(2, 2), RowVector::Ones(2), cache.get(), grad, grad_in);
  EXPECT_TRUE(grad_in.allFinite());
  EXPECT_TRUE(grad.allFinite());
  Matrix back;
  RowVector ld = RowVector::Zero(2);
  ASSERT_TRUE(layer.Inverse(p, out, back, ld).ok());
  EXPECT_LT((back - in).cwiseAbs().maxCoeff(), 1e-12);
}

}  // namespace
}  // namespace flowvi
