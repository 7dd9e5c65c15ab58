// The layers' hand-written batch kernels (engine/flows/*.cc) in every code path: each dimension
// with unrolled kernels (1 to 4) and the any-dimension path (5, 10), batches that end in a
// partial SIMD group and span several column blocks, the 1/det product against taking logs,
// and folding the product when determinants are extreme. Complements layers_test.cc.
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/math.h"
#include "engine/core/rng.h"
#include "engine/flows/diagonal_affine.h"
#include "engine/flows/layer_catalog.h"
#include "engine/flows/planar.h"
#include "engine/flows/radial.h"
#include "gtest/gtest.h"
#include "tests/engine/testing/gradient_check.h"

namespace flowvi {
namespace {

using ::flowvi::testing::MaxRelativeError;
using ::flowvi::testing::NumericGradient;

// Straightforward per-column implementations of the layers (std::tanh, std::log1p, ...).
void ReferencePlanar(const Vector& p, const Matrix& in, Matrix* out, RowVector* logdet) {
  const int d = static_cast<int>(in.rows());
  const Vector u = p.segment(0, d), w = p.segment(d, d);
  const double b = p[2 * d];
  const double wu = w.dot(u), wn2 = w.squaredNorm();
  const Vector u_hat = u + ((Softplus(wu) - 1.0 - wu) / wn2) * w;
  const double w_uhat = w.dot(u_hat);
  *out = in;
  logdet->resize(in.cols());
  for (Eigen::Index j = 0; j < in.cols(); ++j) {
    const double t = std::tanh(w.dot(in.col(j)) + b);
    out->col(j) += u_hat * t;
    (*logdet)[j] = std::log(std::abs(1.0 + (1.0 - t * t) * w_uhat));
  }
}

void ReferenceRadial(const Vector& p, const Matrix& in, Matrix* out, RowVector* logdet) {
  const int d = static_cast<int>(in.rows());
  const Vector z0 = p.segment(0, d);
  const double alpha = std::exp(p[d]), beta = -alpha + Softplus(p[d + 1]);
  *out = in;
  logdet->resize(in.cols());
  for (Eigen::Index j = 0; j < in.cols(); ++j) {
    const Vector diff = in.col(j) - z0;
    const double h = 1.0 / (alpha + diff.norm());
    out->col(j) += beta * h * diff;
    (*logdet)[j] = (d - 1) * std::log1p(beta * h) + std::log1p(alpha * beta * h * h);
  }
}

void ReferenceAffine(const Vector& p, const Matrix& in, Matrix* out, RowVector* logdet) {
  const int d = static_cast<int>(in.rows());
  *out = (in.array().colwise() * p.segment(d, d).array().exp()).colwise() + p.segment(0, d).array();
  *logdet = RowVector::Constant(in.cols(), p.segment(d, d).sum());
}

struct Case {
  std::string type;  // "planar", "radial" or "affine"
  int dim;
  int n;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return info.param.type + "_d" + std::to_string(info.param.dim) + "_n" +
         std::to_string(info.param.n);
}

class LayerKernelTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    if (c.type == "affine") {
      layer_ = std::make_unique<DiagonalAffineLayer>(c.dim);
    } else {
      absl::StatusOr<std::unique_ptr<Layer>> layer = FindLayer(c.type)->factory(c.dim, {});
      ASSERT_TRUE(layer.ok());
      layer_ = *std::move(layer);
    }
    params_ = Vector::Zero(layer_->num_params());
    Rng rng(17 + c.dim);
    layer_->InitParams(rng, params_);
    for (Eigen::Index i = 0; i < params_.size(); ++i) params_[i] += 0.4 * rng.Normal();
    in_ = Matrix(c.dim, c.n);
    rng.FillNormal(&in_);
    in_ *= 1.7;
    if (c.n > 3) in_.col(3).setConstant(40.0);  // saturated tanh, far from a radial center
  }

