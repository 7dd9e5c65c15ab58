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
#include "engine/fit/fit_options.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow.h"
#include "engine/flows/flow_spec.h"
#include "engine/targets/catalog.h"

// ---- Allocation counting (this binary only) ----------------------------------------------------

// glibc's allocator under its internal names, so the replacements below can forward to it.
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void* __libc_valloc(std::size_t size);
void* __libc_pvalloc(std::size_t size);
void __libc_free(void* p);
}

namespace {

constinit std::atomic<int64_t> g_allocations{0};

inline void CountAllocation() { g_allocations.fetch_add(1, std::memory_order_relaxed); }

int64_t Allocations() { return g_allocations.load(std::memory_order_relaxed); }

void* NewOrThrow(std::size_t size, std::size_t alignment) {
  CountAllocation();
  if (size == 0) size = 1;
  void* p = alignment <= alignof(std::max_align_t) ? __libc_malloc(size)
                                                   : __libc_memalign(alignment, size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* NewOrNull(std::size_t size, std::size_t alignment) noexcept {
  CountAllocation();
  if (size == 0) size = 1;
  return alignment <= alignof(std::max_align_t) ? __libc_malloc(size)
                                                : __libc_memalign(alignment, size);
}

}  // namespace

extern "C" {
void* malloc(std::size_t size) noexcept {
  CountAllocation();
  return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
  CountAllocation();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  CountAllocation();
  return __libc_realloc(p, size);
}
void* memalign(std::size_t alignment, std::size_t size) noexcept {
  CountAllocation();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  CountAllocation();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  CountAllocation();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(std::size_t size) noexcept {
  CountAllocation();
  return __libc_valloc(size);
}
void* pvalloc(std::size_t size) noexcept {
  CountAllocation();
  return __libc_pvalloc(size);
}
void free(void* p) noexcept { __libc_free(p); }
}

void* operator new(std::size_t size) { return NewOrThrow(size, 0); }
void* operator new[](std::size_t size) { return NewOrThrow(size, 0); }
void* operator new(std::size_t size, std::align_val_t al) {
  return NewOrThrow(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al) {
  return NewOrThrow(size, static_cast<std::size_t>(al));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return NewOrNull(size, 0); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return NewOrNull(size, 0);
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return NewOrNull(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return NewOrNull(size, static_cast<std::size_t>(al));
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  __libc_free(p);
}

// ---- The benchmark -----------------------------------------------------------------------------

namespace flowvi {
namespace {

struct Case {
  std::string target;  // catalog name, default parameters
  std::string flow;    // flow spec
  int batch;           // N
};

// Everything a fit needs, owned together (the Fitter borrows the flow and the target).
struct Setup {
  std::unique_ptr<Target> target;
  std::unique_ptr<Flow> flow;
  std::unique_ptr<Fitter> fitter;
};

absl::StatusOr<Setup> MakeSetup(const Case& c) {
  Setup s;
  absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget(c.target, {});
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
  const int64_t allocs_before = Allocations();
  for (auto _ : state) {
    status = fitter.Step(&summary);
    if (!status.ok()) break;
    benchmark::DoNotOptimize(summary.elbo);
  }
  const int64_t allocs = Allocations() - allocs_before;
  if (!status.ok()) {
    state.SkipWithError(std::string(status.message()).c_str());
    return;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["allocs_per_step"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations());
}

void RegisterAll() {
  const Case cases[] = {
      {"u1", "planar*32", 100}, {"u1", "planar*32", 1000}, {"eight_schools", "planar*32", 100},
      {"u1", "radial*32", 100}, {"u1", "meanfield", 100},
  };
  for (const Case& c : cases) {
    // e.g. "TrainStep/u1/planar*32/N:100" (filter with --benchmark_filter='u1/planar\*32/').
    benchmark::RegisterBenchmark(
        absl::StrCat("TrainStep/", c.target, "/", c.flow, "/N:", c.batch).c_str(),
        [c](benchmark::State& state) { BM_TrainStep(state, c); })
        ->Unit(benchmark::kMicrosecond);
  }
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
