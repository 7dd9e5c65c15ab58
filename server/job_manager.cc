#include "server/job_manager.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "engine/diagnostics/diagnostics.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow.h"
#include "engine/lang/model.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/convert.h"
#include "server/model_ref.h"
#include "server/request_limits.h"
#include "server/target_builder.h"

namespace flowvi::server {
namespace {

// Turns the engine's per-iteration summaries into throttled Progress events on the job, writes
// checkpoints on schedule, and stops the fit when the job is cancelled or the server stops.
class ProgressPublisher : public IterationCallback {
 public:
  ProgressPublisher(Job* job, Metrics* metrics, const std::atomic<bool>* stop,
                    absl::Duration interval, int64_t start_iteration,
                    absl::Duration checkpoint_interval,
                    std::function<void(const v1::Progress&)> checkpoint)
      : job_(job),
        metrics_(metrics),
        stop_(stop),
        interval_(absl::ToDoubleSeconds(interval)),
        checkpoint_interval_(absl::ToDoubleSeconds(checkpoint_interval)),
        checkpoint_(std::move(checkpoint)),
        last_iteration_(start_iteration),
        counted_(start_iteration) {}

  CallbackAction OnIteration(const IterationSummary& s) override {
    if (!s.skipped) {
      elbo_sum_ += s.elbo;
      ++elbo_n_;
    }
    if (s.elapsed_seconds - last_elapsed_ >= interval_ || s.iteration == s.total_iterations) {
      Publish(s);
    }
    if (checkpoint_ && s.elapsed_seconds - last_checkpoint_ >= checkpoint_interval_ &&
        s.iteration < s.total_iterations) {
      last_checkpoint_ = s.elapsed_seconds;
      checkpoint_(last_);
    }
    if (job_->cancel_requested() || stop_->load(std::memory_order_relaxed)) {
      return CallbackAction::kStop;
    }
    return CallbackAction::kContinue;
  }

  // Counts the iterations not yet reported to the metrics.
  void Flush() {
    metrics_->training_iterations().Increment(static_cast<double>(last_iteration_ - counted_));
    counted_ = last_iteration_;
  }

  const v1::Progress& last_progress() const { return last_; }

 private:
  void Publish(const IterationSummary& s) {
    v1::Progress p;
    p.set_iteration(s.iteration);
    p.set_total_iterations(s.total_iterations);
    p.set_elbo(elbo_n_ > 0 ? elbo_sum_ / static_cast<double>(elbo_n_) : std::nan(""));
    p.set_beta(s.beta);
    p.set_grad_norm(s.grad_norm);
    const double dt = s.elapsed_seconds - last_elapsed_;
    const double rate = dt > 0 ? static_cast<double>(s.iteration - last_iteration_) / dt : 0.0;
    p.set_iterations_per_second(rate);
    p.set_elapsed_seconds(s.elapsed_seconds);
    p.set_eta_seconds(rate > 0 ? static_cast<double>(s.total_iterations - s.iteration) / rate
                               : 0.0);
    last_elapsed_ = s.elapsed_seconds;
    last_iteration_ = s.iteration;
    elbo_sum_ = 0;
    elbo_n_ = 0;
    Flush();
    last_ = p;
    job_->PublishProgress(p);
  }

