// The training step allocates nothing: after warm-up, Fitter::Step and Flow::Sample into an
// existing workspace make no heap allocation.
//
// This binary counts allocations by replacing the global operator new/delete and the C allocation
// functions (Eigen allocates its dynamic matrices with std::malloc, not operator new); the
// replacements forward to glibc's own allocator. Hence its own test binary, and not built under
// the sanitizers.
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/core/rng.h"
#include "engine/core/types.h"
#include "engine/data/dataset.h"
#include "engine/fit/density_fitter.h"
#include "engine/fit/fit_options.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow.h"
#include "engine/flows/flow_spec.h"
#include "engine/lang/model.h"
#include "engine/targets/catalog.h"
#include "gtest/gtest.h"
#include "tests/engine/testing/alloc_counter.h"

// ---- Tests -------------------------------------------------------------------------------------

namespace flowvi {
namespace {

// Keeps the compiler from eliding an allocation whose result is unused.
void Escape(const void* p) { asm volatile("" : : "g"(p) : "memory"); }

struct FitSetup {
  std::unique_ptr<Target> target;
  std::unique_ptr<Flow> flow;
  std::unique_ptr<Fitter> fitter;
};

FitSetup MakeSetup(absl::string_view target_name, absl::string_view flow_spec, int batch) {
  FitSetup s;
  absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget(target_name, {});
  EXPECT_TRUE(target.ok()) << target.status();
  if (!target.ok()) return s;
  s.target = *std::move(target);
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec(flow_spec);
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return s;
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, s.target->dim());
  EXPECT_TRUE(flow.ok()) << flow.status();
  if (!flow.ok()) return s;
  s.flow = *std::move(flow);
  FitOptions options;  // the reference setup: Adam, lr 1e-3, annealing over 10000 iterations
  options.learning_rate = 1e-3;
  options.anneal_iterations = 10000;
  options.batch_size = batch;
  options.iterations = 1000;
  absl::StatusOr<std::unique_ptr<Fitter>> fitter =
      Fitter::Create(s.flow.get(), s.target.get(), options);
  EXPECT_TRUE(fitter.ok()) << fitter.status();
  if (!fitter.ok()) return s;
  s.fitter = *std::move(fitter);
  return s;
}

TEST(AllocationCounterTest, CountsOperatorNewAndMalloc) {
  const int64_t before = AllocationCount();
  int* p = new int(7);
  Escape(p);
  delete p;
  EXPECT_EQ(AllocationCount() - before, 1);
  {
    Matrix m(3, 5);  // Eigen: std::malloc
    Escape(m.data());
  }
  EXPECT_EQ(AllocationCount() - before, 2);
}

struct StepCase {
  const char* target;
  const char* flow;
  int batch;
};

void PrintTo(const StepCase& c, std::ostream* os) {
  *os << c.target << " " << c.flow << " N=" << c.batch;
}

class TrainingStepAllocTest : public testing::TestWithParam<StepCase> {};

TEST_P(TrainingStepAllocTest, StepAllocatesNothingAfterWarmUp) {
  const StepCase& c = GetParam();
  FitSetup s = MakeSetup(c.target, c.flow, c.batch);
  ASSERT_NE(s.fitter, nullptr);
  IterationSummary summary;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(s.fitter->Step(&summary).ok());

  constexpr int kSteps = 50;
  absl::Status status;
  int done = 0;
  const int64_t before = AllocationCount();
  for (; done < kSteps; ++done) {
    status = s.fitter->Step(&summary);
    if (!status.ok()) break;
  }
  const int64_t allocations = AllocationCount() - before;

  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(done, kSteps);
  EXPECT_EQ(allocations, 0) << c.target << " " << c.flow << " N=" << c.batch << ": " << allocations
                            << " allocations in " << kSteps << " steps";
  EXPECT_FALSE(summary.skipped);
  EXPECT_EQ(summary.iteration, 2 + kSteps);
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainingStepAllocTest,
                         testing::Values(StepCase{"u1", "planar*32", 100},
                                         StepCase{"u1", "radial*8", 100},
                                         StepCase{"eight_schools", "planar*8", 100},
                                         StepCase{"u1", "iaf(hidden=8)*2,linear,circconv", 100},
                                         StepCase{"funnel", "maf(hidden=12,depth=1),iaf*2", 64},
                                         StepCase{"funnel", "circconv*2,linear*2", 64},
                                         StepCase{"u1", "nice,permute,nice,orthogonal,scale", 100},
                                         StepCase{"u1", "realnvp*4", 100},
                                         StepCase{"u1", "spline*2", 100},
                                         StepCase{"eight_schools", "realnvp(relu=true)*2", 100},
                                         StepCase{"eight_schools", "spline,orthogonal,spline", 64}),
                         [](const testing::TestParamInfo<StepCase>& param_info) {
                           std::string name = std::string(param_info.param.target) + "_" +
                                              std::string(param_info.param.flow) + "_N" +
                                              std::to_string(param_info.param.batch);
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(FlowAllocTest, SampleIntoExistingWorkspaceAllocatesNothing) {
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec("planar*8,radial*8");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, 10);
  ASSERT_TRUE(flow.ok()) << flow.status();
  Rng rng(3);
  (*flow)->InitParams(rng);
  std::unique_ptr<FlowWorkspace> ws = (*flow)->NewWorkspace(256);
  (*flow)->Sample(rng, ws.get());  // warm-up

  const int64_t before = AllocationCount();
  for (int i = 0; i < 20; ++i) (*flow)->Sample(rng, ws.get());
  const int64_t allocations = AllocationCount() - before;

  EXPECT_EQ(allocations, 0);
  EXPECT_TRUE(ws->z().allFinite());
  EXPECT_TRUE(ws->log_q().allFinite());
}

// The model language's compiled target (engine/lang): evaluation and a training step allocate
// nothing after the first call at a batch size, including when samples meet out-of-support
// values (the message is only formatted when asked for).
TEST(LangAllocTest, CompiledTargetAllocatesNothingAfterWarmUp) {
  constexpr char kSource[] = R"(
    data { int<lower=0> J; array[J] real y; array[J] real<lower=0> sigma; }
    parameters { vector[J] theta; real mu; real<lower=0> tau; real s; }
    model {
      mu ~ normal(0, 5);
      tau ~ cauchy(0, 5);
      theta ~ normal(mu, tau);
      y ~ normal(theta, sigma);
      target += log_sum_exp(theta) + dot_product(theta, theta[1:J]);
      s ~ normal(0, 1);
      1 ~ normal(0, exp(s));
    })";
  constexpr char kData[] = R"({"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12],
                               "sigma": [15, 10, 16, 11, 9, 11, 10, 18]})";
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model = lang::CompileModel(kSource, kData);
  ASSERT_TRUE(model.ok()) << model.status();
  std::unique_ptr<lang::ModelTarget> target = (*model)->NewTarget();
  Rng rng(5);
  Matrix z(target->dim(), 100);
  rng.FillNormal(&z);
  RowVector log_p(100);
  Matrix grad(target->dim(), 100);
  target->LogDensity(z, &log_p, &grad);  // warm-up

  int64_t before = AllocationCount();
  for (int i = 0; i < 20; ++i) {
    target->LogDensity(z, &log_p, &grad);
    target->LogDensity(z, &log_p, nullptr);
  }
  EXPECT_EQ(AllocationCount() - before, 0);
  EXPECT_TRUE(log_p.allFinite());

  // A NaN coordinate makes the scale exp(s) NaN, outside its support: the error path allocates
  // nothing either.
  z(10, 3) = std::numeric_limits<double>::quiet_NaN();
  before = AllocationCount();
  target->LogDensity(z, &log_p, &grad);
  EXPECT_EQ(AllocationCount() - before, 0);
  EXPECT_EQ(target->last_error().code(), absl::StatusCode::kInvalidArgument);
  z(10, 3) = 0;

  // A training step on the compiled target.
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec("planar*8");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, target->dim());
  ASSERT_TRUE(flow.ok()) << flow.status();
  FitOptions options;
  options.batch_size = 100;
  options.iterations = 100;
  absl::StatusOr<std::unique_ptr<Fitter>> fitter =
      Fitter::Create(flow->get(), target.get(), options);
  ASSERT_TRUE(fitter.ok()) << fitter.status();
  IterationSummary summary;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*fitter)->Step(&summary).ok());
  before = AllocationCount();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*fitter)->Step(&summary).ok());
  EXPECT_EQ(AllocationCount() - before, 0);
}

