// Every layer against independent truths: finite-difference gradients (parameters and inputs),
// log|det J| against the log-determinant of a numerically computed Jacobian, inverse
// round-trips, serialization round-trips, extreme inputs and fixed structure that never gets a
// gradient; plus near-degenerate planar layers.
#include <Eigen/LU>
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "engine/core/math.h"
#include "engine/flows/flow.h"
#include "engine/flows/flow_io.h"
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
  std::string options = "";  // flow-spec options, e.g. "hidden=6,depth=2"
  std::string tag = "";      // distinguishes cases with options in the test name
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return info.param.type + "_d" + std::to_string(info.param.dim) + info.param.tag;
}

// The spec of one layer group of the case's type and options.
std::string GroupSpec(const Case& c, int count) {
  std::string spec = c.type;
  if (!c.options.empty()) spec += "(" + c.options + ")";
  return spec + "*" + std::to_string(count);
}

class LayerTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const LayerInfo* info = FindLayer(GetParam().type);
    ASSERT_NE(info, nullptr);
    // The options resolved as a flow spec resolves them (defaults filled in).
    absl::StatusOr<FlowSpec> spec = ParseFlowSpec(GroupSpec(GetParam(), 1));
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

  // The trainable parameters only: fixed structure (the first num_fixed_params(), e.g. keys
  // whose argsort is a permutation) is piecewise constant, so finite differences across a
  // reordering are meaningless; FixedStructureGetsExactlyZeroGradient checks its gradient.
  const int fixed = layer_->num_fixed_params();
  const int trainable = static_cast<int>(params_.size()) - fixed;
  const Vector num_params = NumericGradient(
      [&](const Vector& t) {
        Vector p = params_;
        p.tail(trainable) = t;
        return loss(p, in_);
      },
      params_.tail(trainable));
  const Vector analytic = grad_params.tail(trainable);
  EXPECT_LT(MaxRelativeError(analytic, num_params), 1e-6)
      << "analytic " << analytic.transpose() << "\nnumeric  " << num_params.transpose();

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

// Points far out (±1e6), tiny (1e-300, subnormal) and signed zeros: values, log-determinants and
// gradients stay finite, and the inverse still round-trips (relative to the points' scale).
TEST_P(LayerTest, ExtremeInputsStayFiniteAndInvert) {
  const int d = GetParam().dim;
  const double values[] = {1e6, -1e6, 1e-300, -4e-320, 0.0, -0.0, 3.0, -250.0};
  Matrix in(d, 8);
  for (int j = 0; j < 8; ++j) {
    for (int i = 0; i < d; ++i) in(i, j) = values[(i + j) % 8];
  }
  Matrix out;
  RowVector logdet;
  Apply(params_, in, &out, &logdet);
  ASSERT_TRUE(out.allFinite());
  ASSERT_TRUE(logdet.allFinite());
  auto cache = layer_->NewCache(8);
  RowVector ld = RowVector::Zero(8);
  layer_->Forward(params_, in, out, ld, cache.get());
  Vector grad_params = Vector::Zero(params_.size());
  Matrix grad_in(d, 8);
  layer_->Backward(params_, in, Matrix::Ones(d, 8), RowVector::Ones(8), cache.get(), grad_params,
                   grad_in);
  EXPECT_TRUE(grad_params.allFinite());
  EXPECT_TRUE(grad_in.allFinite());
  Matrix back;
  RowVector inv_ld = RowVector::Zero(8);
  ASSERT_TRUE(layer_->Inverse(params_, out, back, inv_ld).ok());
  for (int j = 0; j < 8; ++j) {
    const double scale = std::max(1.0, in.col(j).cwiseAbs().maxCoeff());
    EXPECT_LT((back.col(j) - in.col(j)).cwiseAbs().maxCoeff(), 1e-9 * scale) << "column " << j;
  }
}

// A flow of this layer type survives serialization bit for bit: parameters, and therefore any
// fixed structure stored in them (orders, permutations).
TEST_P(LayerTest, SerializationRoundTripsExactly) {
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec(GroupSpec(GetParam(), 2));
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, GetParam().dim);
  ASSERT_TRUE(flow.ok()) << flow.status();
  Rng rng(5);
  (*flow)->InitParams(rng);
  for (Eigen::Index i = 0; i < (*flow)->num_params(); ++i) {
    (*flow)->mutable_params()[i] += 0.1 * rng.Normal();
  }
  absl::StatusOr<std::unique_ptr<Flow>> back = DeserializeFlow(SerializeFlow(**flow));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ((*back)->spec(), (*flow)->spec());
  ASSERT_EQ((*back)->params().size(), (*flow)->params().size());
  EXPECT_EQ((*back)->params(), (*flow)->params());
  auto ws_a = (*flow)->NewWorkspace(16);
  auto ws_b = (*back)->NewWorkspace(16);
  Rng ra(9), rb(9);
  (*flow)->Sample(ra, ws_a.get());
  (*back)->Sample(rb, ws_b.get());
  EXPECT_EQ(ws_a->z(), ws_b->z());
  EXPECT_EQ(ws_a->log_q(), ws_b->log_q());
}

