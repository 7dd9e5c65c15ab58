// Coupling and mixing layers beyond the shared battery of layers_test.cc: dimension and option
// errors, identity at initialization, the spline at and beyond its interval's edges and at its
// knots (against an independent evaluation of the formula), orthogonality and permutation
// validity for ANY stored structure, bounded RealNVP scales, serialization, and fixed structure
// that training never moves.
#include <Eigen/LU>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/diagnostics/diagnostics.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow.h"
#include "engine/flows/flow_io.h"
#include "engine/flows/flow_spec.h"
#include "engine/flows/layer_catalog.h"
#include "engine/targets/catalog.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flowvi {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Layer> MakeLayer(const std::string& spec_text, int dim) {
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec(spec_text);
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return nullptr;
  const LayerGroup& g = spec->groups[0];
  absl::StatusOr<std::unique_ptr<Layer>> layer = FindLayer(g.type)->factory(dim, g.options);
  EXPECT_TRUE(layer.ok()) << layer.status();
  return layer.ok() ? *std::move(layer) : nullptr;
}

struct Evaluation {
  Matrix out, grad_in;
  RowVector logdet;
  Vector grad_params;
};

// Forward and Backward with dL/dout = 1 and dL/dlogdet = 1.
Evaluation Evaluate(const Layer& layer, const Vector& params, const Matrix& in) {
  Evaluation e;
  const int n = static_cast<int>(in.cols());
  auto cache = layer.NewCache(n);
  e.out.resize(in.rows(), n);
  e.logdet = RowVector::Zero(n);
  layer.Forward(params, in, e.out, e.logdet, cache.get());
  e.grad_params = Vector::Zero(params.size());
  e.grad_in.resize(in.rows(), n);
  layer.Backward(params, in, Matrix::Ones(in.rows(), n), RowVector::Ones(n), cache.get(),
                 e.grad_params, e.grad_in);
  return e;
}

TEST(CouplingTest, OneDimensionIsInvalidArgumentNamingTheLayer) {
  for (const char* type : {"nice", "realnvp", "spline"}) {
    absl::StatusOr<FlowSpec> spec = ParseFlowSpec(type);
    ASSERT_TRUE(spec.ok());
    absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, 1);
    ASSERT_FALSE(flow.ok()) << type;
    EXPECT_EQ(flow.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(flow.status().message()), HasSubstr(absl::StrCat("'", type, "'")));
    EXPECT_THAT(std::string(flow.status().message()), HasSubstr("dimension 1"));
  }
}

TEST(CouplingTest, BadOptionsAreInvalidArgumentNamingTheOption) {
  struct Bad {
    const char* spec;
    const char* says;
  };
  for (const Bad& bad : {Bad{"nice(hidden=0)", "hidden=0"}, Bad{"realnvp(depth=9)", "depth=9"},
                         Bad{"realnvp(scale_bound=0)", "scale_bound=0"},
                         Bad{"spline(bins=0)", "bins=0"}, Bad{"spline(bins=129)", "bins=129"},
                         Bad{"spline(bound=-1)", "bound=-1"}, Bad{"nice(bins=3)", "bins"}}) {
    absl::StatusOr<FlowSpec> spec = ParseFlowSpec(bad.spec);
    absl::Status status = spec.status();
    if (spec.ok()) status = Flow::Create(*spec, 4).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad.spec;
    EXPECT_THAT(std::string(status.message()), HasSubstr(bad.says)) << bad.spec;
  }
}

// A fresh coupling is the identity followed by the swap of halves: (x_b, x_a).
TEST(CouplingTest, StartsAsIdentityWithHalvesSwapped) {
  for (const char* type : {"nice", "realnvp", "spline", "realnvp(relu=true)"}) {
    for (int d : {2, 5}) {
      auto layer = MakeLayer(type, d);
      ASSERT_NE(layer, nullptr);
      Vector params(layer->num_params());
      Rng rng(4);
      layer->InitParams(rng, params);
      Matrix in(d, 7);
      rng.FillNormal(&in);
      in *= 2.0;
      const Evaluation e = Evaluate(*layer, params, in);
      const int d_a = d / 2, d_b = d - d_a;
      EXPECT_LT((e.out.topRows(d_b) - in.bottomRows(d_b)).cwiseAbs().maxCoeff(), 1e-14) << type;
      EXPECT_EQ(e.out.bottomRows(d_a), in.topRows(d_a)) << type;
      EXPECT_LT(e.logdet.cwiseAbs().maxCoeff(), 1e-14) << type;
    }
  }
}

