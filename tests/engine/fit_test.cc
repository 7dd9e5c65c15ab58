// Training: determinism, checkpoint/resume bit-identity, option validation, non-finite
// handling, and convergence against closed forms and known log Z.
#include <cmath>
#include <cstring>

#include "engine/diagnostics/diagnostics.h"
#include "engine/fit/fitter.h"
#include "engine/targets/catalog.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flowvi {
namespace {

using ::testing::HasSubstr;

struct Problem {
  std::unique_ptr<Target> target;
  std::unique_ptr<Flow> flow;
};

Problem Make(absl::string_view target, absl::string_view spec, const ParamMap& params = {}) {
  Problem p;
  absl::StatusOr<std::unique_ptr<Target>> t = MakeTarget(target, params);
  EXPECT_TRUE(t.ok()) << t.status();
  p.target = *std::move(t);
  absl::StatusOr<FlowSpec> s = ParseFlowSpec(spec);
  EXPECT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::unique_ptr<Flow>> f = Flow::Create(*s, p.target->dim());
  EXPECT_TRUE(f.ok()) << f.status();
  p.flow = *std::move(f);
  return p;
}

bool BitEqual(const Vector& a, const Vector& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), sizeof(double) * static_cast<size_t>(a.size())) == 0;
}

class StopAt : public IterationCallback {
 public:
  explicit StopAt(int64_t at) : at_(at) {}
  CallbackAction OnIteration(const IterationSummary& s) override {
    ++calls;
    last = s;
    return s.iteration >= at_ ? CallbackAction::kStop : CallbackAction::kContinue;
  }
  int64_t calls = 0;
  IterationSummary last;

 private:
  int64_t at_;
};

FitOptions SmallOptions() {
  FitOptions o;
  o.iterations = 300;
  o.batch_size = 32;
  o.seed = 42;
  o.anneal_iterations = 100;
  o.trace_points = 50;
  return o;
}

TEST(FitOptionsTest, DefaultsAreValid) { EXPECT_TRUE(FitOptions{}.Validate().ok()); }

TEST(FitOptionsTest, EveryBadFieldIsInvalidArgumentNamingIt) {
  struct Case {
    const char* field;
    void (*mutate)(FitOptions&);
  };
  const Case cases[] = {
      {"learning_rate", [](FitOptions& o) { o.learning_rate = 0; }},
      {"learning_rate", [](FitOptions& o) { o.learning_rate = NAN; }},
      {"iterations", [](FitOptions& o) { o.iterations = 0; }},
      {"batch_size", [](FitOptions& o) { o.batch_size = 0; }},
      {"anneal_iterations", [](FitOptions& o) { o.anneal_iterations = -1; }},
      {"max_grad_norm", [](FitOptions& o) { o.max_grad_norm = -1; }},
      {"adam_beta1", [](FitOptions& o) { o.adam_beta1 = 1; }},
      {"adam_beta2", [](FitOptions& o) { o.adam_beta2 = -0.1; }},
      {"adam_epsilon", [](FitOptions& o) { o.adam_epsilon = 0; }},
      {"rmsprop_decay", [](FitOptions& o) { o.rmsprop_decay = 1; }},
      {"rmsprop_momentum", [](FitOptions& o) { o.rmsprop_momentum = 1.5; }},
      {"rmsprop_epsilon", [](FitOptions& o) { o.rmsprop_epsilon = -1; }},
      {"max_consecutive_skips", [](FitOptions& o) { o.max_consecutive_skips = 0; }},
      {"trace_points", [](FitOptions& o) { o.trace_points = 0; }},
  };
  for (const Case& c : cases) {
    FitOptions o;
    c.mutate(o);
    const absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.field));
  }
  EXPECT_EQ(ParseOptimizer("sgd").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseOptimizer("RMSprop"), OptimizerType::kRmsprop);
}