  Job* job_;
  Metrics* metrics_;
  const std::atomic<bool>* stop_;
  double interval_;
  double checkpoint_interval_;
  std::function<void(const v1::Progress&)> checkpoint_;
  double last_elapsed_ = 0;
  double last_checkpoint_ = 0;
  int64_t last_iteration_;
  int64_t counted_;
  double elbo_sum_ = 0;
  int64_t elbo_n_ = 0;
  v1::Progress last_;
};

// Fault injection for the durability tests: FLOWVI_CRASH_AT=<point> makes the process die at
// that point as kill -9 would (no destructors, no flush), to test the recovery of windows too
// narrow to hit by timing. Unset in production. Points: after_model_registered (the model is
// durable, the job's SUCCEEDED record not yet written), after_job_end_recorded (the job's end is
// durable, its checkpoint not yet removed).
void MaybeCrashForTesting(absl::string_view point) {
  static const char* const crash_at = std::getenv("FLOWVI_CRASH_AT");
  if (crash_at != nullptr && point == crash_at) std::_Exit(137);
}

// The spec stored with a job has both forms; the text alone is complete.
absl::StatusOr<FlowSpec> SpecOf(const v1::Job& record) {
  v1::FlowSpec text;
  text.set_text(record.flow().text());
  return FromProto(text);
}

// Out-of-support values that depend on the parameters (a scale that can go negative because it
// was declared without <lower=0>) only show when the target is evaluated. Evaluating it at draws
// like the ones the fit starts from (the initial flow is close to N(0, I)) finds them before
// anything is queued; the fit would otherwise skip every step and fail.
absl::Status ProbeSupport(BuiltTarget& built, uint64_t seed) {
  constexpr int kProbeDraws = 64;
  Rng rng(seed);
  Matrix z(built.target->dim(), kProbeDraws);
  rng.FillNormal(&z);
  RowVector log_p(kProbeDraws);
  built.target->LogDensity(z, &log_p, nullptr);
  absl::Status s = built.model_target->last_error();
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat(
      "target: the model is out of support at draws like those a fit starts from (standard "
      "normal in the unconstrained space): ",
      s.message(),
      "\nDeclare bounds on constrained parameters (e.g. real<lower=0> sigma) so that every "
      "unconstrained value is valid."));
}

// A failed fit of a program target says which statement produced the non-finite values.
absl::Status WithModelError(const absl::Status& s, const lang::ModelTarget* model_target) {
  if (s.ok() || model_target == nullptr) return s;
  absl::Status cause = model_target->last_error();
  if (cause.ok()) return s;
  return absl::Status(s.code(),
                      absl::StrCat(s.message(), "; the model reported: ", cause.message()));
}

}  // namespace

JobManager::JobManager(JobManagerOptions options, ModelRegistry* registry, Metrics* metrics)
    : options_(std::move(options)), registry_(registry), metrics_(metrics) {}

JobManager::~JobManager() { Shutdown(); }