TEST(CouplingTest, RealNvpScaleStaysBoundedForWildParameters) {
  auto layer = MakeLayer("realnvp(hidden=4,depth=1,scale_bound=2)", 4);
  ASSERT_NE(layer, nullptr);
  Rng rng(6);
  Vector params(layer->num_params());
  for (Eigen::Index i = 0; i < params.size(); ++i) params[i] = 1e3 * rng.Normal();
  Matrix in(4, 5);
  rng.FillNormal(&in);
  in(3, 0) = 1e300;   // in x_b: scaled by at most e^2, no overflow
  in(0, 1) = -1e300;  // in x_a: the conditioner saturates
  const Evaluation e = Evaluate(*layer, params, in);
  EXPECT_TRUE(e.out.allFinite());
  EXPECT_TRUE(e.grad_in.allFinite());
  EXPECT_TRUE(e.grad_params.allFinite());
  // |log|det|| ≤ d_b · c.
  EXPECT_LE(e.logdet.cwiseAbs().maxCoeff(), 2 * 2.0);
  Matrix back;
  RowVector ld = RowVector::Zero(5);
  ASSERT_TRUE(layer->Inverse(params, e.out, back, ld).ok());
  EXPECT_LT((back.col(2) - in.col(2)).cwiseAbs().maxCoeff(), 1e-10);
}

