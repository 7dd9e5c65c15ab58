// JobManager's data-set (maximum-likelihood) jobs: admission and the run. Split from
// job_manager.cc, which keeps the variational fits; the queue, persistence and recovery are
// shared.
//
// Density jobs are not checkpointed: DensityFitter is deterministic, so a job interrupted by a
// restart simply runs again from the start and ends with the same parameters.
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/fit/density_fitter.h"
#include "server/convert.h"
#include "server/job_manager.h"
#include "server/request_limits.h"

namespace flowvi::server {
namespace {

// Throttled Progress events (train and held-out log-likelihood) on the job; stops the fit when
// the job is cancelled or the server drains.
class DensityPublisher : public DensityCallback {
 public:
  DensityPublisher(Job* job, Metrics* metrics, const std::atomic<bool>* stop,
                   absl::Duration interval)
      : job_(job), metrics_(metrics), stop_(stop), interval_(absl::ToDoubleSeconds(interval)) {}

  CallbackAction OnProgress(const DensityProgress& p) override {
    if (!p.skipped && std::isfinite(p.train_log_likelihood)) {
      train_sum_ += p.train_log_likelihood;
      ++train_n_;
    }
    if (std::isfinite(p.held_out_log_likelihood)) held_out_ = p.held_out_log_likelihood;
    if (std::isfinite(p.best_held_out_log_likelihood)) best_ = p.best_held_out_log_likelihood;
    last_grad_norm_ = p.grad_norm;
    if (p.elapsed_seconds - last_elapsed_ >= interval_ || p.iteration == p.total_iterations) {
      Publish(p.iteration, p.total_iterations, p.elapsed_seconds);
    }
    if (job_->cancel_requested() || stop_->load(std::memory_order_relaxed)) {
      return CallbackAction::kStop;
    }
    return CallbackAction::kContinue;
  }

  // A last event at the step the fit ended on (early stopping ends before the total).
  void Finish(int64_t iteration, int64_t total, double elapsed) {
    if (iteration > last_iteration_) Publish(iteration, total, elapsed);
  }

 private:
  void Publish(int64_t iteration, int64_t total, double elapsed) {
    v1::Progress out;
    out.set_iteration(iteration);
    out.set_total_iterations(total);
    if (train_n_ > 0) out.set_train_log_likelihood(train_sum_ / static_cast<double>(train_n_));
    if (std::isfinite(held_out_)) out.set_held_out_log_likelihood(held_out_);
    if (std::isfinite(best_)) out.set_best_held_out_log_likelihood(best_);
    out.set_beta(1.0);
    out.set_grad_norm(last_grad_norm_);
    const double dt = elapsed - last_elapsed_;
    const double rate = dt > 0 ? static_cast<double>(iteration - last_iteration_) / dt : 0.0;
    out.set_iterations_per_second(rate);
    out.set_elapsed_seconds(elapsed);
    out.set_eta_seconds(rate > 0 ? static_cast<double>(total - iteration) / rate : 0.0);
    metrics_->training_iterations().Increment(static_cast<double>(iteration - last_iteration_));
    last_elapsed_ = elapsed;
    last_iteration_ = iteration;
    train_sum_ = 0;
    train_n_ = 0;
    job_->PublishProgress(out);
  }

  Job* job_;
  Metrics* metrics_;
  const std::atomic<bool>* stop_;
  double interval_;
  double last_elapsed_ = 0;
  int64_t last_iteration_ = 0;
  double train_sum_ = 0;
  int64_t train_n_ = 0;
  double held_out_ = std::nan("");
  double best_ = std::nan("");
  double last_grad_norm_ = 0;
};

v1::DensityFit ToProto(const DensityFitSummary& s, const DensityModel& model) {
  v1::DensityFit out;
  out.set_train_log_likelihood(s.train_log_likelihood);
  if (std::isfinite(s.held_out_log_likelihood)) {
    out.set_held_out_log_likelihood(s.held_out_log_likelihood);
  }
  out.set_train_points(s.train_points);
  out.set_held_out_points(s.held_out_points);
  out.set_best_iteration(s.best_iteration);
  out.set_iterations(s.iterations);
  out.set_early_stopped(s.reason == DensityTermination::kEarlyStopped);
  out.mutable_mean()->Add(model.mean().data(), model.mean().data() + model.mean().size());
  out.mutable_sd()->Add(model.sd().data(), model.sd().data() + model.sd().size());
  return out;
}

}  // namespace

absl::StatusOr<v1::Job> JobManager::AdmitDensity(const v1::SubmitFitRequest& request,
                                                 const BuiltTarget& built,
                                                 v1::Target target) const {
  const Limits& lim = options_.limits;
  const Dataset& data = *built.data;
  const int dim = data.dim();
  absl::StatusOr<FlowSpec> spec = FromProto(request.flow());
  if (!spec.ok()) return spec.status();
  absl::StatusOr<DensityFitOptions> options = DensityOptionsFromProto(request.options());
  if (!options.ok()) return options.status();
  if (absl::Status s = CheckFitSize(lim, "target.data.dim", dim, spec->num_layers(),
                                    options->batch_size, options->iterations);
      !s.ok()) {
    return s;
  }
  // The batch's passes (as for a variational fit) plus the fitter's standardized copy of the
  // data and the request's own.
  const double memory = 8.0 * 3.0 * options->batch_size * dim * (spec->num_layers() + 4) +
                        8.0 * 2.0 * static_cast<double>(data.size()) * dim;
  if (memory > static_cast<double>(lim.max_job_memory_bytes)) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the fit would need about %.0f MiB (%d points x dimension %d, batch_size %d, %d layers), "
        "over this server's per-job budget of %.0f MiB; use less data, a smaller batch or fewer "
        "layers",
        memory / (1 << 20), data.size(), dim, options->batch_size, spec->num_layers(),
        static_cast<double>(lim.max_job_memory_bytes) / (1 << 20)));
  }
  // Everything the fit itself would reject (a flow that cannot take the dimension, a split
  // leaving a side empty, a constant column) is found here, before anything is queued.
  absl::StatusOr<std::unique_ptr<DensityFitter>> fitter =
      DensityFitter::Create(data, *spec, *options);
  if (!fitter.ok()) return fitter.status();

  return QueuedJob(request, std::move(target), *spec, ToProto(*options), dim,
                   (*fitter)->model().flow().num_params());
}