// Density estimation (engine/fit/density_*.h): the maximum-likelihood step, including its
// held-out evaluations and epoch reshuffles, and the model's Sample and LogDensity allocate
// nothing after the first call at a batch size.
TEST(DensityAllocTest, StepSampleAndLogDensityAllocateNothingAfterWarmUp) {
  for (const char* spec_text :
       {"realnvp*2,permute,realnvp", "spline(bins=4)*2,orthogonal,nice,scale"}) {
    Rng rng(4);
    Matrix points(3, 500);
    rng.FillNormal(&points);
    absl::StatusOr<Dataset> data = Dataset::FromPoints(points);
    ASSERT_TRUE(data.ok()) << data.status();
    absl::StatusOr<FlowSpec> spec = ParseFlowSpec(spec_text);
    ASSERT_TRUE(spec.ok()) << spec.status();
    DensityFitOptions options;
    options.batch_size = 64;  // 450 training points: reshuffles; 50 held out: a partial chunk
    options.iterations = 200;
    options.eval_interval = 5;
    options.patience = 0;
    absl::StatusOr<std::unique_ptr<DensityFitter>> fitter =
        DensityFitter::Create(*data, *spec, options);
    ASSERT_TRUE(fitter.ok()) << fitter.status();
    DensityProgress progress;
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*fitter)->Step(&progress).ok());
    int64_t before = AllocationCount();
    for (int i = 0; i < 50; ++i) ASSERT_TRUE((*fitter)->Step(&progress).ok());
    EXPECT_EQ(AllocationCount() - before, 0) << spec_text << ": training step";

    const DensityModel& model = (*fitter)->model();
    std::unique_ptr<DensityWorkspace> ws = model.NewWorkspace(100);
    ASSERT_TRUE(model.Sample(rng, ws.get()).ok());  // warm-up
    Matrix x = ws->points();
    RowVector log_q(100);
    ASSERT_TRUE(model.LogDensity(x, ws.get(), &log_q).ok());
    before = AllocationCount();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(model.Sample(rng, ws.get()).ok());
    EXPECT_EQ(AllocationCount() - before, 0) << spec_text << ": Sample";
    before = AllocationCount();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(model.LogDensity(x, ws.get(), &log_q).ok());
    EXPECT_EQ(AllocationCount() - before, 0) << spec_text << ": LogDensity";
    EXPECT_TRUE(log_q.allFinite());
  }
}

}  // namespace
}  // namespace flowvi
