// flowvi-engine-demo: fits a flow to a built-in target with the engine alone (no server) and
// prints ELBO progress and the final diagnostics. `make demo` runs it on u1 with planar*32.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "engine/diagnostics/diagnostics.h"
#include "engine/diagnostics/psis.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow.h"
#include "engine/targets/catalog.h"

ABSL_FLAG(std::string, target, "u1", "built-in target name");
ABSL_FLAG(std::vector<std::string>, param, {}, "target parameters, key=value (comma-separated)");
ABSL_FLAG(std::string, flow, "planar*32",
          "flow spec, e.g. planar*32, radial*8,planar*8, meanfield");
ABSL_FLAG(int64_t, iters, 10000, "training iterations");
ABSL_FLAG(int, batch, 100, "Monte Carlo samples per iteration");
ABSL_FLAG(double, lr, 1e-3, "learning rate");
ABSL_FLAG(int64_t, anneal, 10000, "annealing iterations (0: off)");
ABSL_FLAG(std::string, optimizer, "adam", "adam or rmsprop");
ABSL_FLAG(uint64_t, seed, 0, "random seed");
ABSL_FLAG(int64_t, report_every, 1000, "print progress every this many iterations");
ABSL_FLAG(int64_t, draws, 20000, "draws for the final diagnostics");

namespace flowvi {
namespace {

class Progress : public IterationCallback {
 public:
  explicit Progress(int64_t every) : every_(every) {}
  CallbackAction OnIteration(const IterationSummary& s) override {
    sum_ += s.skipped ? 0.0 : s.elbo;
    ++n_;
    if (s.iteration % every_ == 0 || s.iteration == s.total_iterations) {
      std::printf(
          "iter %7lld/%lld  ELBO %9.4f (mean of last %lld)  beta %.3f  |grad| %8.3g  %6.0f it/s\n",
          static_cast<long long>(s.iteration), static_cast<long long>(s.total_iterations),
          sum_ / n_, static_cast<long long>(n_), s.beta, s.grad_norm,
          s.iteration / std::max(s.elapsed_seconds, 1e-9));
      std::fflush(stdout);
      sum_ = 0;
      n_ = 0;
    }
    return CallbackAction::kContinue;
  }

 private:
  int64_t every_;
  double sum_ = 0;
  int64_t n_ = 0;
};

int Main() {
  const std::string target_name = absl::GetFlag(FLAGS_target);
  absl::StatusOr<const TargetInfo*> info = FindTarget(target_name);
  if (!info.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(info.status().message()).c_str());
    return 2;
  }
  ParamMap params;
  for (const std::string& kv : absl::GetFlag(FLAGS_param)) {
    std::vector<std::string> parts = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    const ParamSpec* spec = nullptr;
    for (const ParamSpec& s : (*info)->params) {
      if (parts.size() == 2 && s.name == parts[0]) spec = &s;
    }
    if (spec == nullptr) {
      std::fprintf(stderr, "error: target '%s' has no parameter '%s'\n", target_name.c_str(),
                   kv.c_str());
      return 2;
    }
    absl::StatusOr<ParamValue> v = ParseParamValue(spec->type, parts[1]);
    if (!v.ok()) {
      std::fprintf(stderr, "error: --param %s: %s\n", kv.c_str(),
                   std::string(v.status().message()).c_str());
      return 2;
    }
    params[parts[0]] = *v;
  }
  absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget(target_name, params);
  absl::StatusOr<FlowSpec> spec = ParseFlowSpec(absl::GetFlag(FLAGS_flow));
  if (!target.ok() || !spec.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string((!target.ok() ? target.status() : spec.status()).message()).c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, (*target)->dim());
  FitOptions options;
  options.iterations = absl::GetFlag(FLAGS_iters);
  options.batch_size = absl::GetFlag(FLAGS_batch);
  options.learning_rate = absl::GetFlag(FLAGS_lr);
  options.anneal_iterations = absl::GetFlag(FLAGS_anneal);
  options.seed = absl::GetFlag(FLAGS_seed);
  absl::StatusOr<OptimizerType> opt = ParseOptimizer(absl::GetFlag(FLAGS_optimizer));
  if (!flow.ok() || !opt.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string((!flow.ok() ? flow.status() : opt.status()).message()).c_str());
    return 2;
  }
  options.optimizer = *opt;
  absl::StatusOr<std::unique_ptr<Fitter>> fitter =
      Fitter::Create(flow->get(), target->get(), options);
  if (!fitter.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(fitter.status().message()).c_str());
    return 2;
  }
  // Fixed structure (permute, orthogonal) is stored with the parameters but never trained.
  const int fixed = (*flow)->num_fixed_params();
  const std::string counts = fixed == 0 ? absl::StrCat((*flow)->num_params(), " parameters")
                                        : absl::StrCat((*flow)->num_params() - fixed,
                                                       " trainable + ", fixed, " fixed parameters");
  std::printf("fitting %s (D=%d) with %s (%s), %lld iterations, N=%d, %s lr=%g\n",
              target_name.c_str(), (*target)->dim(), (*flow)->spec().ToString().c_str(),
              counts.c_str(), static_cast<long long>(options.iterations), options.batch_size,
              std::string(OptimizerName(options.optimizer)).c_str(), options.learning_rate);
  Progress progress(std::max<int64_t>(1, absl::GetFlag(FLAGS_report_every)));
  absl::StatusOr<FitSummary> summary = (*fitter)->Run(&progress);
  if (!summary.ok()) {
    std::fprintf(stderr, "fit failed: %s\n", std::string(summary.status().message()).c_str());
    return 1;
  }
  std::printf("trained in %.2f s (%.1f us/iteration), %lld skipped steps\n",
              summary->elapsed_seconds, 1e6 * summary->elapsed_seconds / summary->iterations,
              static_cast<long long>(summary->skipped_steps));
  DiagnosticsOptions dopt;
  dopt.num_draws = absl::GetFlag(FLAGS_draws);
  absl::StatusOr<Diagnostics> d = ComputeDiagnostics(**flow, **target, dopt);
  if (!d.ok()) {
    std::fprintf(stderr, "diagnostics failed: %s\n", std::string(d.status().message()).c_str());
    return 1;
  }
  std::printf("\ndiagnostics from %lld draws\n", static_cast<long long>(d->num_draws));
  std::printf("  ELBO        %9.4f +- %.4f\n", d->elbo, d->elbo_se);
  if (d->kl.has_value())
    std::printf("  KL(q||p)    %9.4f  (log Z known: %.6f)\n", *d->kl, d->elbo + *d->kl);
  std::printf("  PSIS k-hat  %9.3f  (%s)\n", d->k_hat, std::string(KHatReading(d->k_hat)).c_str());
  std::printf("  ESS         %9.1f  (%.1f%% of draws)\n", d->ess, 100.0 * d->ess / d->num_draws);
  std::printf("  log Z-hat   %9.4f +- %.4f\n", d->log_z, d->log_z_se);
  const std::vector<std::string> names = (*target)->coordinate_names();
  std::printf("  %-10s %10s %10s %12s %10s\n", "coord", "mean", "sd", "psis mean", "psis sd");
  for (int i = 0; i < (*target)->dim(); ++i) {
    std::printf("  %-10s %10.4f %10.4f %12.4f %10.4f\n", names[i].c_str(), d->mean[i], d->sd[i],
                d->psis_mean[i], d->psis_sd[i]);
  }
  return 0;
}

}  // namespace
}  // namespace flowvi

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Fits a normalizing flow to a built-in target and prints diagnostics.");
  absl::ParseCommandLine(argc, argv);
  return flowvi::Main();
}
