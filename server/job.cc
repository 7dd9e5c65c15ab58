#include "server/job.h"

#include <algorithm>

namespace flowvi::server {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t nanos = absl::ToUnixNanos(t);
  out->set_seconds(nanos / 1000000000);
  out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

void JobObserverHandle::Notify() {
  JobObserver* observer = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (observer_ == nullptr) return;
    observer = observer_;
    observer->AddRef();
  }
  observer->OnJobChanged();
  observer->Release();
}

void JobObserverHandle::Detach() {
  absl::MutexLock lock(&mu_);
  observer_ = nullptr;
}

namespace {

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(t.seconds() * 1000000000 + t.nanos());
}

}  // namespace

Job::Job(v1::SubmitFitRequest request, v1::Job job, uint64_t sequence)
    : id_(job.id()),
      submitted_by_(job.submitted_by()),
      request_(std::move(request)),
      sequence_(sequence),
      create_time_(job.has_create_time() ? FromTimestamp(job.create_time()) : absl::Now()),
      job_(std::move(job)) {
  SetTimestamp(create_time_, job_.mutable_create_time());
  if (job_.progress().iteration() > 0) history_.push_back(job_.progress());
}

v1::Job Job::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return job_;
}

v1::JobState Job::state() const {
  absl::MutexLock lock(&mu_);
  return job_.state();
}

bool Job::done() const {
  absl::MutexLock lock(&mu_);
  return job_.done();
}

std::vector<v1::Progress> Job::ProgressAfter(int64_t iteration) const {
  absl::MutexLock lock(&mu_);
  auto first =
      std::upper_bound(history_.begin(), history_.end(), iteration,
                       [](int64_t it, const v1::Progress& p) { return it < p.iteration(); });
  return std::vector<v1::Progress>(first, history_.end());
}

bool Job::LatestProgressAfter(int64_t iteration, v1::Progress* out) const {
  absl::MutexLock lock(&mu_);
  if (history_.empty() || history_.back().iteration() <= iteration) return false;
  *out = history_.back();
  return true;
}

bool Job::MarkRunning() {
  {
    absl::MutexLock lock(&mu_);
    if (job_.done()) return false;
    job_.set_state(v1::JOB_STATE_RUNNING);
    SetTimestamp(absl::Now(), job_.mutable_start_time());
  }
  NotifyObservers();
  return true;
}

bool Job::MarkRequeued() {
  {
    absl::MutexLock lock(&mu_);
    if (job_.done()) return false;
    job_.set_state(v1::JOB_STATE_QUEUED);
  }
  NotifyObservers();
  return true;
}

void Job::MarkServerStopping() {
  server_stopping_.store(true, std::memory_order_relaxed);
  NotifyObservers();
}

void Job::PublishProgress(const v1::Progress& progress) {
  {
    absl::MutexLock lock(&mu_);
    *job_.mutable_progress() = progress;
    if (history_.size() >= kMaxHistory) {
      // Thin the older half so the history spans the whole fit at a coarser step.
      std::vector<v1::Progress> kept;
      kept.reserve(kMaxHistory / 2 + 1);
      for (size_t i = 0; i < history_.size(); i += 2) kept.push_back(std::move(history_[i]));
      history_ = std::move(kept);
    }
    history_.push_back(progress);
  }
  NotifyObservers();
}

bool Job::Finish(v1::JobState state, int code, const std::string& message) {
  {
    absl::MutexLock lock(&mu_);
    if (job_.done()) return false;
    job_.set_state(state);
    job_.set_done(true);
    job_.set_error_code(code);
    job_.set_error_message(message);
    SetTimestamp(absl::Now(), job_.mutable_end_time());
  }
  NotifyObservers();
  return true;
}

bool Job::MarkSucceeded(const v1::Diagnostics& diagnostics, const std::string& model_ref,
                        const v1::DensityFit* density_fit) {
  {
    absl::MutexLock lock(&mu_);
    if (job_.done()) return false;
    if (density_fit != nullptr) {
      *job_.mutable_density_fit() = *density_fit;  // diagnostics do not apply: left unset
    } else {
      *job_.mutable_diagnostics() = diagnostics;
    }
    job_.set_model_ref(model_ref);
  }
  return Finish(v1::JOB_STATE_SUCCEEDED, 0, "");
}

bool Job::MarkFailed(int code, const std::string& message) {
  return Finish(v1::JOB_STATE_FAILED, code, message);
}

bool Job::MarkCancelled(const std::string& why) {
  return Finish(v1::JOB_STATE_CANCELLED, 1 /* CANCELLED */, why);
}

void Job::AddObserver(std::shared_ptr<JobObserverHandle> handle) {
  absl::MutexLock lock(&mu_);
  observers_.push_back(std::move(handle));
}

void Job::RemoveObserver(const std::shared_ptr<JobObserverHandle>& handle) {
  absl::MutexLock lock(&mu_);
  std::erase(observers_, handle);
}

void Job::NotifyObservers() {
  std::vector<std::shared_ptr<JobObserverHandle>> observers;
  {
    absl::MutexLock lock(&mu_);
    observers = observers_;
  }
  for (const auto& o : observers) o->Notify();
}

}  // namespace flowvi::server