void JobManager::Recover(const DataStore::Contents& contents, std::vector<std::string>* problems) {
  std::vector<const storage::v1::JobRecord*> records;
  for (const auto& r : contents.jobs) records.push_back(&r);
  std::sort(records.begin(), records.end(),
            [](const auto* a, const auto* b) { return a->sequence() < b->sequence(); });
  std::vector<std::shared_ptr<Job>> to_persist;
  // Jobs that have ended (or end now): a checkpoint of theirs is a leftover of a crash between
  // recording the end and removing it (Finished), which nothing else would ever remove.
  std::vector<std::string> finished;   // their end is on disk already
  std::vector<std::string> succeeded;  // marked SUCCEEDED here: once that is recorded
  {
    absl::MutexLock lock(&mu_);
    for (const storage::v1::JobRecord* r : records) {
      if (r->job().id().empty() || jobs_.contains(r->job().id())) {
        problems->push_back(absl::StrCat("job record with id '", r->job().id(),
                                         "' is empty or duplicated; skipped"));
        continue;
      }
      auto job = std::make_shared<Job>(r->request(), r->job(), r->sequence());
      next_sequence_ = std::max(next_sequence_, r->sequence() + 1);
      jobs_[job->id()] = job;
      if (!r->request().client_request_id().empty()) {
        request_ids_[{job->submitted_by(), r->request().client_request_id()}] = job->id();
      }
      if (job->done()) {
        finished.push_back(job->id());
        continue;
      }
      if (std::shared_ptr<const ModelVersion> mv = registry_->FindByJob(job->id())) {
        // Killed after registering the model but before recording success.
        job->MarkSucceeded(mv->model.diagnostics(),
                           absl::StrCat(mv->model.name(), "/", mv->model.version()),
                           mv->density != nullptr ? &mv->model.density_fit() : nullptr);
        to_persist.push_back(job);
        succeeded.push_back(job->id());
        continue;
      }
      if (job->state() == v1::JOB_STATE_RUNNING) {
        job->MarkRequeued();
        to_persist.push_back(job);
      }
      queue_.insert(job);
    }
    // Never hand out an id again, even one whose record was lost (damaged, or dropped with
    // nothing left but its model or checkpoint): recovery links a job to its model and its
    // checkpoint by id, so a new job under an old id would be taken for the old one (marked
    // SUCCEEDED with the old job's model after a crash, or resumed from its checkpoint).
    auto reserve = [this](absl::string_view id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      uint64_t n = 0;
      if (absl::ConsumePrefix(&id, "job-") && absl::SimpleAtoi(id, &n) && n < UINT64_MAX) {
        next_sequence_ = std::max(next_sequence_, n + 1);
      }
    };
    for (const storage::v1::ModelRecord& m : contents.models) reserve(m.model().job_id());
    for (const std::string& id : contents.job_file_ids) reserve(id);
    metrics_->queue_depth().Set(static_cast<double>(queue_.size()));
  }
  for (const auto& job : to_persist) {
    if (absl::Status s = Persist(*job); !s.ok()) {
      problems->push_back(std::string(s.message()));
    } else if (std::find(succeeded.begin(), succeeded.end(), job->id()) != succeeded.end()) {
      finished.push_back(job->id());
    }
  }
  if (options_.store == nullptr) return;
  for (const std::string& id : finished) {
    // OK (and no write) when there is none, the usual case.
    if (absl::Status s = options_.store->DeleteCheckpoint(id); !s.ok()) {
      problems->push_back(std::string(s.message()));
    }
  }
}

void JobManager::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

void JobManager::Shutdown() {
  std::vector<std::shared_ptr<Job>> waiting;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (const auto& [id, job] : jobs_) {
      if (!job->done()) waiting.push_back(job);
    }
  }
  stop_fits_.store(true);
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  // Running fits have checkpointed; tell every watcher of an unfinished job.
  for (const auto& job : waiting) {
    if (!job->done()) job->MarkServerStopping();
  }
}

absl::Status JobManager::Persist(Job& job) {
  if (options_.store == nullptr) return absl::OkStatus();
  absl::MutexLock lock(&job.persist_mutex());
  storage::v1::JobRecord record;
  *record.mutable_request() = job.request();
  *record.mutable_job() = job.Snapshot();
  record.set_sequence(job.sequence());
  return options_.store->PutJob(record);
}