// Extreme inputs (±1e300, ±1e-300, 0, the spline's edges) in both halves: values,
// log-determinants and gradients stay finite, and the inverse recovers the input.
class ExtremeInputTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ExtremeInputTest, StaysFiniteAndInverts) {
  auto layer = MakeLayer(GetParam(), 4);
  ASSERT_NE(layer, nullptr);
  Rng rng(12);
  Vector params(layer->num_params());
  layer->InitParams(rng, params);
  const int trainable = layer->num_params() - layer->num_fixed_params();
  for (int i = 0; i < trainable; ++i) params[i] += 0.3 * rng.Normal();
  Matrix in(4, 6);
  in.col(0) << 1e300, -1e300, 1e300, -1e300;
  in.col(1) << 1e-300, -1e-300, 0.0, 1e-300;
  in.col(2) << 2.0, -2.0, 2.0, -2.0;  // the spline's edges (bound=2)
  in.col(3) << 0.5, 1e300, -3.0, 2.0 + 1e-12;
  in.col(4) << -1e300, 0.1, -2.0 - 1e-12, 1e-300;
  in.col(5) << 0.0, 0.0, 0.0, 0.0;
  const Evaluation e = Evaluate(*layer, params, in);
  EXPECT_TRUE(e.out.allFinite());
  EXPECT_TRUE(e.logdet.allFinite());
  EXPECT_TRUE(e.grad_in.allFinite());
  EXPECT_TRUE(e.grad_params.allFinite());
  Matrix back;
  RowVector ld = RowVector::Zero(in.cols());
  ASSERT_TRUE(layer->Inverse(params, e.out, back, ld).ok());
  // Element-wise maps recover each coordinate to its own relative accuracy; mixing layers
  // (orthogonal) only to the accuracy of the column's largest coordinate.
  const bool mixes = layer->type() == "orthogonal";
  for (Eigen::Index j = 0; j < in.cols(); ++j) {
    for (Eigen::Index i = 0; i < 4; ++i) {
      const double scale = mixes ? in.col(j).cwiseAbs().maxCoeff() : std::abs(in(i, j));
      EXPECT_NEAR(back(i, j), in(i, j), 1e-9 * std::max(1.0, scale))
          << "row " << i << ", column " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layers, ExtremeInputTest,
                         ::testing::Values("nice(hidden=6)", "realnvp(hidden=6)",
                                           "spline(hidden=6,bins=4,bound=2)", "permute",
                                           "orthogonal", "scale"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           const std::string spec = param_info.param;
                           return spec.substr(0, spec.find('('));
                         });

// A 2-D spline whose conditioner is a constant (depth 0, zero weights): its knots are known
// from the biases alone, so the test computes them and the spline independently.
class SplineEdgeTest : public ::testing::Test {
 protected:
  static constexpr int kBins = 5;
  static constexpr double kBound = 2.0;

  void SetUp() override {
    layer_ = MakeLayer("spline(bins=5,bound=2,depth=0)", 2);
    ASSERT_NE(layer_, nullptr);
    ASSERT_EQ(layer_->num_params(), 2 * (3 * kBins - 1));  // W (14 x 1), then b (14)
    params_ = Vector::Zero(layer_->num_params());
    Rng rng(8);
    for (int p = 0; p < 3 * kBins - 1; ++p) params_[3 * kBins - 1 + p] = 1.5 * rng.Normal();
    const auto b = params_.tail(3 * kBins - 1);
    auto sizes = [&](int first) {
      std::vector<double> e(kBins);
      double sum = 0;
      for (int l = 0; l < kBins; ++l) sum += e[l] = std::exp(b[first + l]);
      for (double& v : e) v = 2 * kBound * (1e-3 + (1 - 1e-3 * kBins) * v / sum);
      return e;
    };
    widths_ = sizes(0);
    heights_ = sizes(kBins);
    derivs_ = {1.0};
    const double c0 = std::log(std::exp(1 - 1e-3) - 1);
    for (int l = 0; l + 1 < kBins; ++l) {
      derivs_.push_back(1e-3 + std::log1p(std::exp(b[2 * kBins + l] + c0)));
    }
    derivs_.push_back(1.0);
    xs_ = {-kBound};
    ys_ = {-kBound};
    for (int l = 0; l < kBins; ++l) {
      xs_.push_back(xs_.back() + widths_[l]);
      ys_.push_back(ys_.back() + heights_[l]);
    }
  }

  // Durkan et al. eq. 4, written out separately from the layer: (y, dy/dx).
  std::pair<double, double> Reference(double x) const {
    if (x < -kBound || x > kBound) return {x, 1.0};
    int k = 0;
    while (k < kBins - 1 && x >= xs_[k + 1]) ++k;
    const double w = widths_[k], h = heights_[k], s = h / w;
    const double xi = (x - xs_[k]) / w;
    const double d0 = derivs_[k], d1 = derivs_[k + 1];
    const double den = s + (d1 + d0 - 2 * s) * xi * (1 - xi);
    const double y = ys_[k] + h * (s * xi * xi + d0 * xi * (1 - xi)) / den;
    const double dy =
        s * s * (d1 * xi * xi + 2 * s * xi * (1 - xi) + d0 * (1 - xi) * (1 - xi)) / (den * den);
    return {y, dy};
  }

  // Points in row 1 (the transformed coordinate); row 0 is the conditioner's input, unused.
  Matrix Points(const std::vector<double>& xs) const {
    Matrix in(2, static_cast<Eigen::Index>(xs.size()));
    for (size_t j = 0; j < xs.size(); ++j) in.col(static_cast<Eigen::Index>(j)) << 0.3, xs[j];
    return in;
  }

  std::unique_ptr<Layer> layer_;
  Vector params_;
  std::vector<double> widths_, heights_, derivs_, xs_, ys_;
};

TEST_F(SplineEdgeTest, MatchesTheFormulaAndStaysFiniteAtEdgesKnotsAndBeyond) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> xs = {-kBound,
                            kBound,
                            -kBound - 1e-12,
                            -kBound + 1e-12,
                            kBound - 1e-12,
                            kBound + 1e-12,
                            1e300,
                            -1e300,
                            1e-300,
                            0.0,
                            inf,
                            -inf,
                            std::nextafter(kBound, 0.0),
                            std::nextafter(-kBound, 0.0)};
  for (int m = 1; m < kBins; ++m) {  // knots, and either side of them
    xs.push_back(xs_[m]);
    xs.push_back(std::nextafter(xs_[m], -inf));
    xs.push_back(xs_[m] + 1e-12);
  }
  const Matrix in = Points(xs);
  const Evaluation e = Evaluate(*layer_, params_, in);
  ASSERT_TRUE(e.logdet.allFinite());
  ASSERT_TRUE(e.grad_params.allFinite());
  for (size_t j = 0; j < xs.size(); ++j) {
    const double x = xs[j];
    const Eigen::Index c = static_cast<Eigen::Index>(j);
    if (std::isinf(x)) {
      EXPECT_EQ(e.out(0, c), x);  // passes through the identity tail
      EXPECT_EQ(e.logdet[c], 0.0);
      EXPECT_EQ(e.grad_in(1, c), 1.0);
      continue;
    }
    const auto [y, dy] = Reference(x);
    EXPECT_NEAR(e.out(0, c), y, 1e-12 * std::max(1.0, std::abs(y))) << "x = " << x;
    EXPECT_NEAR(e.logdet[c], std::log(dy), 1e-10) << "x = " << x;
    EXPECT_TRUE(std::isfinite(e.grad_in(1, c))) << "x = " << x;
    // dL/dx with dL/dy = 1 and dL/dlogdet = 1 is dy/dx + d log(dy/dx)/dx: finite, and equal to
    // 1 in the tails.
    if (std::abs(x) > kBound) {
      EXPECT_EQ(e.grad_in(1, c), 1.0) << "x = " << x;
    }
  }
  // The edges join the identity tails continuously in value and slope.
  for (double edge : {-kBound, kBound}) {
    const auto [y, dy] = Reference(edge);
    EXPECT_NEAR(y, edge, 1e-14);
    EXPECT_NEAR(dy, 1.0, 1e-12);
  }
}

TEST_F(SplineEdgeTest, InverseRoundTripsAtEdgesAndKnots) {
  std::vector<double> xs = {
      -kBound, kBound, -kBound - 1e-12, kBound - 1e-12, kBound + 1e-12, 1e300, -1e300, 0.0,
      0.7,     -1.3};
  for (int m = 1; m < kBins; ++m) xs.push_back(xs_[m]);
  const Matrix in = Points(xs);
  const Evaluation e = Evaluate(*layer_, params_, in);
  Matrix back;
  RowVector ld = RowVector::Zero(in.cols());
  ASSERT_TRUE(layer_->Inverse(params_, e.out, back, ld).ok());
  for (Eigen::Index j = 0; j < in.cols(); ++j) {
    EXPECT_NEAR(back(1, j), in(1, j), 1e-12 * std::max(1.0, std::abs(in(1, j))))
        << "x = " << in(1, j);
    EXPECT_NEAR(ld[j], e.logdet[j], 1e-9) << "x = " << in(1, j);
  }
  // And from the output side: knots of the y grid map back onto the x knots.
  Matrix out = Points(ys_);
  out.row(0) = out.row(1);
  out.row(1).setConstant(0.3);
  ASSERT_TRUE(layer_->Inverse(params_, out, back, ld).ok());
  for (int m = 0; m <= kBins; ++m) EXPECT_NEAR(back(1, m), xs_[m], 1e-12) << "knot " << m;
}

TEST(MixingTest, OrthogonalIsOrthogonalForAnyVectors) {
  auto layer = MakeLayer("orthogonal", 5);
  ASSERT_NE(layer, nullptr);
  Rng rng(9);
  for (int trial = 0; trial < 4; ++trial) {
    Vector params(25);
    for (Eigen::Index i = 0; i < 25; ++i) params[i] = 3 * rng.Normal();
    if (trial == 1) params.segment(5, 5).setZero();  // H(0) = I
    if (trial == 2) params.setZero();
    if (trial == 3) params.segment(10, 5) *= 1e150;  // ‖v‖² overflows: skipped, still valid
    const Evaluation e = Evaluate(*layer, params, Matrix::Identity(5, 5));  // columns of Q
    EXPECT_LT((e.out.transpose() * e.out - Matrix::Identity(5, 5)).cwiseAbs().maxCoeff(), 1e-13);
    EXPECT_NEAR(std::abs(e.out.determinant()), 1.0, 1e-13);
    if (trial == 2) {
      EXPECT_EQ(e.out, Matrix::Identity(5, 5));
    }
  }
}

TEST(MixingTest, PermuteIsAPermutationForAnyKeys) {
  auto layer = MakeLayer("permute", 4);
  ASSERT_NE(layer, nullptr);
  const double nan = std::nan("");
  Vector keys(4);
  Matrix in(4, 1);
  in << 10, 20, 30, 40;
  keys << 0.7, 0.1, 0.7, -2.0;  // tie between 0 and 2: index order
  EXPECT_EQ(Evaluate(*layer, keys, in).out, (Matrix(4, 1) << 40, 20, 10, 30).finished());
  keys << 5, 5, 5, 5;
  EXPECT_EQ(Evaluate(*layer, keys, in).out, in);
  keys << nan, 1, nan, 0;  // NaN keys last, by index
  EXPECT_EQ(Evaluate(*layer, keys, in).out, (Matrix(4, 1) << 40, 20, 10, 30).finished());
}

// Flows mixing every new type: serialization round trip, and log q through the inverses.
const char* const kMixedSpec =
    "nice(hidden=8),permute,realnvp(hidden=8),orthogonal,spline(hidden=8,bins=4),scale";

TEST(CouplingFlowTest, SerializationRoundTripsBitForBit) {
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*ParseFlowSpec(kMixedSpec), 5);
  ASSERT_TRUE(flow.ok()) << flow.status();
  Rng rng(1);
  (*flow)->InitParams(rng);
  for (Eigen::Index i = 0; i < (*flow)->num_params(); ++i) {
    (*flow)->mutable_params()[i] += 0.1 * rng.Normal();  // leave the identity start
  }
  absl::StatusOr<std::unique_ptr<Flow>> back = DeserializeFlow(SerializeFlow(**flow));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)->spec(), (*flow)->spec());
  ASSERT_EQ((*back)->params().size(), (*flow)->params().size());
  EXPECT_EQ(std::memcmp((*back)->params().data(), (*flow)->params().data(),
                        sizeof(double) * (*flow)->params().size()),
            0);
  auto ws_a = (*flow)->NewWorkspace(64), ws_b = (*back)->NewWorkspace(64);
  Rng ra(5), rb(5);
  (*flow)->Sample(ra, ws_a.get());
  (*back)->Sample(rb, ws_b.get());
  EXPECT_EQ(ws_a->z(), ws_b->z());
  EXPECT_EQ(ws_a->log_q(), ws_b->log_q());
  // Fixed structure is counted: permute (5 keys) and orthogonal (25 Householder numbers).
  EXPECT_EQ((*flow)->num_fixed_params(), 30);
}