  void Reference(const Vector& p, const Matrix& in, Matrix* out, RowVector* logdet) const {
    const std::string& type = GetParam().type;
    if (type == "planar") return ReferencePlanar(p, in, out, logdet);
    if (type == "radial") return ReferenceRadial(p, in, out, logdet);
    return ReferenceAffine(p, in, out, logdet);
  }

  // Forward through an accumulator that may (or may not) use the 1/det product.
  void Apply(const Vector& p, const Matrix& in, bool allow_products, Matrix* out,
             RowVector* logdet) const {
    auto cache = layer_->NewCache(static_cast<int>(in.cols()));
    LogDetAccumulator acc(static_cast<int>(in.cols()), allow_products);
    out->resize(in.rows(), in.cols());
    layer_->Forward(p, in, *out, acc, cache.get());
    acc.Fold();
    *logdet = acc.log_sum();
  }

  std::unique_ptr<Layer> layer_;
  Vector params_;
  Matrix in_;
};

TEST_P(LayerKernelTest, ForwardMatchesReference) {
  Matrix want_out;
  RowVector want_logdet;
  Reference(params_, in_, &want_out, &want_logdet);
  for (bool allow_products : {true, false}) {
    Matrix out;
    RowVector logdet;
    Apply(params_, in_, allow_products, &out, &logdet);
    EXPECT_LT((out - want_out).cwiseAbs().maxCoeff(), 1e-13 * (1 + want_out.cwiseAbs().maxCoeff()))
        << "products " << allow_products;
    EXPECT_LT((logdet - want_logdet).cwiseAbs().maxCoeff(), 1e-13)
        << "products " << allow_products << "\n"
        << logdet << "\n"
        << want_logdet;
  }
}

TEST_P(LayerKernelTest, GradientsMatchFiniteDifferences) {
  const Case& c = GetParam();
  if (c.n > 7) GTEST_SKIP() << "finite differences of every input: small batches only";
  Rng rng(5);
  Matrix weights(c.dim, c.n);
  rng.FillNormal(&weights);
  Matrix dl(1, c.n);
  rng.FillNormal(&dl);
  const RowVector dlogdet = dl.row(0);
  for (bool allow_products : {true, false}) {
    auto loss = [&](const Vector& p, const Matrix& in) {
      Matrix out;
      RowVector logdet;
      Apply(p, in, allow_products, &out, &logdet);
      return (weights.array() * out.array()).sum() + dlogdet.dot(logdet);
    };
    auto cache = layer_->NewCache(c.n);
    LogDetAccumulator acc(c.n, allow_products);
    Matrix out(c.dim, c.n);
    layer_->Forward(params_, in_, out, acc, cache.get());
    Vector grad_params = Vector::Zero(params_.size());
    Matrix grad_in(c.dim, c.n);
    layer_->Backward(params_, in_, weights, dlogdet, cache.get(), grad_params, grad_in);

    const Vector num_params =
        NumericGradient([&](const Vector& p) { return loss(p, in_); }, params_);
    EXPECT_LT(MaxRelativeError(grad_params, num_params), 1e-6)
        << "products " << allow_products << "\nanalytic " << grad_params.transpose()
        << "\nnumeric  " << num_params.transpose();
    const Vector flat_in = Eigen::Map<const Vector>(in_.data(), in_.size());
    const Vector num_in = NumericGradient(
        [&](const Vector& x) {
          return loss(params_, Eigen::Map<const Matrix>(x.data(), c.dim, c.n));
        },
        flat_in);
    const Vector flat_grad_in = Eigen::Map<const Vector>(grad_in.data(), grad_in.size());
    EXPECT_LT(MaxRelativeError(flat_grad_in, num_in), 1e-6)
        << "products " << allow_products << "\nanalytic " << flat_grad_in.transpose()
        << "\nnumeric  " << num_in.transpose();
  }
}