// Fixed structure (the first num_fixed_params() entries, see layer.h) gets exactly zero gradient.
TEST_P(LayerTest, FixedStructureGetsExactlyZeroGradient) {
  const int d = GetParam().dim;
  const int n = static_cast<int>(in_.cols());
  auto cache = layer_->NewCache(n);
  Matrix out(d, n);
  RowVector logdet = RowVector::Zero(n);
  layer_->Forward(params_, in_, out, logdet, cache.get());
  Rng rng(13);
  Matrix g(d, n);
  rng.FillNormal(&g);
  Vector grad_params = Vector::Zero(params_.size());
  Matrix grad_in(d, n);
  layer_->Backward(params_, in_, g, RowVector::Ones(n), cache.get(), grad_params, grad_in);
  const int fixed = layer_->num_fixed_params();
  ASSERT_LE(fixed, layer_->num_params());
  for (int i = 0; i < fixed; ++i) EXPECT_EQ(grad_params[i], 0.0) << "parameter " << i;
  // ...and, for layers with both kinds, the trainable ones are not all zero (the check above
  // did not pass only because Backward wrote nothing).
  if (fixed > 0 && fixed < layer_->num_params()) {
    EXPECT_GT(grad_params.tail(params_.size() - fixed).cwiseAbs().maxCoeff(), 0.0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllLayers, LayerTest,
    ::testing::Values(
        Case{"planar", 1}, Case{"planar", 2}, Case{"planar", 5}, Case{"radial", 1},
        Case{"radial", 2}, Case{"radial", 5}, Case{"iaf", 1, "hidden=4,depth=1", "_h4l1"},
        Case{"iaf", 2, "hidden=5,depth=2", "_h5l2"}, Case{"iaf", 5, "hidden=7,depth=2", "_h7l2"},
        Case{"iaf", 4, "hidden=3,depth=3", "_h3l3"}, Case{"maf", 1, "hidden=4,depth=1", "_h4l1"},
        Case{"maf", 2, "hidden=5,depth=2", "_h5l2"}, Case{"maf", 5, "hidden=7,depth=2", "_h7l2"},
        Case{"maf", 4, "hidden=3,depth=3", "_h3l3"},
        // One hidden layer and D <= 4: MadeNet's fused path (made_fused.cc).
        Case{"iaf", 2, "hidden=5,depth=1", "_h5l1"}, Case{"maf", 3, "hidden=6,depth=1", "_h6l1"},
        Case{"iaf", 4, "hidden=9,depth=1", "_h9l1"}, Case{"maf", 4, "hidden=3,depth=1", "_h3l1"},
        // Wider than one row block of the masked products (made.cc).
        Case{"iaf", 20, "hidden=40,depth=2", "_h40l2"},
        Case{"maf", 10, "hidden=20,depth=2", "_h20l2"}, Case{"circconv", 1}, Case{"circconv", 2},
        Case{"circconv", 5}, Case{"circconv", 6}, Case{"circconv", 8}, Case{"circconv", 17},
        Case{"circconv", 64},
        // Past circconv.cc's kMaxDenseDim: the training passes through the FFT.
        Case{"circconv", 97}, Case{"circconv", 128}, Case{"linear", 1}, Case{"linear", 2},
        Case{"linear", 5}, Case{"linear", 20}, Case{"nice", 2, "hidden=4,depth=1"},
        Case{"nice", 5, "hidden=5,depth=2"},
        Case{"nice", 4, "hidden=3,depth=0", "_affine_conditioner"},
        Case{"realnvp", 2, "hidden=4,depth=1"},
        Case{"realnvp", 5, "hidden=5,depth=2,scale_bound=1.5"},
        Case{"realnvp", 3, "hidden=4,depth=1,relu=true", "_relu"},
        Case{"spline", 2, "hidden=4,depth=1,bins=4,bound=2"},
        Case{"spline", 5, "hidden=5,depth=2,bins=5,bound=2"},
        Case{"spline", 3, "hidden=4,depth=1,bins=1,bound=1.5", "_one_bin"}, Case{"permute", 1},
        Case{"permute", 5}, Case{"orthogonal", 1}, Case{"orthogonal", 4}, Case{"scale", 1},
        Case{"scale", 3}),
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
