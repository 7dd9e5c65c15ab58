// JobManager: admission, the bounded priority queue, and the pool of fit workers.
//
// SubmitFit validates a request completely (target, flow spec, options, limits) before anything
// is queued, so a bad request changes nothing. Workers take the highest-priority job (ties in
// submission order), train it on their own thread (never a gRPC thread), compute diagnostics,
// register the model and publish progress to the job's observers as they go.
//
// Thread-safe.
#ifndef FLOWVI_SERVER_JOB_MANAGER_H_
#define FLOWVI_SERVER_JOB_MANAGER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "flowvi/v1/service.pb.h"
#include "server/job.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/registry.h"

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
  Limits limits;
};

class JobManager {
 public:
  // Borrows registry and metrics, which must outlive it.
  JobManager(JobManagerOptions options, ModelRegistry* registry, Metrics* metrics);
  ~JobManager();  // Shutdown() if not done yet.
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  void Start();
  // Stops accepting jobs, stops running fits within one iteration (they end CANCELLED), joins
  // the workers. Queued jobs stay QUEUED.
  void Shutdown();

  absl::StatusOr<std::shared_ptr<Job>> Submit(const v1::SubmitFitRequest& request);
  absl::StatusOr<std::shared_ptr<Job>> Get(absl::string_view id) const;
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request) const;
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
  void WorkerLoop();
  void RunJob(const std::shared_ptr<Job>& job);
  void Finished(absl::string_view outcome);

  const JobManagerOptions options_;
  ModelRegistry* const registry_;
  Metrics* const metrics_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  std::set<std::shared_ptr<Job>, QueueOrder> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> request_ids_ ABSL_GUARDED_BY(mu_);  // client id -> job id
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_fits_{false};
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_JOB_MANAGER_H_
