// Density estimation pieces: data set validation (row and column in every message), the model's
// log-density against closed forms and against its own sampler, normalization by quadrature, the
// maximum-likelihood gradient against finite differences, the standardization round trip,
// determinism and checkpoint/restore of the fitter.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "engine/core/rng.h"
#include "engine/data/dataset.h"
#include "engine/fit/density_fitter.h"
#include "engine/fit/density_model.h"
#include "engine/flows/flow_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/testing/gradient_check.h"

namespace flowvi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

FlowSpec Spec(const std::string& text) {
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec(text);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : FlowSpec{};
}

// A density model on R^dim with random (not identity) parameters.
std::unique_ptr<DensityModel> RandomModel(const std::string& spec, int dim, Vector mean, Vector sd,
                                          uint64_t seed, double scale = 0.3) {
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(Spec(spec), dim);
  EXPECT_TRUE(flow.ok()) << flow.status();
  Rng rng(seed);
  (*flow)->InitParams(rng);
  // Perturb the trainable parameters only: fixed structure keeps its meaning either way.
  for (int i = 0; i < (*flow)->num_params(); ++i)
    (*flow)->mutable_params()[i] += scale * rng.Normal();
  absl::StatusOr<std::unique_ptr<DensityModel>> model =
      DensityModel::Create(*std::move(flow), std::move(mean), std::move(sd));
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

// ---- Dataset ------------------------------------------------------------------------------------

TEST(DensityDatasetTest, RowsBecomeColumns) {
  absl::StatusOr<Dataset> d = Dataset::FromRows({{1, 2}, {3, 4}, {5, 6}});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->dim(), 2);
  EXPECT_EQ(d->size(), 3);
  EXPECT_EQ(d->points()(0, 1), 3);
  EXPECT_EQ(d->points()(1, 2), 6);
}

TEST(DensityDatasetTest, ErrorsNameRowAndColumn) {
  struct Case {
    std::vector<std::vector<double>> rows;
    int dim;
    std::string row, column;
  };
  const std::vector<Case> cases = {
      {{{1, 2}, {3, kNaN}}, 0, "row 2", "column 2"},
      {{{1, 2}, {3, 4}, {kInf, 0}}, 0, "row 3", "column 1"},
      {{{1, 2}, {3, 4}, {5, -kInf}}, 0, "row 3", "column 2"},
      {{{1, 2}, {3, 4, 5}}, 0, "row 2", "column 3"},  // ragged: extra value
      {{{1, 2, 3}, {3, 4}}, 0, "row 2", "column 3"},  // ragged: missing value
      {{{1, 2, 3}}, 2, "row 1", "column 3"},          // the flow's dimension is 2
      {{{1}}, 2, "row 1", "column 2"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Dataset> d = Dataset::FromRows(c.rows, c.dim);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(d.status().message(), AllOf(HasSubstr(c.row), HasSubstr(c.column))) << d.status();
  }
  EXPECT_EQ(Dataset::FromRows({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dataset::FromRows({{}}).status().code(), absl::StatusCode::kInvalidArgument);
  Matrix m(2, 3);
  m << 1, 2, 3, 4, kNaN, 6;
  absl::Status s = Dataset::FromPoints(m).status();
  EXPECT_THAT(s.message(), AllOf(HasSubstr("row 2"), HasSubstr("column 2"))) << s;
  absl::StatusOr<Dataset> ok = Dataset::FromRows({{1, 2}});
  ASSERT_TRUE(ok.ok());
  s = ok->CheckDim(3);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("row 1"), HasSubstr("column 3"))) << s;
}

TEST(DensityDatasetTest, BuilderRejectsABadRowAndKeepsTheGoodOnes) {
  DatasetBuilder b;
  ASSERT_TRUE(b.AddRow(std::vector<double>{1, 2}).ok());
  absl::Status s = b.AddRow(std::vector<double>{1, kNaN});
  EXPECT_THAT(s.message(), AllOf(HasSubstr("row 2"), HasSubstr("column 2"))) << s;
  EXPECT_EQ(b.rows(), 1);
  ASSERT_TRUE(b.AddRow(std::vector<double>{3, 4}).ok());
  absl::StatusOr<Dataset> d = b.Build();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->size(), 2);
  EXPECT_EQ(d->points()(1, 1), 4);
}