TEST(FitterTest, CreateRejectsDimensionMismatchAndBadOptions) {
  Problem p = Make("u1", "planar*2");
  absl::StatusOr<std::unique_ptr<Flow>> wrong = Flow::Create(FlowSpec{}, 3);
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(Fitter::Create(wrong->get(), p.target.get(), SmallOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  FitOptions bad = SmallOptions();
  bad.batch_size = -3;
  EXPECT_EQ(Fitter::Create(p.flow.get(), p.target.get(), bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FitterTest, SameSeedGivesBitIdenticalResults) {
  for (auto opt : {OptimizerType::kAdam, OptimizerType::kRmsprop}) {
    FitOptions o = SmallOptions();
    o.optimizer = opt;
    Problem a = Make("u1", "radial*2,planar*4");
    Problem b = Make("u1", "radial*2,planar*4");
    auto fa = Fitter::Create(a.flow.get(), a.target.get(), o);
    auto fb = Fitter::Create(b.flow.get(), b.target.get(), o);
    ASSERT_TRUE(fa.ok() && fb.ok());
    auto sa = (*fa)->Run();
    auto sb = (*fb)->Run();
    ASSERT_TRUE(sa.ok() && sb.ok());
    EXPECT_TRUE(BitEqual(a.flow->params(), b.flow->params()));
    EXPECT_EQ(sa->elbo_trace, sb->elbo_trace);
    EXPECT_EQ(sa->iterations, 300);
    EXPECT_EQ(sa->elbo_trace.size(), 50u);
    // A different seed gives a different fit: the comparison above can fail.
    o.seed = 43;
    Problem c = Make("u1", "radial*2,planar*4");
    auto fc = Fitter::Create(c.flow.get(), c.target.get(), o);
    ASSERT_TRUE((*fc)->Run().ok());
    EXPECT_FALSE(BitEqual(a.flow->params(), c.flow->params()));
  }
}

TEST(FitterTest, CheckpointResumeIsBitIdentical) {
  const FitOptions o = SmallOptions();
  Problem full = Make("eight_schools", "planar*3");
  auto ff = Fitter::Create(full.flow.get(), full.target.get(), o);
  ASSERT_TRUE(ff.ok());
  auto full_summary = (*ff)->Run();
  ASSERT_TRUE(full_summary.ok());

  for (int64_t stop : {1, 77, 150, 299}) {
    Problem first = Make("eight_schools", "planar*3");
    auto f1 = Fitter::Create(first.flow.get(), first.target.get(), o);
    StopAt cb(stop);
    auto partial = (*f1)->Run(&cb);
    ASSERT_TRUE(partial.ok());
    EXPECT_EQ(partial->reason, TerminationReason::kStopped);
    EXPECT_EQ(partial->iterations, stop);
    const FitCheckpoint cp = (*f1)->Checkpoint();

    // A fresh process would rebuild everything from the spec and the checkpoint alone.
    Problem second = Make("eight_schools", "planar*3");
    auto f2 = Fitter::Create(second.flow.get(), second.target.get(), o);
    ASSERT_TRUE((*f2)->Restore(cp).ok());
    auto rest = (*f2)->Run();
    ASSERT_TRUE(rest.ok());
    EXPECT_EQ(rest->reason, TerminationReason::kCompleted);
    EXPECT_TRUE(BitEqual(second.flow->params(), full.flow->params())) << "stop at " << stop;
    EXPECT_EQ(rest->elbo_trace, full_summary->elbo_trace) << "stop at " << stop;
  }
}

TEST(FitterTest, RestoreRejectsForeignCheckpoint) {
  Problem p = Make("u1", "planar*2");
  auto f = Fitter::Create(p.flow.get(), p.target.get(), SmallOptions());
  FitCheckpoint cp = (*f)->Checkpoint();
  cp.params.resize(3);
  EXPECT_EQ((*f)->Restore(cp).code(), absl::StatusCode::kInvalidArgument);
  cp = (*f)->Checkpoint();
  cp.iteration = 1000;
  EXPECT_EQ((*f)->Restore(cp).code(), absl::StatusCode::kInvalidArgument);
  cp = (*f)->Checkpoint();
  cp.params[0] = NAN;
  EXPECT_EQ((*f)->Restore(cp).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FitterTest, CallbackSeesEveryIterationAndCanStop) {
  Problem p = Make("u1", "planar*2");
  auto f = Fitter::Create(p.flow.get(), p.target.get(), SmallOptions());
  StopAt cb(40);
  auto s = (*f)->Run(&cb);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(cb.calls, 40);
  EXPECT_EQ(cb.last.iteration, 40);
  EXPECT_EQ(cb.last.total_iterations, 300);
  EXPECT_NEAR(cb.last.beta, 0.01 + 39.0 / 100.0, 1e-15);
  EXPECT_TRUE(std::isfinite(cb.last.elbo));
  EXPECT_GT(cb.last.grad_norm, 0);
  EXPECT_GE(cb.last.elapsed_seconds, 0);
  // Running again continues where it stopped.
  StopAt cb2(1000);
  auto s2 = (*f)->Run(&cb2);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(cb2.calls, 260);
  EXPECT_EQ((*f)->Step(&cb2.last).code(), absl::StatusCode::kFailedPrecondition);
}

// A target that is NaN in a region, or everywhere.
class NanTarget : public Target {
 public:
  explicit NanTarget(bool always) : always_(always) {}
  int dim() const override { return 2; }
  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    *log_p = -0.5 * z.colwise().squaredNorm();
    if (grad != nullptr) *grad = -z;
    ++calls_;
    if (always_ || calls_ % 10 == 0) (*log_p)[0] = std::nan("");
  }

 private:
  bool always_;
  int calls_ = 0;
};

TEST(FitterTest, NonFiniteStepsAreSkippedAndCounted) {
  NanTarget target(false);
  auto flow = Flow::Create(*ParseFlowSpec("planar*2"), 2);
  auto f = Fitter::Create(flow->get(), &target, SmallOptions());
  auto s = (*f)->Run();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->skipped_steps, 30);
  EXPECT_TRUE((*flow)->params().allFinite());
}

TEST(FitterTest, PersistentNonFiniteFailsNamingIterationAndCause) {
  NanTarget target(true);
  auto flow = Flow::Create(*ParseFlowSpec("planar*2"), 2);
  FitOptions o = SmallOptions();
  o.max_consecutive_skips = 5;
  auto f = Fitter::Create(flow->get(), &target, o);
  const Vector before = (*flow)->params();
  auto s = (*f)->Run();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("iteration 5"));
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("log-density is not finite"));
  EXPECT_TRUE(BitEqual((*flow)->params(), before));
}

TEST(FitterTest, GradientClippingBoundsTheStep) {
  // With clipping at a tiny norm, one Adam step moves the parameters by at most lr per
  // coordinate regardless; with SGD-like RMSprop the update is bounded by clip * lr / eps-ish.
  // Check instead that the reported norm is before clipping and that fits stay finite.
  Problem p = Make("u1", "planar*4");
  FitOptions o = SmallOptions();
  o.max_grad_norm = 1e-3;
  auto f = Fitter::Create(p.flow.get(), p.target.get(), o);
  StopAt cb(5);
  ASSERT_TRUE((*f)->Run(&cb).ok());
  EXPECT_GT(cb.last.grad_norm, 1e-3);
  EXPECT_TRUE(p.flow->params().allFinite());
}

// The mean-field family on a correlated Gaussian: reverse KL's optimum is the true mean with
// variances 1 / Λ_ii, Λ = Σ⁻¹ (Bishop, PRML §10.1.2).
TEST(FitterConvergenceTest, MeanFieldReachesClosedFormOptimum) {
  ParamMap params = {{"dim", int64_t{2}},
                     {"mean", std::vector<double>{1.0, -2.0}},
                     {"cov", std::vector<double>{1.0, 0.8, 0.8, 1.0}}};
  Problem p = Make("gaussian", "meanfield", params);
  FitOptions o;
  o.iterations = 3000;
  o.batch_size = 200;
  o.learning_rate = 1e-2;
  o.seed = 3;
  auto f = Fitter::Create(p.flow.get(), p.target.get(), o);
  ASSERT_TRUE((*f)->Run().ok());
  const Vector& th = p.flow->params();
  const double lambda_ii = 1.0 / (1.0 - 0.8 * 0.8);  // diagonal of Σ⁻¹
  const double sd = 1.0 / std::sqrt(lambda_ii);      // 0.6
  EXPECT_NEAR(th[0], 1.0, 0.03);
  EXPECT_NEAR(th[1], -2.0, 0.03);
  EXPECT_NEAR(std::exp(th[2]), sd, 0.02);
  EXPECT_NEAR(std::exp(th[3]), sd, 0.02);
}

// The paper's first energy: planar*32 reaches KL(q‖p) = log Z − ELBO below 0.1 nats.
TEST(FitterConvergenceTest, Planar32OnU1ReachesSmallKl) {
  Problem p = Make("u1", "planar*32");
  FitOptions o;
  o.iterations = 20000;
  o.batch_size = 100;
  o.learning_rate = 1e-3;
  o.anneal_iterations = 10000;
  o.seed = 0;
  auto f = Fitter::Create(p.flow.get(), p.target.get(), o);
  ASSERT_TRUE((*f)->Run().ok());
  DiagnosticsOptions dopt;
  dopt.num_draws = 100000;
  auto d = ComputeDiagnostics(*p.flow, *p.target, dopt);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->kl.has_value());
  EXPECT_LT(*d->kl, 0.1);
  EXPECT_GT(*d->kl, -3 * d->elbo_se);  // an ELBO above log Z would be a bug
  // The importance-weighted log Z agrees with quadrature.
  EXPECT_NEAR(d->log_z, 1.877502, 4 * d->log_z_se + 1e-3);
}