TEST_P(LayerKernelTest, BitIdenticalOnRepeat) {
  Matrix out_a, out_b;
  RowVector ld_a, ld_b;
  Apply(params_, in_, true, &out_a, &ld_a);
  Apply(params_, in_, true, &out_b, &ld_b);
  EXPECT_TRUE((out_a.array() == out_b.array()).all());
  EXPECT_TRUE((ld_a.array() == ld_b.array()).all());
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const char* type : {"planar", "radial", "affine"}) {
    for (int dim : {1, 2, 3, 4, 5, 10}) {
      for (int n : {1, 7, 300}) cases.push_back({type, dim, n});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllPaths, LayerKernelTest, ::testing::ValuesIn(AllCases()), CaseName);

// Many layers whose determinants are all huge (or all tiny): the running product of 1/det
// would leave the range of doubles after a few dozen layers, so the accumulator must fold it
// into logs along the way. The total must match the sum of per-layer logs.
class ExtremeDeterminantTest : public ::testing::TestWithParam<double> {};

TEST_P(ExtremeDeterminantTest, FoldingKeepsTheSumExact) {
  const double wu = GetParam();  // wᵀu; 1 + wᵀû = softplus(wᵀu)
  const int d = 2, n = 9, layers = 120;
  PlanarLayer layer(d);
  Vector p(2 * d + 1);
  p << wu, 0.0, 1.0, 0.0, 0.0;  // u = (wᵀu, 0), w = (1, 0), b = 0
  Rng rng(8);
  Matrix z(d, n);
  rng.FillNormal(&z);
  z *= 1e-4;  // h = tanh(wᵀz) ≈ 1e-4, so det = h² + (1 + wᵀû)(1 − h²) is far from 1
  LogDetAccumulator fast(n), slow(n, /*allow_products=*/false);
  auto cache = layer.NewCache(n);
  Matrix out(d, n), out_slow(d, n);
  for (int k = 0; k < layers; ++k) {
    layer.Forward(p, z, out, fast, cache.get());
    layer.Forward(p, z, out_slow, slow, cache.get());
  }
  fast.Fold();
  slow.Fold();
  ASSERT_TRUE(fast.log_sum().allFinite()) << fast.log_sum();
  const double scale = slow.log_sum().cwiseAbs().maxCoeff();
  EXPECT_GT(scale, 1000.0);  // the product alone would have over- or underflowed
  EXPECT_LT((fast.log_sum() - slow.log_sum()).cwiseAbs().maxCoeff(), 1e-13 * scale);
}

INSTANTIATE_TEST_SUITE_P(HugeAndTiny, ExtremeDeterminantTest,
                         ::testing::Values(1e6, 1e4, -30.0, -200.0));

TEST(LogDetAccumulatorTest, ReserveProductRefusesUnboundedFactors) {
  LogDetAccumulator acc(3);
  EXPECT_FALSE(acc.ReserveProduct(std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(acc.ReserveProduct(std::nan("")));
  EXPECT_FALSE(acc.ReserveProduct(LogDetAccumulator::kMaxProductLog2 + 1));
  EXPECT_TRUE(acc.ReserveProduct(10));
  LogDetAccumulator logs_only(3, /*allow_products=*/false);
  EXPECT_FALSE(logs_only.ReserveProduct(1));
}

TEST(LogDetAccumulatorTest, FoldsBeforeTheProductCouldOverflow) {
  LogDetAccumulator acc(2);
  // 1/det = 2^-900 per step, announced as |log2 det| ≤ 900: a second such factor must fold
  // the first into the sum first.
  for (int k = 0; k < 3; ++k) {
    ASSERT_TRUE(acc.ReserveProduct(900));
    acc.inv_det_product() *= std::ldexp(1.0, -900);
    ASSERT_GT(acc.inv_det_product()[0], 0.0);
  }
  acc.AddConstant(1.5);
  acc.Fold();
  EXPECT_NEAR(acc.log_sum()[0], 3 * 900 * std::log(2.0) + 1.5, 1e-10);
  EXPECT_EQ(acc.inv_det_product()[1], 1.0);
}

}  // namespace
}  // namespace flowvi