// ---- DensityModel -------------------------------------------------------------------------------

TEST(DensityModelTest, FreshModelIsTheStandardizationGaussian) {
  // A freshly initialized flow is the identity, so q = N(mean, diag sd²): a closed form.
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(Spec("realnvp*2,permute"), 3);
  ASSERT_TRUE(flow.ok());
  Rng rng(1);
  (*flow)->InitParams(rng);
  Vector mean(3), sd(3);
  mean << 1, -2, 10;
  sd << 0.5, 2, 30;
  absl::StatusOr<std::unique_ptr<DensityModel>> model =
      DensityModel::Create(*std::move(flow), mean, sd);
  ASSERT_TRUE(model.ok()) << model.status();
  Matrix x(3, 4);
  x << 1, 0, 2, 1.5, -2, 0, 1, -3, 10, 40, -20, 0;
  absl::StatusOr<RowVector> log_q = (*model)->LogDensity(x);
  ASSERT_TRUE(log_q.ok()) << log_q.status();
  for (int j = 0; j < 4; ++j) {
    double expected = 0;
    for (int i = 0; i < 3; ++i) {
      const double u = (x(i, j) - mean[i]) / sd[i];
      expected += -0.5 * u * u - 0.5 * std::log(2 * std::numbers::pi) - std::log(sd[i]);
    }
    EXPECT_NEAR((*log_q)[j], expected, 1e-12);
  }
}

TEST(DensityModelTest, SampleAgreesWithLogDensity) {
  // The sampler inverts the flow layer by layer; LogDensity runs it forward. Their log q must
  // agree on the sampled points, and LogDensity of the samples must invert the standardization.
  Vector mean(4), sd(4);
  mean << 3, -1, 0, 100;
  sd << 2, 0.1, 1, 50;
  for (const std::string spec : {"realnvp*3,permute", "spline(bins=5)*2,orthogonal,nice,scale"}) {
    std::unique_ptr<DensityModel> model = RandomModel(spec, 4, mean, sd, 9);
    ASSERT_NE(model, nullptr);
    std::unique_ptr<DensityWorkspace> ws = model->NewWorkspace(50);
    Rng rng(2);
    ASSERT_TRUE(model->Sample(rng, ws.get()).ok());
    const Matrix x = ws->points();
    RowVector log_q(50);
    ASSERT_TRUE(model->LogDensity(x, ws.get(), &log_q).ok());
    for (int j = 0; j < 50; ++j) {
      EXPECT_NEAR(log_q[j], ws->log_q()[j], 1e-9 * (1 + std::abs(log_q[j]))) << spec;
    }
  }
}

TEST(DensityModelTest, IntegratesToOneIn2D) {
  // ∫ q = 1 by a midpoint rule on a grid wide enough for the standardization's scale.
  Vector mean(2), sd(2);
  mean << 1, -1;
  sd << 0.5, 2;
  std::unique_ptr<DensityModel> model = RandomModel("spline(bins=4)*2,realnvp", 2, mean, sd, 4);
  ASSERT_NE(model, nullptr);
  constexpr int kGrid = 400;
  const double lo0 = 1 - 8 * 0.5, lo1 = -1 - 8 * 2;
  const double h0 = 16 * 0.5 / kGrid, h1 = 16 * 2.0 / kGrid;
  Matrix grid(2, kGrid * kGrid);
  for (int a = 0; a < kGrid; ++a) {
    for (int b = 0; b < kGrid; ++b) {
      grid(0, a * kGrid + b) = lo0 + (a + 0.5) * h0;
      grid(1, a * kGrid + b) = lo1 + (b + 0.5) * h1;
    }
  }
  absl::StatusOr<RowVector> log_q = model->LogDensity(grid);
  ASSERT_TRUE(log_q.ok()) << log_q.status();
  EXPECT_NEAR(log_q->array().exp().sum() * h0 * h1, 1.0, 2e-3);
}