TEST(CouplingFlowTest, LogDensityThroughInversesMatchesSampling) {
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*ParseFlowSpec(kMixedSpec), 3);
  ASSERT_TRUE(flow.ok()) << flow.status();
  Rng rng(2);
  (*flow)->InitParams(rng);
  for (Eigen::Index i = 0; i < (*flow)->num_params(); ++i) {
    (*flow)->mutable_params()[i] += 0.2 * rng.Normal();
  }
  auto ws = (*flow)->NewWorkspace(300);
  (*flow)->Sample(rng, ws.get());
  RowVector log_q;
  Matrix a, b;
  ASSERT_TRUE((*flow)->LogDensity(ws->z(), &log_q, &a, &b).ok());
  EXPECT_LT((log_q - ws->log_q()).cwiseAbs().maxCoeff(), 1e-9);
}

// Fixed structure has zero gradient, so Adam never moves it (engine/fit/optimizer.cc).
TEST(CouplingFlowTest, TrainingNeverMovesFixedStructure) {
  absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget("gaussian", {{"dim", int64_t{4}}});
  ASSERT_TRUE(target.ok()) << target.status();
  absl::StatusOr<std::unique_ptr<Flow>> flow =
      Flow::Create(*ParseFlowSpec("nice(hidden=4),permute,orthogonal,realnvp(hidden=4)"), 4);
  ASSERT_TRUE(flow.ok()) << flow.status();
  FitOptions o;
  o.iterations = 50;
  o.batch_size = 32;
  o.learning_rate = 1e-2;
  auto fitter = Fitter::Create(flow->get(), target->get(), o);
  ASSERT_TRUE(fitter.ok()) << fitter.status();
  IterationSummary summary;
  ASSERT_TRUE((*fitter)->Step(&summary).ok());  // parameters initialized by Create
  const Flow& f = **flow;
  const Vector fixed_before = f.params().segment(f.param_offset(2), 4 + 16);
  const Vector all_before = f.params();
  for (int i = 0; i < 40; ++i) ASSERT_TRUE((*fitter)->Step(&summary).ok());
  EXPECT_EQ(f.params().segment(f.param_offset(2), 4 + 16), fixed_before);
  EXPECT_NE(f.params(), all_before);  // while the rest trains
}