absl::StatusOr<v1::Job> JobManager::Admit(const v1::SubmitFitRequest& request) const {
  const Limits& lim = options_.limits;
  if (absl::Status s = ValidateModelName(request.model_name()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("model_name: ", s.message()));
  }
  if (request.client_request_id().size() > 128) {
    return absl::InvalidArgumentError("client_request_id is longer than 128 characters");
  }
  if (absl::Status s = CheckTargetSize(request.target(), lim); !s.ok()) return s;
  absl::StatusOr<v1::Target> target = CanonicalTarget(request.target());
  if (!target.ok()) return target.status();
  absl::StatusOr<BuiltTarget> built =
      BuildTarget(request.target().has_data() ? request.target() : *target, lim.model);
  if (!built.ok()) return built.status();
  if (built->data != nullptr) return AdmitDensity(request, *built, *std::move(target));
  const int dim = built->target->dim();
  absl::StatusOr<FlowSpec> spec = FromProto(request.flow());
  if (!spec.ok()) return spec.status();
  absl::StatusOr<FitOptions> options = FromProto(request.options());
  if (!options.ok()) return options.status();
  if (absl::Status s = CheckFitSize(lim, "the target's dimension", dim, spec->num_layers(),
                                    options->batch_size, options->iterations);
      !s.ok()) {
    return s;
  }
  int64_t draws = options_.default_diagnostic_draws;
  if (request.options().has_diagnostic_draws()) {
    draws = request.options().diagnostic_draws();
    if (draws < 100) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.diagnostic_draws must be at least 100, got ", draws));
    }
    if (draws > lim.max_diagnostic_draws) {
      return OverLimit("options.diagnostic_draws", draws, lim.max_diagnostic_draws,
                       "--max_diagnostic_draws");
    }
  }
  // Working memory of a fit: a D x N batch per layer for the forward pass, the gradient
  // buffers and the layers' caches, roughly three per layer.
  double memory = 8.0 * 3.0 * options->batch_size * dim * (spec->num_layers() + 4);
  if (built->program != nullptr) {
    memory += static_cast<double>(built->program->bytes_per_sample()) * options->batch_size;
  }
  if (memory > static_cast<double>(lim.max_job_memory_bytes)) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the fit would need about %.0f MiB (batch_size %d x dimension %d x %d layers), over this "
        "server's per-job budget of %.0f MiB; use a smaller batch or fewer layers",
        memory / (1 << 20), options->batch_size, dim, spec->num_layers(),
        static_cast<double>(lim.max_job_memory_bytes) / (1 << 20)));
  }
  absl::StatusOr<std::unique_ptr<Flow>> flow = Flow::Create(*spec, dim);
  if (!flow.ok()) return flow.status();
  if (built->model_target != nullptr) {
    if (absl::Status s = ProbeSupport(*built, options->seed); !s.ok()) return s;
  }

  return QueuedJob(request, *std::move(target), *spec, ToProto(*options, draws), dim,
                   (*flow)->num_params());
}

absl::StatusOr<v1::Job> JobManager::Submit(const v1::SubmitFitRequest& request,
                                           absl::string_view submitted_by) {
  absl::StatusOr<v1::Job> record = Admit(request);
  if (!record.ok()) return record.status();
  record->set_submitted_by(std::string(submitted_by));
  // A client_request_id is the submitter's own: another principal's equal key is unrelated.
  const std::pair<std::string, std::string> request_key(submitted_by, request.client_request_id());
  std::shared_ptr<Job> job;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the server is shutting down; retry shortly");
    if (!request.client_request_id().empty()) {
      auto it = request_ids_.find(request_key);
      if (it != request_ids_.end()) {
        std::shared_ptr<Job> original = jobs_.at(it->second);
        if (!google::protobuf::util::MessageDifferencer::Equals(original->request(), request)) {
          return absl::AlreadyExistsError(absl::StrCat(
              "client_request_id '", request.client_request_id(), "' was already used by job ",
              original->id(), " for a different request"));
        }
        return original->Snapshot();
      }
    }
    if (static_cast<int>(queue_.size()) >= options_.max_queued) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the fit queue is full (", queue_.size(), " jobs waiting); retry later"));
    }
    const uint64_t seq = next_sequence_++;
    record->set_id(absl::StrFormat("job-%06d", seq));
    job = std::make_shared<Job>(request, *std::move(record), seq);
    // Visible to duplicate submissions at once, but not to workers until it is on disk.
    jobs_[job->id()] = job;
    if (!request.client_request_id().empty()) request_ids_[request_key] = job->id();
  }
  if (absl::Status s = Persist(*job); !s.ok()) {
    absl::MutexLock lock(&mu_);
    jobs_.erase(job->id());
    if (!request.client_request_id().empty()) request_ids_.erase(request_key);
    return absl::Status(s.code(), absl::StrCat("the job could not be saved, so it was not "
                                               "accepted: ",
                                               s.message()));
  }
  absl::MutexLock lock(&mu_);
  queue_.insert(job);
  metrics_->queue_depth().Set(static_cast<double>(queue_.size()));
  // Taken before any worker can start the job (workers take jobs under mu_): the answer is the
  // job as queued, as the API promises, not whatever state a worker has moved it to since.
  return job->Snapshot();
}