void JobManager::RunDensityJob(const std::shared_ptr<Job>& job, const v1::Job& record) {
  auto fail = [&](const absl::Status& s) {
    if (job->MarkFailed(static_cast<int>(s.code()), std::string(s.message()))) {
      Finished(job, "failed");
    }
  };
  // Admission validated all of this; an error here is still reported on the job.
  v1::FlowSpec text;
  text.set_text(record.flow().text());
  absl::StatusOr<FlowSpec> spec = FromProto(text);
  if (!spec.ok()) return fail(spec.status());
  absl::StatusOr<DensityFitOptions> options = DensityOptionsFromProto(record.options());
  if (!options.ok()) return fail(options.status());
  // The fitter keeps its own (standardized) copy: the checked points go out of scope here.
  absl::StatusOr<std::unique_ptr<DensityFitter>> fitter = [&] {
    absl::StatusOr<Dataset> data = DatasetFromProto(job->request().target().data());
    if (!data.ok()) return absl::StatusOr<std::unique_ptr<DensityFitter>>(data.status());
    return DensityFitter::Create(*data, *spec, *options);
  }();
  if (!fitter.ok()) return fail(fitter.status());

  DensityPublisher publisher(job.get(), metrics_, &stop_fits_, options_.progress_interval);
  absl::StatusOr<DensityFitSummary> summary = (*fitter)->Run(&publisher);
  if (!summary.ok()) return fail(summary.status());
  if (summary->reason == DensityTermination::kStopped) {
    if (job->cancel_requested()) {
      if (job->MarkCancelled("cancelled by CancelJob")) Finished(job, "cancelled");
    } else if (options_.store == nullptr) {
      if (job->MarkCancelled("the server shut down during the fit")) Finished(job, "cancelled");
    }
    // With a store the job stays RUNNING on disk and runs again from the start on restart.
    return;
  }
  publisher.Finish(summary->iterations, options->iterations, summary->elapsed_seconds);
  std::unique_ptr<DensityModel> density = (*fitter)->ReleaseModel();
  const v1::DensityFit fit = ToProto(*summary, *density);
  v1::Model model;
  model.set_name(record.model_name());
  *model.mutable_target() = record.target();
  *model.mutable_flow() = record.flow();
  *model.mutable_options() = record.options();
  *model.mutable_density_fit() = fit;
  model.set_dim(record.dim());
  model.set_num_params(record.num_params());
  model.set_job_id(job->id());
  SetTimestamp(absl::Now(), model.mutable_create_time());
  if (job->cancel_requested()) {
    if (job->MarkCancelled("cancelled by CancelJob")) Finished(job, "cancelled");
    return;
  }
  absl::StatusOr<std::shared_ptr<const ModelVersion>> mv =
      registry_->RegisterDensity(std::move(model), std::move(density));
  if (!mv.ok()) {
    return fail(absl::Status(mv.status().code(),
                             absl::StrCat("the fit finished but its model could not be saved: ",
                                          mv.status().message())));
  }
  metrics_->models().Set(static_cast<double>(registry_->num_versions()));
  if (job->MarkSucceeded(v1::Diagnostics(),
                         absl::StrCat((*mv)->model.name(), "/", (*mv)->model.version()), &fit)) {
    Finished(job, "succeeded");
  }
}

}  // namespace flowvi::server
