// The flow as a whole: spec parsing, the gradient of the whole loss, log q through the
// inverses against the forward pass, normalization by quadrature, serialization.
#include "engine/flows/flow.h"

#include <cmath>
#include <numbers>

#include "engine/fit/fitter.h"
#include "engine/flows/flow_io.h"
#include "engine/flows/flow_spec.h"
#include "engine/targets/catalog.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/testing/gradient_check.h"

namespace flowvi {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Flow> MakeFlow(absl::string_view spec, int dim, uint64_t seed = 1) {
  absl::StatusOr<FlowSpec> s = ParseFlowSpec(spec);
  EXPECT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::unique_ptr<Flow>> f = Flow::Create(*s, dim);
  EXPECT_TRUE(f.ok()) << f.status();
  Rng rng(seed);
  (*f)->InitParams(rng);
  // Perturb so that the base is not the standard normal and every term matters.
  for (Eigen::Index i = 0; i < (*f)->num_params(); ++i)
    (*f)->mutable_params()[i] += 0.2 * rng.Normal();
  return *std::move(f);
}

TEST(FlowSpecTest, ParsesAndPrintsCanonically) {
  absl::StatusOr<FlowSpec> s = ParseFlowSpec(" radial*8 , planar*8,planar ");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->groups.size(), 3u);
  EXPECT_EQ(s->groups[0].type, "radial");
  EXPECT_EQ(s->groups[0].count, 8);
  EXPECT_EQ(s->groups[2].count, 1);
  EXPECT_EQ(s->num_layers(), 17);
  EXPECT_EQ(s->ToString(), "radial*8,planar*8,planar");
  absl::StatusOr<FlowSpec> again = ParseFlowSpec(s->ToString());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *s);
  absl::StatusOr<FlowSpec> mf = ParseFlowSpec("meanfield");
  ASSERT_TRUE(mf.ok());
  EXPECT_EQ(mf->num_layers(), 0);
  EXPECT_EQ(mf->ToString(), "meanfield");
}

TEST(FlowSpecTest, ErrorsNameTheOffendingToken) {
  struct Bad {
    const char* text;
    const char* says;
  };
  for (const Bad& bad :
       {Bad{"plnar*32", "group 'plnar*32': unknown layer type 'plnar'; known: planar, radial"},
        Bad{"planar*0", "between 1 and"}, Bad{"planar*x", "layer count 'x' is not an integer"},
        Bad{"planar*32,,radial", "empty layer group"}, Bad{"", "is empty"},
        Bad{"planar*200000", "between 1 and"}, Bad{"planar(width=3)", "has no option 'width'"},
        Bad{"planar,meanfield", "must stand alone"}, Bad{"planar)", "unbalanced"},
        Bad{"pla-nar", "is not a name"}}) {
    absl::StatusOr<FlowSpec> s = ParseFlowSpec(bad.text);
    ASSERT_FALSE(s.ok()) << bad.text;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad.text;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(bad.says)) << bad.text;
  }
}

TEST(FlowTest, CreateRejectsBadDimensionAndSpec) {
  EXPECT_EQ(Flow::Create(FlowSpec{}, 0).status().code(), absl::StatusCode::kInvalidArgument);
  FlowSpec bad;
  bad.groups.push_back({"nope", {}, 1});
  EXPECT_EQ(Flow::Create(bad, 2).status().code(), absl::StatusCode::kInvalidArgument);
  FlowSpec zero;
  zero.groups.push_back({"planar", {}, 0});
  EXPECT_EQ(Flow::Create(zero, 2).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FlowTest, ParameterCountsAndLayout) {
  auto f = MakeFlow("planar*3,radial*2", 4);
  EXPECT_EQ(f->num_layers(), 6);  // base + 5
  EXPECT_EQ(f->num_params(), 2 * 4 + 3 * (2 * 4 + 1) + 2 * (4 + 2));
  EXPECT_EQ(f->param_offset(1), 8);
}

// The gradient of the whole objective, mean(log q − β log p~) at fixed ε, against finite
// differences in every parameter.
TEST(FlowTest, WholeLossGradientMatchesFiniteDifferences) {
  for (const char* target_name : {"u1", "eight_schools"}) {
    absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget(target_name, {});
    ASSERT_TRUE(target.ok());
    const int d = (*target)->dim();
    auto flow = MakeFlow("planar*4,radial*3", d);
    // Shrink the init so eight schools' funnel geometry stays in a well-scaled region.
    flow->mutable_params() *= 0.5;
    const int n = 7;
    const double beta = 0.7;
    auto ws = flow->NewWorkspace(n);
    Rng rng(2);
    rng.FillNormal(&ws->eps());
    const Matrix eps = ws->eps();
    auto loss = [&](const Vector& p) {
      const Vector saved = flow->params();
      flow->mutable_params() = p;
      auto w = flow->NewWorkspace(n);
      w->eps() = eps;
      flow->Forward(w.get());
      RowVector log_p(n);
      (*target)->LogDensity(w->z(), &log_p, nullptr);
      flow->mutable_params() = saved;
      return (w->log_q() - beta * log_p).sum() / n;
    };
    flow->Forward(ws.get());
    RowVector log_p(n);
    Matrix grad_p(d, n);
    (*target)->LogDensity(ws->z(), &log_p, &grad_p);
    grad_p *= -beta / n;
    Vector grad = Vector::Zero(flow->num_params());
    flow->Backward(grad_p, RowVector::Constant(n, 1.0 / n), ws.get(), grad);
    const Vector numeric = testing::NumericGradient(loss, flow->params());
    EXPECT_LT(testing::MaxRelativeError(grad, numeric), 1e-6)
        << target_name << "\nanalytic " << grad.transpose() << "\nnumeric  " << numeric.transpose();
  }
}

TEST(FlowTest, LogDensityThroughInversesMatchesSampling) {
  for (const char* spec : {"meanfield", "planar*16", "radial*6,planar*6"}) {
    auto flow = MakeFlow(spec, 3);
    auto ws = flow->NewWorkspace(500);
    Rng rng(9);
    flow->Sample(rng, ws.get());
    RowVector log_q;
    Matrix a, b;
    ASSERT_TRUE(flow->LogDensity(ws->z(), &log_q, &a, &b).ok());
    EXPECT_LT((log_q - ws->log_q()).cwiseAbs().maxCoeff(), 1e-9) << spec;
  }
}

TEST(FlowTest, LogDensityRejectsBadPoints) {
  auto flow = MakeFlow("planar*2", 2);
  RowVector log_q;
  Matrix a, b;
  EXPECT_EQ(flow->LogDensity(Matrix::Zero(3, 4), &log_q, &a, &b).code(),
            absl::StatusCode::kInvalidArgument);
  Matrix pts = Matrix::Zero(2, 4);
  pts(1, 3) = INFINITY;
  absl::Status s = flow->LogDensity(pts, &log_q, &a, &b);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("point 3"));
}