TEST(DensityModelTest, QueryErrors) {
  std::unique_ptr<DensityModel> model =
      RandomModel("realnvp", 2, Vector::Zero(2), Vector::Ones(2), 1);
  ASSERT_NE(model, nullptr);
  Matrix bad(2, 3);
  bad << 0, 1, 2, 3, kNaN, 5;
  absl::Status s = model->LogDensity(bad).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("point 2"), HasSubstr("coordinate 2"))) << s;
  EXPECT_EQ(model->LogDensity(Matrix::Zero(3, 2)).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(Spec("realnvp"), 2);
  ASSERT_TRUE(flow.ok());
  Vector sd(2);
  sd << 1, 0;
  EXPECT_EQ(DensityModel::Create(*std::move(flow), Vector::Zero(2), sd).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DensityModelTest, LossGradientMatchesFiniteDifferences) {
  Vector mean(3), sd(3);
  mean << 0.5, -1, 2;
  sd << 1.5, 0.7, 3;
  for (const std::string spec :
       {"realnvp*2,permute", "spline(bins=4)*2", "nice,orthogonal,scale"}) {
    std::unique_ptr<DensityModel> model = RandomModel(spec, 3, mean, sd, 21);
    ASSERT_NE(model, nullptr);
    std::unique_ptr<DensityWorkspace> ws = model->NewWorkspace(7);
    Rng rng(8);
    Matrix u(3, 7);
    rng.FillNormal(&u);
    ws->standardized() = u;
    Vector grad(model->flow().num_params());
    const double loss = model->LossAndGradient(ws.get(), grad);
    // The truth: the loss recomputed from LogDensity in the user's units, −mean log q.
    const Matrix x = (u.array().colwise() * sd.array()).colwise() + mean.array();
    absl::StatusOr<RowVector> log_q = model->LogDensity(x);
    ASSERT_TRUE(log_q.ok());
    EXPECT_NEAR(loss, -log_q->mean(), 1e-10) << spec;
    const Vector p0 = model->flow().params();
    auto f = [&](const Vector& p) {
      model->mutable_flow().mutable_params() = p;
      absl::StatusOr<RowVector> lq = model->LogDensity(x);
      return lq.ok() ? -lq->mean() : kNaN;
    };
    const Vector numeric = testing::NumericGradient(f, p0, 1e-4);
    model->mutable_flow().mutable_params() = p0;
    // Fixed structure (permutation keys, Householder vectors) is never trained: its gradient is
    // zero by design, so only the trainable entries are compared.
    std::vector<int> trainable;
    const Flow& flow = model->flow();
    for (int k = 0; k < flow.num_layers(); ++k) {
      const int n = flow.layer(k).num_params() - flow.layer(k).num_fixed_params();
      for (int i = 0; i < n; ++i) trainable.push_back(flow.param_offset(k) + i);
    }
    ASSERT_GT(trainable.size(), 10u);
    EXPECT_LT(testing::MaxRelativeError(grad(trainable), numeric(trainable), 1e-3), 1e-6) << spec;
  }
}

// ---- DensityFitter ------------------------------------------------------------------------------

Dataset GaussianData(int n, uint64_t seed) {
  Rng rng(seed);
  Matrix x(2, n);
  rng.FillNormal(&x);
  x.row(1) = 0.8 * x.row(0) + 0.6 * x.row(1);  // correlation 0.8
  x.row(0) = 5 + 3 * x.row(0).array();
  absl::StatusOr<Dataset> d = Dataset::FromPoints(x);
  EXPECT_TRUE(d.ok());
  return *std::move(d);
}

DensityFitOptions SmallOptions() {
  DensityFitOptions o;
  o.iterations = 300;
  o.batch_size = 64;
  o.learning_rate = 5e-3;
  o.eval_interval = 20;
  o.seed = 17;
  return o;
}

TEST(DensityFitterTest, StandardizesWithTheTrainingSplit) {
  const Dataset data = GaussianData(1000, 1);
  absl::StatusOr<std::unique_ptr<DensityFitter>> fitter =
      DensityFitter::Create(data, Spec("realnvp*2"), SmallOptions());
  ASSERT_TRUE(fitter.ok()) << fitter.status();
  const DensityFitter& f = **fitter;
  EXPECT_EQ(f.held_out_points(), 100);
  EXPECT_EQ(f.train_points(), 900);
  // Standardized training data: mean 0, sd 1; mean + sd ⊙ u gives back the user's points.
  const Matrix& u = f.train_standardized();
  EXPECT_LT(u.rowwise().mean().cwiseAbs().maxCoeff(), 1e-12);
  const Vector var = u.rowwise().squaredNorm() / static_cast<double>(u.cols());
  EXPECT_NEAR(var[0], 1, 1e-12);
  EXPECT_NEAR(var[1], 1, 1e-12);
  Matrix all(2, 1000);
  all << (u.array().colwise() * f.model().sd().array()).colwise() + f.model().mean().array(),
      (f.held_out_standardized().array().colwise() * f.model().sd().array()).colwise() +
          f.model().mean().array();
  // Every original point comes back (sorted comparison of the first coordinate).
  std::vector<double> a(all.row(0).begin(), all.row(0).end());
  std::vector<double> b(data.points().row(0).begin(), data.points().row(0).end());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-12);
}

