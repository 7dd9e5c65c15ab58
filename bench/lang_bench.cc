// The model language against hand-written code (issue #7's speed targets):
//
//   1. Eight schools written in the language vs the built-in eight_schools target: one training
//      step (Fitter::Step) of a planar*32 flow at N = 100, for the centered and non-centered
//      forms. Target: at most 3x slower.
//   2. Logistic regression with 1,000 rows and 20 features: log density and gradient of a batch
//      of N = 100 points, the language vs hand-written Eigen code for the same density.
//      Target: within 3x. Written vectorized (x * beta, one matrix node) and, for information,
//      as a loop over the rows.
//
// After the benchmarks run, the ratios (language / reference, by mean CPU time per iteration,
// which other load on the machine disturbs less than wall time; wall in parentheses) are
// printed; filter with --benchmark_filter as usual (a ratio needs both of its benchmarks).
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "benchmark/benchmark.h"
#include "engine/core/rng.h"
#include "engine/fit/fit_options.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow.h"
#include "engine/flows/flow_spec.h"
#include "engine/lang/model.h"
#include "engine/targets/catalog.h"

namespace flowvi {
namespace {

constexpr char kEightSchoolsData[] = R"({"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12],
  "sigma": [15, 10, 16, 11, 9, 11, 10, 18]})";

constexpr char kCentered[] = R"(
data { int<lower=0> J; array[J] real y; array[J] real<lower=0> sigma; }
parameters { vector[J] theta; real mu; real<lower=0> tau; }
model {
  mu ~ normal(0, 5);
  tau ~ cauchy(0, 5);
  theta ~ normal(mu, tau);
  y ~ normal(theta, sigma);
})";

constexpr char kNonCentered[] = R"(
data { int<lower=0> J; array[J] real y; array[J] real<lower=0> sigma; }
parameters { vector[J] eta; real mu; real<lower=0> tau; }
transformed parameters { vector[J] theta = mu + tau * eta; }
model {
  mu ~ normal(0, 5);
  tau ~ cauchy(0, 5);
  eta ~ std_normal();
  y ~ normal(theta, sigma);
})";

constexpr char kLogReg[] = R"(
data { int<lower=0> N; int<lower=0> K; matrix[N, K] x; array[N] int<lower=0, upper=1> y; }
parameters { real alpha; vector[K] beta; }
model {
  alpha ~ normal(0, 5);
  beta ~ normal(0, 1);
  y ~ bernoulli_logit(alpha + x * beta);
})";

// The same, written as a loop over the rows (the textbook form): one small group of nodes per row.
constexpr char kLogRegLoop[] = R"(
data { int<lower=0> N; int<lower=0> K; matrix[N, K] x; array[N] int<lower=0, upper=1> y; }
parameters { real alpha; vector[K] beta; }
model {
  alpha ~ normal(0, 5);
  beta ~ normal(0, 1);
  for (n in 1:N) y[n] ~ bernoulli_logit(alpha + x[n] * beta);
})";

constexpr int kRows = 1000;
constexpr int kFeatures = 20;
constexpr int kBatch = 100;

// ---- Training step ------------------------------------------------------------------------------

struct Setup {
  std::unique_ptr<lang::CompiledModel> model;
  std::unique_ptr<Target> target;
  std::unique_ptr<Flow> flow;
  std::unique_ptr<Fitter> fitter;
};

absl::StatusOr<Setup> MakeSetup(const char* source, bool centered) {
  Setup s;
  if (source != nullptr) {
    absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model =
        lang::CompileModel(source, kEightSchoolsData);
    if (!model.ok()) return model.status();
    s.model = *std::move(model);
    s.target = s.model->NewTarget();
  } else {
    absl::StatusOr<std::unique_ptr<Target>> target =
        MakeTarget("eight_schools", {{"centered", centered}});
    if (!target.ok()) return target.status();
    s.target = *std::move(target);
  }
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec("planar*32");
  if (!spec.ok()) return spec.status();
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, s.target->dim());
  if (!flow.ok()) return flow.status();
  s.flow = *std::move(flow);
  FitOptions options;
  options.learning_rate = 1e-3;
  options.anneal_iterations = 10000;
  options.batch_size = kBatch;
  options.iterations = int64_t{1} << 40;
  absl::StatusOr<std::unique_ptr<Fitter>> fitter =
      Fitter::Create(s.flow.get(), s.target.get(), options);
  if (!fitter.ok()) return fitter.status();
  s.fitter = *std::move(fitter);
  return s;
}