absl::StatusOr<std::shared_ptr<Job>> JobManager::Get(absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(std::string(id));
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", id, "' not found"));
  return it->second;
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(
    const v1::ListJobsRequest& request, std::optional<absl::string_view> only_submitted_by) const {
  int page_size = request.page_size() == 0 ? 100 : request.page_size();
  if (page_size < 0 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be between 1 and 1000, got ", request.page_size()));
  }
  uint64_t before = UINT64_MAX;
  if (!request.page_token().empty()) {
    absl::string_view t = request.page_token();
    if (!absl::ConsumePrefix(&t, "before-") || !absl::SimpleAtoi(t, &before)) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token '", request.page_token(), "' is not one this server issued"));
    }
  }
  std::vector<std::shared_ptr<Job>> jobs;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, job] : jobs_) {
      if (job->sequence() >= before) continue;
      if (only_submitted_by.has_value() && job->submitted_by() != *only_submitted_by) continue;
      jobs.push_back(job);
    }
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const auto& a, const auto& b) { return a->sequence() > b->sequence(); });
  v1::ListJobsResponse out;
  uint64_t last_sequence = 0;
  for (const auto& job : jobs) {
    v1::Job snap = job->Snapshot();
    if (request.states_size() > 0 && std::find(request.states().begin(), request.states().end(),
                                               snap.state()) == request.states().end()) {
      continue;
    }
    if (out.jobs_size() == page_size) {
      // The token carries the sequence of the last job returned.
      out.set_next_page_token(absl::StrCat("before-", last_sequence));
      break;
    }
    *out.add_jobs() = std::move(snap);
    last_sequence = job->sequence();
  }
  return out;
}

absl::StatusOr<v1::Job> JobManager::Cancel(absl::string_view id) {
  absl::StatusOr<std::shared_ptr<Job>> job = Get(id);
  if (!job.ok()) return job.status();
  if ((*job)->done()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " has already ended (", v1::JobState_Name((*job)->state()), ")"));
  }
  (*job)->RequestCancel();
  bool was_queued = false;
  {
    absl::MutexLock lock(&mu_);
    was_queued = queue_.erase(*job) > 0;
    metrics_->queue_depth().Set(static_cast<double>(queue_.size()));
  }
  if (was_queued) {
    if ((*job)->MarkCancelled("cancelled by CancelJob while queued")) Finished(*job, "cancelled");
  } else {
    // A running fit stops within one iteration; wait for it so the answer says CANCELLED.
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!(*job)->done() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  }
  return (*job)->Snapshot();
}

void JobManager::WorkerLoop() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](JobManager* m)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(m->mu_) { return m->stopping_ || !m->queue_.empty(); },
          this));
      if (stopping_) return;
      job = *queue_.begin();
      queue_.erase(queue_.begin());
      metrics_->queue_depth().Set(static_cast<double>(queue_.size()));
    }
    metrics_->queue_wait_seconds().Observe(absl::ToDoubleSeconds(absl::Now() - job->create_time()));
    RunJob(job);
  }
}

void JobManager::Finished(const std::shared_ptr<Job>& job, absl::string_view outcome) {
  metrics_->JobFinished(outcome);
  if (absl::Status s = Persist(*job); !s.ok()) {
    std::fprintf(stderr, "flowvi-server: could not record the end of %s: %s\n", job->id().c_str(),
                 std::string(s.message()).c_str());
  }
  MaybeCrashForTesting("after_job_end_recorded");
  if (options_.store != nullptr) (void)options_.store->DeleteCheckpoint(job->id());
  EnforceRetention();
}