// The memory estimate covers the conditioner's activations and the spline's blocks, which grow
// with width, depth and bins rather than with D alone.
TEST(CouplingFlowTest, WorkspaceEstimateCoversTheCaches) {
  const int d = 10, n = 100, h = 64, depth = 3, k = 16;
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(
      *ParseFlowSpec(absl::StrCat("spline(hidden=", h, ",depth=", depth, ",bins=", k, ")*2")), d);
  ASSERT_TRUE(flow.ok()) << flow.status();
  // Per layer and column: hidden activations and two backward buffers, the conditioner's
  // output and its gradient ((3K − 1) per transformed coordinate, d/2 of them), and the
  // spline's 4K + 1 blocks of d/2 rows.
  const double per_layer = depth * h + 2 * h + 2 * (3 * k - 1) * (d / 2) + (4 * k + 1) * (d / 2);
  EXPECT_GE((*flow)->WorkspaceBytes(n), 8.0 * n * 2 * per_layer);
  EXPECT_LE((*flow)->WorkspaceBytes(n), 8.0 * n * (2 * per_layer + 10 * d + 100));
}

// Same request and seed, same bits: two fits of a flow with every new type.
TEST(CouplingFlowTest, FitsAreBitIdenticalForTheSameSeed) {
  Vector params[2];
  for (Vector& p : params) {
    absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget("banana", {});
    ASSERT_TRUE(target.ok()) << target.status();
    absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*ParseFlowSpec(kMixedSpec), 2);
    ASSERT_TRUE(flow.ok()) << flow.status();
    FitOptions o;
    o.iterations = 60;
    o.batch_size = 40;
    o.seed = 17;
    auto fitter = Fitter::Create(flow->get(), target->get(), o);
    ASSERT_TRUE(fitter.ok()) << fitter.status();
    ASSERT_TRUE((*fitter)->Run().ok());
    p = (*flow)->params();
  }
  ASSERT_EQ(params[0].size(), params[1].size());
  EXPECT_EQ(std::memcmp(params[0].data(), params[1].data(), sizeof(double) * params[0].size()), 0);
}