TEST(DensityFitterTest, FitsAndReportsBothLogLikelihoods) {
  const Dataset data = GaussianData(2000, 2);
  absl::StatusOr<std::unique_ptr<DensityFitter>> fitter =
      DensityFitter::Create(data, Spec("realnvp(hidden=8)*2"), SmallOptions());
  ASSERT_TRUE(fitter.ok()) << fitter.status();
  struct Recorder : DensityCallback {
    int calls = 0, evaluations = 0;
    CallbackAction OnProgress(const DensityProgress& p) override {
      ++calls;
      evaluations += p.evaluated;
      EXPECT_TRUE(std::isfinite(p.train_log_likelihood));
      if (p.evaluated) {
        EXPECT_TRUE(std::isfinite(p.held_out_log_likelihood));
      }
      return CallbackAction::kContinue;
    }
  } recorder;
  absl::StatusOr<DensityFitSummary> s = (*fitter)->Run(&recorder);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(recorder.calls, s->iterations);
  EXPECT_EQ(recorder.evaluations, static_cast<int>(s->trace.size()));
  // Truth: the Gaussian's entropy. x0 = 5 + 3 a, x1 = 0.8 a + 0.6 b: det = 3 · 0.6, so the
  // expected log-density is −log(2π) − 1 − log(1.8).
  const double truth = -std::log(2 * std::numbers::pi) - 1 - std::log(1.8);
  EXPECT_NEAR(s->held_out_log_likelihood, truth, 0.15);
  EXPECT_NEAR(s->train_log_likelihood, truth, 0.15);
  EXPECT_GT(s->held_out_log_likelihood, s->trace.front().held_out_log_likelihood);
}

TEST(DensityFitterTest, EarlyStoppingKeepsTheBestParameters) {
  // Few points and a big flow overfit: held-out likelihood peaks and early stopping ends the fit
  // with the parameters of the peak.
  const Dataset data = GaussianData(60, 3);
  DensityFitOptions o = SmallOptions();
  o.iterations = 3000;
  o.learning_rate = 1e-2;
  o.eval_interval = 10;
  o.patience = 5;
  o.validation_fraction = 0.5;
  absl::StatusOr<std::unique_ptr<DensityFitter>> fitter =
      DensityFitter::Create(data, Spec("realnvp(hidden=64)*4"), o);
  ASSERT_TRUE(fitter.ok()) << fitter.status();
  absl::StatusOr<DensityFitSummary> s = (*fitter)->Run();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->reason, DensityTermination::kEarlyStopped);
  EXPECT_EQ(s->iterations, s->best_iteration + 5 * 10);
  double best = -kInf;
  for (const DensityTracePoint& p : s->trace) best = std::max(best, p.held_out_log_likelihood);
  EXPECT_EQ(s->held_out_log_likelihood, best);
}