// A flow trained on u1: exp(log q) integrates to 1 (midpoint rule on a grid wide enough for
// its mass), and its samples fall in regions with the frequencies the density gives them.
TEST(FlowTest, TrainedDensityIntegratesToOneAndMatchesSamples) {
  absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget("u1", {});
  ASSERT_TRUE(target.ok());
  auto flow = MakeFlow("planar*8,radial*2", 2, 4);
  FitOptions o;
  o.iterations = 3000;
  o.learning_rate = 5e-3;
  auto fitter = Fitter::Create(flow.get(), target->get(), o);
  ASSERT_TRUE(fitter.ok());
  ASSERT_TRUE((*fitter)->Run().ok());

  const int m = 800;
  const double lo = -12, hi = 12, h = (hi - lo) / m;
  Matrix grid(2, m * m);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < m; ++j) {
      grid(0, i * m + j) = lo + (i + 0.5) * h;
      grid(1, i * m + j) = lo + (j + 0.5) * h;
    }
  }
  RowVector log_q;
  Matrix a, b;
  ASSERT_TRUE(flow->LogDensity(grid, &log_q, &a, &b).ok());
  // Regions: the four quadrants, and the disc of radius 2 around the origin.
  auto region = [](double x, double y) { return (x > 0) + 2 * (y > 0); };
  double mass[4] = {0, 0, 0, 0}, disc = 0, total = 0;
  for (Eigen::Index k = 0; k < grid.cols(); ++k) {
    const double p = std::exp(log_q[k]) * h * h;
    total += p;
    mass[region(grid(0, k), grid(1, k))] += p;
    if (grid.col(k).norm() < 2) disc += p;
  }
  EXPECT_NEAR(total, 1.0, 1e-3);

  const int n = 200000;
  auto ws = flow->NewWorkspace(n);
  Rng rng(21);
  flow->Sample(rng, ws.get());
  double freq[4] = {0, 0, 0, 0}, disc_freq = 0;
  for (int k = 0; k < n; ++k) {
    freq[region(ws->z()(0, k), ws->z()(1, k))] += 1.0 / n;
    if (ws->z().col(k).norm() < 2) disc_freq += 1.0 / n;
  }
  for (int r = 0; r < 4; ++r) {
    const double se = std::sqrt(mass[r] * (1 - mass[r]) / n);
    EXPECT_NEAR(freq[r], mass[r], 5 * se + 2e-3) << "quadrant " << r;
  }
  EXPECT_NEAR(disc_freq, disc, 5 * std::sqrt(disc * (1 - disc) / n) + 2e-3);
}

TEST(FlowIoTest, RoundTripsExactly) {
  auto flow = MakeFlow("radial*2,planar*5", 3);
  const FlowMetadata meta = {{"target", "u1"}, {"note", "two\nlines \\ backslash"}};
  const std::string text = SerializeFlow(*flow, meta);
  FlowMetadata back_meta;
  absl::StatusOr<std::unique_ptr<Flow>> back = DeserializeFlow(text, &back_meta);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)->spec(), flow->spec());
  EXPECT_EQ((*back)->dim(), 3);
  ASSERT_EQ((*back)->num_params(), flow->num_params());
  for (Eigen::Index i = 0; i < flow->num_params(); ++i) {
    EXPECT_EQ((*back)->params()[i], flow->params()[i]);  // bit-exact
  }
  EXPECT_EQ(back_meta, meta);
  EXPECT_EQ(SerializeFlow(**back, back_meta), text);
}

TEST(FlowIoTest, RejectsMalformedDocuments) {
  auto flow = MakeFlow("planar*2", 2);
  const std::string good = SerializeFlow(*flow);
  auto expect_bad = [](const std::string& text, absl::string_view says) {
    absl::StatusOr<std::unique_ptr<Flow>> f = DeserializeFlow(text);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(std::string(says)));
  };
  expect_bad("flowvi-flow 2\n", "line 1");
  std::string t = good;
  t.replace(t.find("planar*2"), 8, "planar*3");
  expect_bad(t, "parameters");
  t = good;
  t.replace(t.find("dim 2"), 5, "dim 0");
  expect_bad(t, "dim");
  t = good;
  t.replace(t.find("end"), 3, "");
  expect_bad(t, "expected 'end'");
  t = good;
  const size_t first_param = t.find("params ") + 10;
  t.replace(t.find('\n', first_param) + 1, 0, "nan\n");
  expect_bad(t, "");
}

}  // namespace
}  // namespace flowvi