void BM_EightSchoolsStep(benchmark::State& state, const char* source, bool centered) {
  absl::StatusOr<Setup> setup = MakeSetup(source, centered);
  if (!setup.ok()) {
    state.SkipWithError(std::string(setup.status().message()).c_str());
    return;
  }
  IterationSummary summary;
  absl::Status status = setup->fitter->Step(&summary);  // warm-up
  for (auto _ : state) {
    if (!status.ok()) break;
    status = setup->fitter->Step(&summary);
    benchmark::DoNotOptimize(summary.elbo);
  }
  if (!status.ok()) state.SkipWithError(std::string(status.message()).c_str());
  state.SetItemsProcessed(state.iterations());
}

// ---- Logistic regression --------------------------------------------------------------------

struct LogRegData {
  Eigen::MatrixXd x;  // kRows x kFeatures
  Eigen::VectorXd y;  // 0/1
  std::string json;
};

const LogRegData& Data() {
  static const LogRegData* data = [] {
    auto* d = new LogRegData;
    Rng rng(7);
    d->x.resize(kRows, kFeatures);
    rng.FillNormal(&d->x);
    Eigen::VectorXd beta(kFeatures);
    for (int k = 0; k < kFeatures; ++k) beta[k] = 0.5 * rng.Normal();
    const Eigen::VectorXd eta = (d->x * beta).array() + 0.3;
    d->y.resize(kRows);
    std::vector<std::string> rows, ys;
    for (int i = 0; i < kRows; ++i) {
      d->y[i] = rng.Uniform() < 1 / (1 + std::exp(-eta[i])) ? 1 : 0;
      std::vector<std::string> row;
      for (int k = 0; k < kFeatures; ++k) row.push_back(absl::StrCat(d->x(i, k)));
      rows.push_back(absl::StrCat("[", absl::StrJoin(row, ","), "]"));
      ys.push_back(d->y[i] == 1 ? "1" : "0");
    }
    d->json = absl::StrCat("{\"N\": ", kRows, ", \"K\": ", kFeatures, ", \"x\": [",
                           absl::StrJoin(rows, ","), "], \"y\": [", absl::StrJoin(ys, ","), "]}");
    return d;
  }();
  return *data;
}

// The same log density, written by hand with Eigen: coordinates (alpha, beta_1..beta_K).
class HandLogReg final : public Target {
 public:
  explicit HandLogReg(const LogRegData& data) : x_(data.x), y_(data.y) {}
  int dim() const override { return 1 + kFeatures; }

  void LogDensity(const Matrix& z, RowVector* log_p, Matrix* grad) override {
    const Eigen::Index n = z.cols();
    eta_.resize(kRows, n);
    eta_.noalias() = x_ * z.bottomRows(kFeatures);
    eta_.rowwise() += z.row(0);
    const auto alpha = z.row(0).array();
    const auto beta = z.bottomRows(kFeatures);
    // y eta - softplus(eta), summed over rows, plus the normal priors (with constants).
    log_p->array() = ((eta_.array().colwise() * y_.array()) -
                      (eta_.array().max(0.0) + (-eta_.array().abs()).exp().log1p()))
                         .colwise()
                         .sum() -
                     0.5 * (alpha / 5).square() - beta.colwise().squaredNorm().array() * 0.5 +
                     kConst;
    if (grad == nullptr) return;
    // r = y - sigmoid(eta), in place.
    eta_.array() = (-eta_.array().logistic()).colwise() + y_.array();
    grad->row(0).array() = eta_.colwise().sum().array() - alpha / 25;
    grad->bottomRows(kFeatures).noalias() = x_.transpose() * eta_;
    grad->bottomRows(kFeatures) -= beta;
  }

 private:
  // log N(alpha | 0, 5) + sum_k log N(beta_k | 0, 1) constants.
  static constexpr double kConst = -(1 + kFeatures) * 0.91893853320467274178 - 1.6094379124341003;
  Eigen::MatrixXd x_;
  Eigen::VectorXd y_;
  Eigen::MatrixXd eta_;
};

