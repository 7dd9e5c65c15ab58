// Job: one fit request and everything observable about it — its state, its progress history
// (for watchers that resume), the final diagnostics — plus the cancellation flag the training
// loop polls.
//
// Observers (WatchJob streams) are told when anything changes; they then read what they need.
// They are held through JobObserverHandle so an observer can detach itself at any time without
// racing a notification.
//
// Thread-safe.
#ifndef FLOWVI_SERVER_JOB_H_
#define FLOWVI_SERVER_JOB_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "flowvi/v1/service.pb.h"
#include "flowvi/v1/types.pb.h"

namespace flowvi::server {

// Observers are reference counted so that a notification in flight keeps its observer alive
// even if the stream ends meanwhile; no lock is held while the observer runs (a gRPC reactor
// may run its own callbacks inline).
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  // Called on the thread that changed the job, with no lock held. Must not block.
  virtual void OnJobChanged() = 0;
  virtual void AddRef() = 0;
  virtual void Release() = 0;
};

// Shared between a job and one observer. After Detach() no new notification starts.
class JobObserverHandle {
 public:
  explicit JobObserverHandle(JobObserver* observer) : observer_(observer) {}
  void Notify();
  void Detach();

 private:
  absl::Mutex mu_;
  JobObserver* observer_ ABSL_GUARDED_BY(mu_);
};

class Job {
 public:
  // `request` has been validated; `job` is the public record (QUEUED when new; as recovered
  // from disk otherwise, with its create_time kept).
  Job(v1::SubmitFitRequest request, v1::Job job, uint64_t sequence);

  const std::string& id() const { return id_; }
  // The principal that submitted it ("" without authentication).
  const std::string& submitted_by() const { return submitted_by_; }
  const v1::SubmitFitRequest& request() const { return request_; }
  uint64_t sequence() const { return sequence_; }
  int32_t priority() const { return request_.priority(); }
  absl::Time create_time() const { return create_time_; }

  v1::Job Snapshot() const;
  v1::JobState state() const;
  bool done() const;

  // Progress recorded after `iteration`, oldest first (at most kMaxHistory entries are kept;
  // older ones are thinned, never the newest).
  std::vector<v1::Progress> ProgressAfter(int64_t iteration) const;
  // The latest progress, and whether there is any after `iteration`.
  bool LatestProgressAfter(int64_t iteration, v1::Progress* out) const;

  // Transitions. Each returns false (and changes nothing) if the job already ended.
  bool MarkRunning();
  // Back to QUEUED after a restart interrupted it (it resumes from its checkpoint).
  bool MarkRequeued();
  void PublishProgress(const v1::Progress& progress);
  // A data-set fit gives `density_fit` (its diagnostics stay unset); others the diagnostics.
  bool MarkSucceeded(const v1::Diagnostics& diagnostics, const std::string& model_ref,
                     const v1::DensityFit* density_fit = nullptr);
  bool MarkFailed(int code, const std::string& message);
  bool MarkCancelled(const std::string& why);

  // The server is draining: watchers end their streams with a "stopping" event.
  void MarkServerStopping();
  bool server_stopping() const { return server_stopping_.load(std::memory_order_relaxed); }

  // Held while a snapshot of this job is written to disk, so the last write is the newest.
  absl::Mutex& persist_mutex() { return persist_mu_; }

  void RequestCancel() { cancel_requested_.store(true, std::memory_order_relaxed); }
  bool cancel_requested() const { return cancel_requested_.load(std::memory_order_relaxed); }

  void AddObserver(std::shared_ptr<JobObserverHandle> handle);
  void RemoveObserver(const std::shared_ptr<JobObserverHandle>& handle);

  static constexpr size_t kMaxHistory = 4096;

 private:
  bool Finish(v1::JobState state, int code, const std::string& message);
  void NotifyObservers();

  const std::string id_;
  const std::string submitted_by_;
  const v1::SubmitFitRequest request_;
  const uint64_t sequence_;
  const absl::Time create_time_;
  std::atomic<bool> cancel_requested_{false};
  std::atomic<bool> server_stopping_{false};
  absl::Mutex persist_mu_;

  mutable absl::Mutex mu_;
  v1::Job job_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Progress> history_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<JobObserverHandle>> observers_ ABSL_GUARDED_BY(mu_);
};

// google.protobuf.Timestamp from absl::Time.
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_JOB_H_
