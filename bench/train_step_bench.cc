// One training iteration (Fitter::Step) of the flow-VI engine, single thread, for the setups of
// the PyTorch reference (../shared/bench/torch_reference.py): Adam, learning rate 1e-3,
// annealing over 10000 iterations. bench/compare.sh runs the u1 planar*32 cases side by side with
// that reference.
//
// Reported per case: items_per_second = training iterations per second, and allocs_per_step =
// heap allocations per Fitter::Step during the timed loop, which must be 0. Allocations are
// counted by this binary alone (never by the engine): a replacement of the global operator
// new/delete, and of the C allocation functions, because Eigen allocates its dynamic matrices
// with std::malloc rather than operator new. The replacements forward to glibc's own allocator.
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "benchmark/benchmark.h"
#include "engine/core/params.h"
#include "engine/fit/fit_options.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow.h"
#include "engine/flows/flow_spec.h"
#include "engine/targets/catalog.h"
#include "tests/engine/testing/alloc_counter.h"

// ---- The benchmark -----------------------------------------------------------------------------

namespace flowvi {
namespace {

struct Case {
  std::string target;           // catalog name
  std::string flow;             // flow spec
  int batch;                    // N
  ParamMap target_params = {};  // defaults when empty
  std::string label = "";       // the benchmark's name; built from the fields when empty
};

// Everything a fit needs, owned together (the Fitter borrows the flow and the target).
struct Setup {
  std::unique_ptr<Target> target;
  std::unique_ptr<Flow> flow;
  std::unique_ptr<Fitter> fitter;
};

absl::StatusOr<Setup> MakeSetup(const Case& c) {
  Setup s;
  absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget(c.target, c.target_params);
  if (!target.ok()) return target.status();
  s.target = *std::move(target);
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec(c.flow);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, s.target->dim());
  if (!flow.ok()) return flow.status();
  s.flow = *std::move(flow);
  FitOptions options;  // as the reference: Adam, lr 1e-3, β_t = min(1, 0.01 + t/10000)
  options.optimizer = OptimizerType::kAdam;
  options.learning_rate = 1e-3;
  options.anneal_iterations = 10000;
  options.batch_size = c.batch;
  options.seed = 0;
  // More than Google Benchmark will ever run in one call.
  options.iterations = int64_t{1} << 40;
  absl::StatusOr<std::unique_ptr<Fitter>> fitter =
      Fitter::Create(s.flow.get(), s.target.get(), options);
  if (!fitter.ok()) return fitter.status();
  s.fitter = *std::move(fitter);
  return s;
}

void BM_TrainStep(benchmark::State& state, const Case& c) {
  absl::StatusOr<Setup> setup = MakeSetup(c);
  if (!setup.ok()) {
    state.SkipWithError(std::string(setup.status().message()).c_str());
    return;
  }
  Fitter& fitter = *setup->fitter;
  IterationSummary summary;
  if (absl::Status s = fitter.Step(&summary); !s.ok()) {  // warm-up, untimed
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  absl::Status status;
  const int64_t allocs_before = AllocationCount();
  for (auto _ : state) {
    status = fitter.Step(&summary);
    if (!status.ok()) break;
    benchmark::DoNotOptimize(summary.elbo);
  }
  const int64_t allocs = AllocationCount() - allocs_before;
  if (!status.ok()) {
    state.SkipWithError(std::string(status.message()).c_str());
    return;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["allocs_per_step"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations());
}

void Register(const Case& c) {
  // e.g. "TrainStep/u1/planar*32/N:100" (filter with --benchmark_filter='u1/planar\*32/').
  const std::string name =
      c.label.empty() ? absl::StrCat("TrainStep/", c.target, "/", c.flow, "/N:", c.batch) : c.label;
  benchmark::RegisterBenchmark(name.c_str(), [c](benchmark::State& state) {
    BM_TrainStep(state, c);
  })->Unit(benchmark::kMicrosecond);
}

// Coupling layers (nice, realnvp, spline) on the standard normal gaussian(dim=D), D = 2 and 64,
// N = 256: the setups of bench/torch_coupling.py (hidden width 32, depth 2, 4 couplings; nice
// ends with a scale layer as in NICE). Named "Coupling/<flow>/D:<d>/N:256".
// At D = 2 also the architecture the 2-D fits use (hidden width 8, depth 1; the spline with
// 8 bins), named "Coupling/<flow>(hidden=8,depth=1)/D:2/N:256".
void RegisterCouplingCases() {
  const std::pair<const char*, const char*> flows[] = {
      {"nice", "nice*4,scale"}, {"realnvp", "realnvp*4"}, {"spline", "spline*4"}};
  for (const auto& [name, spec] : flows) {
    for (int dim : {2, 64}) {
      Register({.target = "gaussian",
                .flow = spec,
                .batch = 256,
                .target_params = {{"dim", int64_t{dim}}},
                .label = absl::StrCat("Coupling/", name, "/D:", dim, "/N:256")});
    }
  }
  const std::pair<const char*, const char*> small[] = {
      {"nice", "nice(hidden=8,depth=1)*4,scale"},
      {"realnvp", "realnvp(hidden=8,depth=1)*4"},
      {"spline", "spline(hidden=8,depth=1,bins=8)*4"}};
  for (const auto& [name, spec] : small) {
    Register({.target = "gaussian",
              .flow = spec,
              .batch = 256,
              .target_params = {{"dim", int64_t{2}}},
              .label = absl::StrCat("Coupling/", name, "(hidden=8,depth=1)/D:2/N:256")});
  }
}

// The autoregressive, circular-convolution and LU-linear flows (issue 8) on Neal's funnel at
// D = 2 and D = 64, N = 256: the setups of bench/torch_autoregressive.py, which
// bench/compare_flows.py runs side by side with these. Named
// "TrainStep/funnel:<D>/<flow>/N:256".
void RegisterAutoregressiveCases() {
  const std::pair<const char*, int> cases[] = {
      {"iaf(hidden=32,depth=1)*4", 2},  // MADE's default width
      {"maf(hidden=32,depth=1)*4", 2},
      {"iaf(hidden=16,depth=1)*4", 2},
      {"maf(hidden=16,depth=1)*4", 2},
      {"iaf(hidden=8,depth=1)*4", 2},  // the conditioner size of the 2-D fits
      {"maf(hidden=8,depth=1)*4", 2},
      {"circconv*4", 2},
      {"linear*4", 2},
      {"iaf(hidden=64,depth=1)*4", 64},
      {"maf(hidden=64,depth=1)*2", 64},
      {"circconv*4", 64},
      {"linear*4", 64},
  };
  for (const auto& [flow, dim] : cases) {
    Register({.target = "funnel",
              .flow = flow,
              .batch = 256,
              .target_params = {{"dim", int64_t{dim}}},
              .label = absl::StrCat("TrainStep/funnel:", dim, "/", flow, "/N:256")});
  }
}

void RegisterAll() {
  const Case cases[] = {
      {"u1", "planar*32", 100}, {"u1", "planar*32", 1000}, {"eight_schools", "planar*32", 100},
      {"u1", "radial*32", 100}, {"u1", "meanfield", 100},
  };
  for (const Case& c : cases) Register(c);
  RegisterAutoregressiveCases();
  RegisterCouplingCases();
}

}  // namespace
}  // namespace flowvi

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  flowvi::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