TEST(DensityFitterTest, SameSeedSameBitsAndCheckpointResumesExactly) {
  const Dataset data = GaussianData(500, 4);
  const DensityFitOptions o = SmallOptions();
  auto make = [&] {
    absl::StatusOr<std::unique_ptr<DensityFitter>> f =
        DensityFitter::Create(data, Spec("spline(bins=4)*2,permute"), o);
    EXPECT_TRUE(f.ok()) << f.status();
    return *std::move(f);
  };
  std::unique_ptr<DensityFitter> a = make(), b = make();
  absl::StatusOr<DensityFitSummary> sa = a->Run();
  ASSERT_TRUE(sa.ok()) << sa.status();
  // b stops at 137 steps, is checkpointed, and continues in a fresh fitter c.
  struct StopAt : DensityCallback {
    CallbackAction OnProgress(const DensityProgress& p) override {
      return p.iteration == 137 ? CallbackAction::kStop : CallbackAction::kContinue;
    }
  } stop;
  absl::StatusOr<DensityFitSummary> sb = b->Run(&stop);
  ASSERT_TRUE(sb.ok());
  EXPECT_EQ(sb->reason, DensityTermination::kStopped);
  std::unique_ptr<DensityFitter> c = make();
  ASSERT_TRUE(c->Restore(b->Checkpoint()).ok());
  absl::StatusOr<DensityFitSummary> sc = c->Run();
  ASSERT_TRUE(sc.ok()) << sc.status();
  EXPECT_EQ(sc->iterations, sa->iterations);
  EXPECT_EQ(sc->held_out_log_likelihood, sa->held_out_log_likelihood);
  EXPECT_EQ(sc->train_log_likelihood, sa->train_log_likelihood);
  const Vector& pa = a->model().flow().params();
  const Vector& pc = c->model().flow().params();
  ASSERT_EQ(pa.size(), pc.size());
  EXPECT_EQ(std::memcmp(pa.data(), pc.data(), sizeof(double) * pa.size()), 0);
  ASSERT_EQ(sa->trace.size(), sc->trace.size());
  for (size_t i = 0; i < sa->trace.size(); ++i) {
    EXPECT_EQ(sa->trace[i].held_out_log_likelihood, sc->trace[i].held_out_log_likelihood);
    EXPECT_EQ(sa->trace[i].train_log_likelihood, sc->trace[i].train_log_likelihood);
  }
}

TEST(DensityFitterTest, Errors) {
  const Dataset data = GaussianData(100, 5);
  DensityFitOptions o = SmallOptions();
  o.validation_fraction = 1.0;
  EXPECT_THAT(DensityFitter::Create(data, Spec("realnvp"), o).status().message(),
              HasSubstr("validation_fraction"));
  o = SmallOptions();
  o.batch_size = 0;
  EXPECT_THAT(DensityFitter::Create(data, Spec("realnvp"), o).status().message(),
              HasSubstr("batch_size"));
  // A 1-D data set cannot feed a coupling layer.
  absl::StatusOr<Dataset> one_d = Dataset::FromRows({{1}, {2}, {3}});
  ASSERT_TRUE(one_d.ok());
  EXPECT_EQ(DensityFitter::Create(*one_d, Spec("realnvp"), SmallOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A constant column is named.
  absl::StatusOr<Dataset> flat = Dataset::FromRows({{1, 7}, {2, 7}, {3, 7}, {4, 7}});
  ASSERT_TRUE(flat.ok());
  absl::Status s = DensityFitter::Create(*flat, Spec("realnvp"), SmallOptions()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("column 2")) << s;
  // Too few points for a split.
  absl::StatusOr<Dataset> single = Dataset::FromRows({{1, 2}});
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(DensityFitter::Create(*single, Spec("realnvp"), SmallOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A checkpoint of another flow.
  absl::StatusOr<std::unique_ptr<DensityFitter>> f =
      DensityFitter::Create(data, Spec("realnvp"), SmallOptions());
  ASSERT_TRUE(f.ok());
  DensityCheckpoint c = (*f)->Checkpoint();
  c.params.resize(3);
  EXPECT_EQ((*f)->Restore(c).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace flowvi