void JobManager::EnforceRetention() {
  std::vector<std::shared_ptr<Job>> dropped;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::shared_ptr<Job>> done;
    for (const auto& [id, job] : jobs_) {
      if (job->done()) done.push_back(job);
    }
    if (static_cast<int>(done.size()) <= options_.max_finished_jobs) return;
    std::sort(done.begin(), done.end(),
              [](const auto& a, const auto& b) { return a->sequence() < b->sequence(); });
    done.resize(done.size() - static_cast<size_t>(std::max(0, options_.max_finished_jobs)));
    for (const auto& job : done) {
      jobs_.erase(job->id());
      if (!job->request().client_request_id().empty()) {
        request_ids_.erase({job->submitted_by(), job->request().client_request_id()});
      }
    }
    dropped = std::move(done);
  }
  if (options_.store == nullptr) return;
  for (const auto& job : dropped) {
    absl::MutexLock lock(&job->persist_mutex());  // after any write of it in flight
    (void)options_.store->DeleteJob(job->id());
  }
}

void JobManager::RunJob(const std::shared_ptr<Job>& job) {
  if (!job->MarkRunning()) return;
  (void)Persist(*job);  // if this write fails the job is still QUEUED on disk: it reruns
  metrics_->running_jobs().Increment();
  const absl::Time start = absl::Now();
  const v1::Job record = job->Snapshot();
  if (record.target().has_data()) {
    RunDensityJob(job, record);
    metrics_->running_jobs().Decrement();
    metrics_->fit_duration_seconds().Observe(absl::ToDoubleSeconds(absl::Now() - start));
    return;
  }
  auto fail = [&](const absl::Status& s) {
    if (job->MarkFailed(static_cast<int>(s.code()), std::string(s.message()))) {
      Finished(job, "failed");
    }
  };
  // Admission validated all of this; an error here would be a broken invariant, still reported
  // on the job rather than crashing the server.
  absl::StatusOr<BuiltTarget> built = BuildTarget(record.target(), options_.limits.model);
  lang::ModelTarget* const model_target = built.ok() ? built->model_target : nullptr;
  const std::shared_ptr<const lang::CompiledModel> program = built.ok() ? built->program : nullptr;
  absl::StatusOr<std::unique_ptr<Target>> target =
      built.ok() ? std::move(built->target)
                 : absl::StatusOr<std::unique_ptr<Target>>(built.status());
  absl::StatusOr<FlowSpec> spec = SpecOf(record);
  absl::StatusOr<FitOptions> options = FromProto(record.options());
  absl::StatusOr<std::unique_ptr<Flow>> flow =
      spec.ok() && target.ok()
          ? Flow::Create(*spec, (*target)->dim())
          : absl::StatusOr<std::unique_ptr<Flow>>(absl::InternalError("bad job record"));
  absl::StatusOr<std::unique_ptr<Fitter>> fitter =
      flow.ok() && options.ok()
          ? Fitter::Create(flow->get(), target->get(), *options)
          : absl::StatusOr<std::unique_ptr<Fitter>>(absl::InternalError("bad job record"));
  if (!fitter.ok()) {
    fail(fitter.status());
    metrics_->running_jobs().Decrement();
    return;
  }
  DataStore* store = options_.store;
  if (store != nullptr) {
    absl::StatusOr<storage::v1::CheckpointRecord> cp = store->GetCheckpoint(job->id());
    if (cp.ok()) {
      absl::StatusOr<FitCheckpoint> restored = FromRecord(*cp);
      absl::Status s = restored.ok() ? (*fitter)->Restore(*restored) : restored.status();
      if (!s.ok()) {
        // The fit is deterministic: starting over gives the same result, only later.
        std::fprintf(stderr, "flowvi-server: %s: checkpoint unusable (%s); starting over\n",
                     job->id().c_str(), std::string(s.message()).c_str());
      }
    } else if (cp.status().code() != absl::StatusCode::kNotFound) {
      std::fprintf(stderr, "flowvi-server: %s: %s; starting over\n", job->id().c_str(),
                   std::string(cp.status().message()).c_str());
    }
  }
  Fitter* f = fitter->get();
  auto checkpoint = [&, f](const v1::Progress& progress) {
    storage::v1::CheckpointRecord r = ToRecord(f->Checkpoint(), job->id());
    *r.mutable_progress() = progress;
    if (absl::Status s = store->PutCheckpoint(r); !s.ok()) {
      std::fprintf(stderr, "flowvi-server: %s: checkpoint not written: %s\n", job->id().c_str(),
                   std::string(s.message()).c_str());
    }
  };
  ProgressPublisher publisher(
      job.get(), metrics_, &stop_fits_, options_.progress_interval, f->iteration(),
      options_.checkpoint_interval,
      store != nullptr ? std::function<void(const v1::Progress&)>(checkpoint) : nullptr);
  absl::StatusOr<FitSummary> summary = f->Run(&publisher);
  publisher.Flush();
  if (!summary.ok()) {
    fail(WithModelError(summary.status(), model_target));
  } else if (summary->reason == TerminationReason::kStopped) {
    if (job->cancel_requested()) {
      if (job->MarkCancelled("cancelled by CancelJob")) Finished(job, "cancelled");
    } else if (store != nullptr) {
      // The server is draining: resume from exactly here after the restart.
      checkpoint(publisher.last_progress());
    } else if (job->MarkCancelled("the server shut down during the fit")) {
      Finished(job, "cancelled");
    }
  } else {
    DiagnosticsOptions dopt;
    dopt.num_draws = record.options().diagnostic_draws();
    dopt.seed = options->seed ^ 0x9e3779b97f4a7c15ULL;
    if (program != nullptr) {
      // Moments in the space the program declares (tau, not log(tau)).
      dopt.to_user_space = [program](const Matrix& u, Matrix* x) { program->ConstrainBatch(u, x); };
    }
    absl::StatusOr<Diagnostics> diag = ComputeDiagnostics(**flow, **target, dopt);
    if (job->cancel_requested()) {
      // CancelJob arrived while the diagnostics ran (the job was still RUNNING): honour it
      // rather than register a model the client asked not to have.
      if (job->MarkCancelled("cancelled by CancelJob")) Finished(job, "cancelled");
    } else if (!diag.ok()) {
      fail(WithModelError(diag.status(), model_target));
    } else {
      const v1::Diagnostics pdiag =
          ToProto(*diag, program != nullptr ? program->names() : (*target)->coordinate_names());
      v1::Model model;
      model.set_name(record.model_name());
      *model.mutable_target() = record.target();
      *model.mutable_flow() = record.flow();
      *model.mutable_options() = record.options();
      *model.mutable_diagnostics() = pdiag;
      model.mutable_elbo_trace()->Add(summary->elbo_trace.begin(), summary->elbo_trace.end());
      model.set_trace_stride(summary->trace_stride);
      model.set_dim(record.dim());
      model.set_num_params(record.num_params());
      model.set_job_id(job->id());
      SetTimestamp(absl::Now(), model.mutable_create_time());
      absl::StatusOr<std::shared_ptr<const ModelVersion>> mv =
          registry_->Register(std::move(model), *std::move(flow), program);
      MaybeCrashForTesting("after_model_registered");
      if (!mv.ok()) {
        fail(absl::Status(mv.status().code(),
                          absl::StrCat("the fit finished but its model could not be saved: ",
                                       mv.status().message())));
      } else {
        metrics_->models().Set(static_cast<double>(registry_->num_versions()));
        if (job->MarkSucceeded(pdiag,
                               absl::StrCat((*mv)->model.name(), "/", (*mv)->model.version()))) {
          Finished(job, "succeeded");
        }
      }
    }
  }
  metrics_->running_jobs().Decrement();
  metrics_->fit_duration_seconds().Observe(absl::ToDoubleSeconds(absl::Now() - start));
}

}  // namespace flowvi::server