// Reverse-KL fits to the paper's first energy (log Z = 1.877502 by quadrature) in a few thousand
// steps: KL(q‖p) = log Z − ELBO comparable to planar*32's (< 0.1 after 20000 steps, fit_test.cc)
// for each of three seeds. Short fits with a large learning rate are chaotic (3000 steps, batch 64,
// lr 3e-3 landed anywhere between 0.07 and 1.1 over seeds, and moved with the last bit of any
// kernel change); at batch 128 and lr 1e-3 for 6000 steps, spline*2 over seeds 0..10 gave
// 0.03-0.14 but once 0.27 and realnvp*4 0.066-0.090, hence a loose bound per seed and a tight
// one on the median.
class CouplingConvergenceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CouplingConvergenceTest, FitsU1) {
  std::vector<double> kl;
  for (uint64_t seed : {0, 1, 2}) {
    absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget("u1", {});
    ASSERT_TRUE(target.ok()) << target.status();
    absl::StatusOr<FlowSpec> spec = ParseFlowSpec(GetParam());
    ASSERT_TRUE(spec.ok()) << spec.status();
    absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, 2);
    ASSERT_TRUE(flow.ok()) << flow.status();
    FitOptions o;
    o.iterations = 6000;
    o.batch_size = 128;
    o.learning_rate = 1e-3;
    o.anneal_iterations = 2000;
    o.seed = seed;
    auto fitter = Fitter::Create(flow->get(), target->get(), o);
    ASSERT_TRUE(fitter.ok()) << fitter.status();
    ASSERT_TRUE((*fitter)->Run().ok());
    DiagnosticsOptions d_options;
    d_options.num_draws = 20000;
    absl::StatusOr<Diagnostics> d = ComputeDiagnostics(**flow, **target, d_options);
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(d->kl.has_value());
    EXPECT_GT(*d->kl, -3 * d->elbo_se) << "seed " << seed;  // an ELBO above log Z: a bug
    EXPECT_LT(*d->kl, 0.5) << "seed " << seed;
    kl.push_back(*d->kl);
  }
  std::sort(kl.begin(), kl.end());
  EXPECT_LT(kl[1], 0.2) << "median KL over seeds 0, 1, 2";
}

INSTANTIATE_TEST_SUITE_P(Flows, CouplingConvergenceTest,
                         ::testing::Values("realnvp(hidden=16)*4", "spline(hidden=16)*2"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           return std::string(param_info.index == 0 ? "realnvp" : "spline");
                         });

}  // namespace
}  // namespace flowvi