// Eight schools, centered: planar*32 beats the mean-field baseline's ELBO.
TEST(FitterConvergenceTest, Planar32BeatsMeanFieldOnEightSchools) {
  double elbo[2], k_hat[2];
  const char* specs[2] = {"meanfield", "planar*32"};
  for (int i = 0; i < 2; ++i) {
    Problem p = Make("eight_schools", specs[i]);
    FitOptions o;
    o.iterations = 20000;
    o.batch_size = 100;
    o.learning_rate = 1e-3;
    o.seed = 1;
    auto f = Fitter::Create(p.flow.get(), p.target.get(), o);
    ASSERT_TRUE((*f)->Run().ok());
    DiagnosticsOptions dopt;
    dopt.num_draws = 50000;
    auto d = ComputeDiagnostics(*p.flow, *p.target, dopt);
    ASSERT_TRUE(d.ok()) << d.status();
    elbo[i] = d->elbo;
    k_hat[i] = d->k_hat;
    std::printf(
        "eight schools centered %-10s ELBO %.4f +- %.4f  k-hat %.3f  ESS %.0f  log Z %.4f\n",
        specs[i], d->elbo, d->elbo_se, d->k_hat, d->ess, d->log_z);
  }
  EXPECT_GT(elbo[1], elbo[0]);
  EXPECT_LT(k_hat[1], k_hat[0]);
}

}  // namespace
}  // namespace flowvi
