// JobManager: admission, the bounded priority queue, the pool of fit workers, and (with a
// DataStore) the durability of jobs.
//
// SubmitFit validates a request completely (target, flow spec, options, limits) before anything
// is queued, so a bad request changes nothing; with a store, the job record is on disk before
// SubmitFit returns. Workers take the highest-priority job (ties in submission order), train it
// on their own thread (never a gRPC thread), checkpoint it every checkpoint_interval, compute
// diagnostics, register the model and publish progress to the job's observers as they go.
//
// Recover() rebuilds the jobs from a data directory before Start(): finished jobs are kept,
// queued ones are queued again in their order, and interrupted ones resume from their last
// checkpoint — or are marked SUCCEEDED if their model had already been registered.
//
// Thread-safe.
#ifndef FLOWVI_SERVER_JOB_MANAGER_H_
#define FLOWVI_SERVER_JOB_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "flowvi/v1/service.pb.h"
#include "server/data_store.h"
#include "server/job.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/target_builder.h"

namespace flowvi::server {

struct JobManagerOptions {
  // Fit workers (threads); each trains one job at a time.
  int workers = 2;
  // Jobs that may wait in the queue; one more is RESOURCE_EXHAUSTED.
  int max_queued = 64;
  // Diagnostic draws when a request does not say.
  int64_t default_diagnostic_draws = 20000;
  // Progress is published to watchers at most this often (and at the last iteration).
  absl::Duration progress_interval = absl::Milliseconds(100);
  // Running fits write a checkpoint this often (with a store).
  absl::Duration checkpoint_interval = absl::Seconds(5);
  // Finished jobs kept (oldest dropped first, with their records); models stay until deleted.
  int max_finished_jobs = 1000;
  // Where jobs are kept; null keeps them in memory only. Must outlive the manager.
  DataStore* store = nullptr;
  Limits limits;
};

class JobManager {
 public:
  // Borrows registry and metrics, which must outlive it.
  JobManager(JobManagerOptions options, ModelRegistry* registry, Metrics* metrics);
  ~JobManager();  // Shutdown() if not done yet.
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Rebuilds jobs from a data directory's contents; call before Start(), after the registry's
  // own Restore(). Problems (damaged records) are appended to *problems. New jobs never get an
  // id found in the directory (damaged records and checkpoints, models' job ids included), and
  // checkpoints of jobs that have ended are removed.
  void Recover(const DataStore::Contents& contents, std::vector<std::string>* problems);
  void Start();
  // Stops accepting jobs and stops running fits within one iteration, then joins the workers.
  // With a store, an interrupted fit writes a final checkpoint and stays RUNNING on disk (it
  // resumes on restart) and its watchers get a "stopping" event; without one it ends
  // CANCELLED. Queued jobs stay QUEUED.
  void Shutdown();

  // Returns the job as it was queued (QUEUED, even if a worker starts it at once), or, for a
  // retried client_request_id, the original job as it stands now. `submitted_by` is the
  // principal, recorded on the job; client_request_ids are scoped per principal.
  absl::StatusOr<v1::Job> Submit(const v1::SubmitFitRequest& request,
                                 absl::string_view submitted_by = "");
  absl::StatusOr<std::shared_ptr<Job>> Get(absl::string_view id) const;
  // With `only_submitted_by`, only the jobs that principal submitted.
  absl::StatusOr<v1::ListJobsResponse> List(
      const v1::ListJobsRequest& request,
      std::optional<absl::string_view> only_submitted_by = std::nullopt) const;
  // Ends a queued job at once; asks a running one to stop and waits (briefly) until it has.
  // FAILED_PRECONDITION if the job already ended.
  absl::StatusOr<v1::Job> Cancel(absl::string_view id);

 private:
  struct QueueOrder {
    bool operator()(const std::shared_ptr<Job>& a, const std::shared_ptr<Job>& b) const {
      if (a->priority() != b->priority()) return a->priority() > b->priority();
      return a->sequence() < b->sequence();
    }
  };

  // Fully validates a request; returns the canonical job record to queue.
  absl::StatusOr<v1::Job> Admit(const v1::SubmitFitRequest& request) const;
  // Admit for a data-set target (density_jobs.cc): `built` holds the checked points,
  // `target` the canonical (value-less) target to record.
  absl::StatusOr<v1::Job> AdmitDensity(const v1::SubmitFitRequest& request,
                                       const BuiltTarget& built, v1::Target target) const;
  // RunJob for a data-set target (density_jobs.cc): a maximum-likelihood fit, without
  // checkpoints (an interrupted one starts over after a restart: it is deterministic).
  void RunDensityJob(const std::shared_ptr<Job>& job, const v1::Job& record);
  // Writes the job's current snapshot (no-op without a store).
  absl::Status Persist(Job& job);
  void WorkerLoop();
  void RunJob(const std::shared_ptr<Job>& job);
  // Records the end of a job: metrics, persistence, retention.
  void Finished(const std::shared_ptr<Job>& job, absl::string_view outcome);
  void EnforceRetention();

  const JobManagerOptions options_;
  ModelRegistry* const registry_;
  Metrics* const metrics_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  std::set<std::shared_ptr<Job>, QueueOrder> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  // (submitted_by, client_request_id) -> job id
  std::map<std::pair<std::string, std::string>, std::string> request_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_fits_{false};
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_JOB_MANAGER_H_
