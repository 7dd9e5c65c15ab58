// Shared by the service benchmarks: registers a planar*32 flow on u1, trained briefly through
// the engine (quicker than a fit job), as `name` in a running server's registry.
#ifndef FLOWVI_BENCH_TRAINED_MODEL_H_
#define FLOWVI_BENCH_TRAINED_MODEL_H_

#include <string>

#include "absl/status/status.h"
#include "engine/fit/fitter.h"
#include "engine/targets/catalog.h"
#include "server/registry.h"
#include "server/server.h"

namespace flowvi::bench {

inline absl::Status RegisterTrainedU1Model(server::Server& srv, const std::string& name,
                                           int64_t iterations) {
  absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget("u1", {});
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec("planar*32");
  if (!target.ok() || !spec.ok()) return absl::InternalError("u1 or planar*32 not available");
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, 2);
  if (!flow.ok()) return flow.status();
  FitOptions options;
  options.iterations = iterations;
  options.learning_rate = 3e-3;
  absl::StatusOr<std::unique_ptr<Fitter>> fitter =
      Fitter::Create(flow->get(), target->get(), options);
  if (!fitter.ok()) return fitter.status();
  if (absl::StatusOr<FitSummary> s = (*fitter)->Run(); !s.ok()) return s.status();
  v1::Model model;
  model.set_name(name);
  model.set_dim(2);
  model.mutable_flow()->set_text("planar*32");
  return srv.registry().Register(std::move(model), *std::move(flow)).status();
}

}  // namespace flowvi::bench

#endif  // FLOWVI_BENCH_TRAINED_MODEL_H_