// source == nullptr: the hand-written target.
void BM_LogReg(benchmark::State& state, const char* source) {
  const LogRegData& data = Data();
  std::unique_ptr<lang::CompiledModel> model;
  std::unique_ptr<Target> target;
  if (source != nullptr) {
    absl::StatusOr<std::unique_ptr<lang::CompiledModel>> m = lang::CompileModel(source, data.json);
    if (!m.ok()) {
      state.SkipWithError(std::string(m.status().message()).c_str());
      return;
    }
    model = *std::move(m);
    target = model->NewTarget();
  } else {
    target = std::make_unique<HandLogReg>(data);
  }
  Rng rng(11);
  Matrix z(target->dim(), kBatch);
  rng.FillNormal(&z);
  z *= 0.3;
  RowVector log_p(kBatch);
  Matrix grad(target->dim(), kBatch);
  target->LogDensity(z, &log_p, &grad);  // warm-up
  for (auto _ : state) {
    target->LogDensity(z, &log_p, &grad);
    benchmark::DoNotOptimize(log_p.data());
    benchmark::DoNotOptimize(grad.data());
  }
  state.SetItemsProcessed(state.iterations());
}

// Parse, check and compile (with the data JSON) of a logistic regression: the cost of a submit.
void BM_Compile(benchmark::State& state, const char* source) {
  const LogRegData& data = Data();
  for (auto _ : state) {
    absl::StatusOr<std::unique_ptr<lang::CompiledModel>> m = lang::CompileModel(source, data.json);
    if (!m.ok()) {
      state.SkipWithError(std::string(m.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(m->get());
  }
}

// Records the mean time per iteration of every run, for the ratios printed at the end.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.iterations > 0 && !run.error_occurred) {
        const double n = static_cast<double>(run.iterations);
        times_[run.benchmark_name()] = {run.cpu_accumulated_time / n,
                                        run.real_accumulated_time / n};
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void PrintRatios() const {
    const std::pair<const char*, const char*> pairs[] = {
        {"EightSchools/centered/language/planar*32/N:100",
         "EightSchools/centered/builtin/planar*32/N:100"},
        {"EightSchools/noncentered/language/planar*32/N:100",
         "EightSchools/noncentered/builtin/planar*32/N:100"},
        {"LogReg/language/1000x20/N:100", "LogReg/eigen/1000x20/N:100"},
        {"LogReg/language-loop/1000x20/N:100", "LogReg/eigen/1000x20/N:100"},
    };
    std::printf("\nlanguage / reference, mean CPU (wall) time per iteration; target <= 3:\n");
    for (const auto& [mine, ref] : pairs) {
      auto a = times_.find(mine), b = times_.find(ref);
      if (a == times_.end() || b == times_.end()) continue;
      std::printf("  %-52s %5.2fx (%5.2fx)  %.1f us vs %.1f us CPU\n", mine,
                  a->second.first / b->second.first, a->second.second / b->second.second,
                  1e6 * a->second.first, 1e6 * b->second.first);
    }
  }

 private:
  std::map<std::string, std::pair<double, double>> times_;  // CPU, wall seconds
};

void RegisterAll() {
  benchmark::RegisterBenchmark("EightSchools/centered/builtin/planar*32/N:100",
                               [](benchmark::State& s) { BM_EightSchoolsStep(s, nullptr, true); })
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("EightSchools/centered/language/planar*32/N:100",
                               [](benchmark::State& s) { BM_EightSchoolsStep(s, kCentered, true); })
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("EightSchools/noncentered/builtin/planar*32/N:100",
                               [](benchmark::State& s) { BM_EightSchoolsStep(s, nullptr, false); })
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(
      "EightSchools/noncentered/language/planar*32/N:100",
      [](benchmark::State& s) { BM_EightSchoolsStep(s, kNonCentered, false); })
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("LogReg/eigen/1000x20/N:100", [](benchmark::State& s) {
    BM_LogReg(s, nullptr);
  })->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("LogReg/language/1000x20/N:100", [](benchmark::State& s) {
    BM_LogReg(s, kLogReg);
  })->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("LogReg/language-loop/1000x20/N:100", [](benchmark::State& s) {
    BM_LogReg(s, kLogRegLoop);
  })->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Compile/LogReg/language/1000x20", [](benchmark::State& s) {
    BM_Compile(s, kLogReg);
  })->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("Compile/LogReg/language-loop/1000x20", [](benchmark::State& s) {
    BM_Compile(s, kLogRegLoop);
  })->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace flowvi

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  flowvi::RegisterAll();
  flowvi::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
