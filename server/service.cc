#include "server/service.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/flows/layer_catalog.h"
#include "engine/targets/catalog.h"
#include "server/convert.h"
#include "server/request_limits.h"
#include "server/status_util.h"
#include "server/target_builder.h"

namespace flowvi::server {
namespace {

// log of a density at the columns of a D x N batch.
using DensityFn = std::function<absl::Status(const Matrix&, RowVector*)>;

// A density over a program's unconstrained space, at points in the space the program declares:
// log p_x(x) = log p_u(u(x)) − log|det ∂x/∂u|. InvalidArgument for a point outside the bounds.
absl::Status InDeclaredSpace(const lang::CompiledModel& program, const Matrix& points,
                             const DensityFn& density_u, RowVector* out) {
  Matrix u;
  if (absl::Status s = program.UnconstrainBatch(points, &u); !s.ok()) return s;
  if (absl::Status s = density_u(u, out); !s.ok()) return s;
  RowVector log_jacobian;
  program.LogJacobianBatch(u, &log_jacobian);
  *out -= log_jacobian;
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

template <typename T>
class FailedStream : public grpc::ServerWriteReactor<T> {
 public:
  explicit FailedStream(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

v1::ParamInfo ToParamInfo(const ParamSpec& spec) {
  v1::ParamInfo p;
  p.set_name(spec.name);
  p.set_type(std::string(ParamTypeName(spec.type)));
  p.set_default_value(FormatParamValue(spec.default_value));
  p.set_description(spec.description);
  return p;
}

// WatchJob: snapshot, then the recorded progress after from_iteration, then live progress
// (only the newest when the client is slower than the fit), then the final job. One write is
// in flight at a time; job changes only wake the reactor up.
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchJobEvent>, public JobObserver {
 public:
  WatchReactor(std::shared_ptr<Job> job, int64_t from_iteration)
      : job_(std::move(job)),
        last_iteration_(from_iteration),
        handle_(std::make_shared<JobObserverHandle>(this)) {
    job_->AddObserver(handle_);
    Pump();
  }

  void OnJobChanged() override { Pump(); }
  void AddRef() override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Release() override {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) broken_ = true;
    }
    Pump();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    Pump();
  }

  void OnDone() override {
    job_->RemoveObserver(handle_);
    handle_->Detach();
    Release();  // gRPC's reference
  }

 private:
  // Decides the next message under the lock; calls into gRPC without it.
  void Pump() {
    enum { kNothing, kWrite, kFinishOk, kFinishCancelled, kFinishStopping } action = kNothing;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_) return;
      if (broken_) {
        action = kFinishCancelled;
      } else if (!snapshot_sent_) {
        msg_.Clear();
        *msg_.mutable_snapshot() = job_->Snapshot();
        std::vector<v1::Progress> history = job_->ProgressAfter(last_iteration_);
        replay_.assign(std::make_move_iterator(history.begin()),
                       std::make_move_iterator(history.end()));
        snapshot_sent_ = true;
        action = kWrite;
      } else if (!replay_.empty()) {
        msg_.Clear();
        *msg_.mutable_progress() = std::move(replay_.front());
        replay_.pop_front();
        last_iteration_ = msg_.progress().iteration();
        action = kWrite;
      } else if (v1::Progress p; job_->LatestProgressAfter(last_iteration_, &p)) {
        msg_.Clear();
        last_iteration_ = p.iteration();
        *msg_.mutable_progress() = std::move(p);
        action = kWrite;
      } else if (final_sent_) {
        action = kFinishOk;
      } else if (stopping_sent_) {
        action = kFinishStopping;
      } else if (job_->server_stopping() && !job_->done()) {
        msg_.Clear();
        msg_.mutable_stopping()->set_message(
            "the server is shutting down; the job resumes from its last checkpoint when it "
            "restarts");
        msg_.mutable_stopping()->set_last_iteration(last_iteration_);
        stopping_sent_ = true;
        action = kWrite;
      } else if (job_->done()) {
        v1::Job final_job = job_->Snapshot();
        // Progress published just before the end would otherwise be skipped.
        if (v1::Progress last; job_->LatestProgressAfter(last_iteration_, &last)) {
          msg_.Clear();
          last_iteration_ = last.iteration();
          *msg_.mutable_progress() = std::move(last);
        } else {
          msg_.Clear();
          *msg_.mutable_final() = std::move(final_job);
          final_sent_ = true;
        }
        action = kWrite;
      }
      if (action == kWrite) writing_ = true;
      if (action == kFinishOk || action == kFinishCancelled || action == kFinishStopping) {
        finished_ = true;
      }
    }
    switch (action) {
      case kWrite:
        StartWrite(&msg_);
        break;
      case kFinishOk:
        Finish(grpc::Status::OK);
        break;
      case kFinishCancelled:
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
        break;
      case kFinishStopping:
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the server is shutting down; watch again after it restarts"));
        break;
      case kNothing:
        break;
    }
  }

  const std::shared_ptr<Job> job_;
  std::atomic<int> refs_{1};
  absl::Mutex mu_;
  int64_t last_iteration_ ABSL_GUARDED_BY(mu_);
  bool snapshot_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool final_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::Progress> replay_ ABSL_GUARDED_BY(mu_);
  v1::WatchJobEvent msg_;  // owned by the write in flight
  std::shared_ptr<JobObserverHandle> handle_;
};

// Sample: draws chunk after chunk from one Rng stream, so the draws depend only on the model,
// n and the seed. Each chunk is computed when the previous write completes: a slow client
// slows the stream, it does not pile up memory.
class SampleReactor final : public grpc::ServerWriteReactor<v1::SampleChunk> {
 public:
  SampleReactor(std::shared_ptr<const ModelVersion> model, int64_t n, uint64_t seed, int chunk,
                Metrics* metrics)
      : model_(std::move(model)), n_(n), chunk_(chunk), rng_(seed), metrics_(metrics) {
    NewWorkspace(static_cast<int>(std::min<int64_t>(chunk, n)));
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    Next();
  }

  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (cancelled_.load()) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "sampling cancelled"));
      return;
    }
    if (offset_ >= n_) {
      Finish(grpc::Status::OK);
      return;
    }
    const int m = static_cast<int>(std::min<int64_t>(chunk_, n_ - offset_));
    if (m != batch_size_) NewWorkspace(m);  // the last, short chunk
    const int d = model_->flow->dim();
    msg_.set_dim(d);
    msg_.set_offset(offset_);
    const Matrix* draws;
    const RowVector* log_q;
    if (model_->density != nullptr) {
      // Already in the data's units.
      if (absl::Status s = model_->density->Sample(rng_, density_ws_.get()); !s.ok()) {
        Finish(ToGrpcStatus(s));
        return;
      }
      draws = &density_ws_->points();
      log_q = &density_ws_->log_q();
    } else {
      model_->flow->Sample(rng_, ws_.get());
      draws = &ws_->z();
      log_q = &ws_->log_q();
    }
    if (model_->program != nullptr) {
      // Into the program's declared space, with the density of the mapped draws.
      model_->program->ConstrainBatch(ws_->z(), &user_);
      model_->program->LogJacobianBatch(ws_->z(), &user_log_q_);
      user_log_q_ = ws_->log_q() - user_log_q_;
      draws = &user_;
      log_q = &user_log_q_;
    }
    // The D x m column-major batch is exactly the row-major draws the message carries.
    msg_.mutable_values()->Resize(d * m, 0.0);
    std::copy_n(draws->data(), d * m, msg_.mutable_values()->mutable_data());
    msg_.mutable_log_q()->Resize(m, 0.0);
    std::copy_n(log_q->data(), m, msg_.mutable_log_q()->mutable_data());
    offset_ += m;
    metrics_->samples_drawn().Increment(m);
    StartWrite(&msg_);
  }

  void NewWorkspace(int m) {
    batch_size_ = m;
    if (model_->density != nullptr) {
      density_ws_ = model_->density->NewWorkspace(m);
    } else {
      ws_ = model_->flow->NewWorkspace(m);
    }
  }

  std::shared_ptr<const ModelVersion> model_;
  const int64_t n_;
  const int chunk_;
  int64_t offset_ = 0;
  Rng rng_;
  int batch_size_ = 0;
  std::unique_ptr<FlowWorkspace> ws_;             // variational models
  std::unique_ptr<DensityWorkspace> density_ws_;  // density models
  Matrix user_;           // program targets: the draws in the declared space
  RowVector user_log_q_;  // and their log-density there
  Metrics* metrics_;
  std::atomic<bool> cancelled_{false};
  v1::SampleChunk msg_;
};

// SubmitFitStream: collects the request and its rows chunk by chunk (bounded by
// --max_data_values as they arrive), then submits it as SubmitFit would.
class SubmitStreamReactor final : public grpc::ServerReadReactor<v1::SubmitFitChunk> {
 public:
  SubmitStreamReactor(JobManager* jobs, const Limits& limits, std::string principal,
                      v1::Job* response)
      : jobs_(jobs), limits_(limits), principal_(std::move(principal)), response_(response) {
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client has sent everything, or a chunk did not parse
      if (!have_request_) {
        Fail(absl::InvalidArgumentError(
            "SubmitFitStream: the stream ended without a first chunk (none was sent, or it "
            "does not parse as the request message of flowvi.v1.FlowVI/SubmitFitStream)"));
        return;
      }
      const int64_t got = request_.target().data().values_size();
      if (got != expected_) {
        Fail(absl::InvalidArgumentError(
            absl::StrCat("SubmitFitStream: the first chunk's num_values is ", expected_,
                         " but the stream "
                         "delivered ",
                         got,
                         " values (cut short, or a chunk did not parse); nothing was "
                         "submitted")));
        return;
      }
      absl::StatusOr<v1::Job> job = jobs_->Submit(request_, principal_);
      if (job.ok()) *response_ = *std::move(job);
      Finish(ToGrpcStatus(job.status()));
      return;
    }
    if (!have_request_) {
      if (!chunk_.has_request() || !chunk_.request().target().has_data()) {
        Fail(absl::InvalidArgumentError(
            "SubmitFitStream: the first chunk must carry the request, with a data-set target "
            "(target.data); use SubmitFit for other targets"));
        return;
      }
      request_ = std::move(*chunk_.mutable_request());
      have_request_ = true;
      expected_ = chunk_.num_values();
      if (expected_ > limits_.max_data_values) {
        Fail(DataOverLimit(expected_, limits_.max_data_values));
        return;
      }
    } else if (chunk_.has_request() || chunk_.num_values() != 0) {
      Fail(absl::InvalidArgumentError(
          "SubmitFitStream: only the first chunk may carry the request and num_values; later "
          "ones carry values"));
      return;
    }
    google::protobuf::RepeatedField<double>* values =
        request_.mutable_target()->mutable_data()->mutable_values();
    const int64_t total = values->size() + chunk_.values_size();
    if (total > limits_.max_data_values) {
      Fail(DataOverLimit(total, limits_.max_data_values));
      return;
    }
    values->Add(chunk_.values().begin(), chunk_.values().end());
    chunk_.Clear();
    StartRead(&chunk_);
  }

  void OnDone() override { delete this; }

 private:
  void Fail(const absl::Status& s) { Finish(ToGrpcStatus(s)); }

  JobManager* const jobs_;
  const Limits& limits_;
  const std::string principal_;
  v1::Job* const response_;
  v1::SubmitFitChunk chunk_;
  v1::SubmitFitRequest request_;
  bool have_request_ = false;
  int64_t expected_ = 0;  // the first chunk's num_values
};

template <typename T>
class FailedReadStream : public grpc::ServerReadReactor<T> {
 public:
  explicit FailedReadStream(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerReadReactor<v1::SubmitFitChunk>* FlowVIService::SubmitFitStream(
    grpc::CallbackServerContext* ctx, v1::Job* response) {
  absl::StatusOr<Principal> who =
      auth_->Authorize(ctx->client_metadata(), Role::kSubmitter, "SubmitFitStream");
  if (!who.ok()) return new FailedReadStream<v1::SubmitFitChunk>(who.status());
  return new SubmitStreamReactor(jobs_, limits_, who->name, response);
}

FlowVIService::FlowVIService(JobManager* jobs, ModelRegistry* registry, Metrics* metrics,
                             Limits limits, const Authenticator* auth)
    : jobs_(jobs), registry_(registry), metrics_(metrics), limits_(limits), auth_(auth) {}

int FlowVIService::ChunkSize(int dim, int requested) {
  int chunk = std::clamp((1 << 20) / (8 * (dim + 1)), 2, 65536);
  if (requested > 0) chunk = std::min(chunk, requested);
  return chunk + (chunk % 2);
}

grpc::ServerUnaryReactor* FlowVIService::SubmitFit(grpc::CallbackServerContext* ctx,
                                                   const v1::SubmitFitRequest* request,
                                                   v1::Job* response) {
  absl::StatusOr<Principal> who =
      auth_->Authorize(ctx->client_metadata(), Role::kSubmitter, "SubmitFit");
  if (!who.ok()) return Done(ctx, who.status());
  absl::StatusOr<v1::Job> job = jobs_->Submit(*request, who->name);
  if (job.ok()) *response = *std::move(job);
  return Done(ctx, job.status());
}

grpc::ServerWriteReactor<v1::WatchJobEvent>* FlowVIService::WatchJob(
    grpc::CallbackServerContext* ctx, const v1::WatchJobRequest* request) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kReader, "WatchJob");
      !who.ok()) {
    return new FailedStream<v1::WatchJobEvent>(who.status());
  }
  if (request->from_iteration() < 0) {
    return new FailedStream<v1::WatchJobEvent>(
        absl::InvalidArgumentError("from_iteration must be >= 0"));
  }
  absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Get(request->job_id());
  if (!job.ok()) return new FailedStream<v1::WatchJobEvent>(job.status());
  return new WatchReactor(*std::move(job), request->from_iteration());
}

grpc::ServerUnaryReactor* FlowVIService::GetJob(grpc::CallbackServerContext* ctx,
                                                const v1::GetJobRequest* request,
                                                v1::Job* response) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kReader, "GetJob");
      !who.ok()) {
    return Done(ctx, who.status());
  }
  absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Get(request->job_id());
  if (job.ok()) *response = (*job)->Snapshot();
  return Done(ctx, job.status());
}

grpc::ServerUnaryReactor* FlowVIService::ListJobs(grpc::CallbackServerContext* ctx,
                                                  const v1::ListJobsRequest* request,
                                                  v1::ListJobsResponse* response) {
  absl::StatusOr<Principal> who =
      auth_->Authorize(ctx->client_metadata(), Role::kReader, "ListJobs");
  if (!who.ok()) return Done(ctx, who.status());
  // Readers watch everything (dashboards); a submitter sees the work it submitted.
  std::optional<absl::string_view> only;
  if (who->role == Role::kSubmitter) only = who->name;
  absl::StatusOr<v1::ListJobsResponse> list = jobs_->List(*request, only);
  if (list.ok()) *response = *std::move(list);
  return Done(ctx, list.status());
}

grpc::ServerUnaryReactor* FlowVIService::CancelJob(grpc::CallbackServerContext* ctx,
                                                   const v1::CancelJobRequest* request,
                                                   v1::Job* response) {
  absl::StatusOr<Principal> who =
      auth_->Authorize(ctx->client_metadata(), Role::kSubmitter, "CancelJob");
  if (!who.ok()) return Done(ctx, who.status());
  if (who->role == Role::kSubmitter) {
    absl::StatusOr<std::shared_ptr<Job>> target = jobs_->Get(request->job_id());
    if (!target.ok()) return Done(ctx, target.status());
    if ((*target)->submitted_by() != who->name) {
      return Done(ctx,
                  absl::PermissionDeniedError(absl::StrCat(
                      "'", who->name, "' is a submitter and may cancel only its own jobs; ",
                      request->job_id(), " was submitted by '", (*target)->submitted_by(), "'")));
    }
  }
  absl::StatusOr<v1::Job> job = jobs_->Cancel(request->job_id());
  if (job.ok()) *response = *std::move(job);
  return Done(ctx, job.status());
}

grpc::ServerUnaryReactor* FlowVIService::ListModels(grpc::CallbackServerContext* ctx,
                                                    const v1::ListModelsRequest* /*request*/,
                                                    v1::ListModelsResponse* response) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kReader, "ListModels");
      !who.ok()) {
    return Done(ctx, who.status());
  }
  for (v1::ModelSummary& s : registry_->List()) *response->add_models() = std::move(s);
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* FlowVIService::GetModel(grpc::CallbackServerContext* ctx,
                                                  const v1::GetModelRequest* request,
                                                  v1::Model* response) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kReader, "GetModel");
      !who.ok()) {
    return Done(ctx, who.status());
  }
  absl::StatusOr<v1::Model> model = registry_->Get(request->model(), request->include_parameters());
  if (model.ok()) *response = *std::move(model);
  return Done(ctx, model.status());
}

grpc::ServerUnaryReactor* FlowVIService::DeleteModel(grpc::CallbackServerContext* ctx,
                                                     const v1::DeleteModelRequest* request,
                                                     v1::DeleteModelResponse* response) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kAdmin, "DeleteModel");
      !who.ok()) {
    return Done(ctx, who.status());
  }
  absl::StatusOr<std::vector<int64_t>> deleted = registry_->Delete(request->model());
  if (deleted.ok()) {
    response->mutable_deleted_versions()->Add(deleted->begin(), deleted->end());
    metrics_->models().Set(static_cast<double>(registry_->num_versions()));
  }
  return Done(ctx, deleted.status());
}

grpc::ServerUnaryReactor* FlowVIService::SetAlias(grpc::CallbackServerContext* ctx,
                                                  const v1::SetAliasRequest* request,
                                                  v1::ModelSummary* response) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kAdmin, "SetAlias");
      !who.ok()) {
    return Done(ctx, who.status());
  }
  absl::StatusOr<v1::ModelSummary> s =
      registry_->SetAlias(request->name(), request->alias(), request->version());
  if (s.ok()) *response = *std::move(s);
  return Done(ctx, s.status());
}

grpc::ServerWriteReactor<v1::SampleChunk>* FlowVIService::Sample(grpc::CallbackServerContext* ctx,
                                                                 const v1::SampleRequest* request) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kReader, "Sample");
      !who.ok()) {
    return new FailedStream<v1::SampleChunk>(who.status());
  }
  if (request->n() < 1) {
    return new FailedStream<v1::SampleChunk>(
        absl::InvalidArgumentError(absl::StrCat("n must be at least 1, got ", request->n())));
  }
  if (request->n() > limits_.max_samples) {
    return new FailedStream<v1::SampleChunk>(
        OverLimit("n", request->n(), limits_.max_samples, "--max_samples"));
  }
  if (request->chunk_size() < 0) {
    return new FailedStream<v1::SampleChunk>(
        absl::InvalidArgumentError("chunk_size must be >= 0 (0: the server's choice)"));
  }
  absl::StatusOr<std::shared_ptr<const ModelVersion>> model = registry_->Resolve(request->model());
  if (!model.ok()) return new FailedStream<v1::SampleChunk>(model.status());
  const int chunk = ChunkSize((*model)->flow->dim(), request->chunk_size());
  return new SampleReactor(*std::move(model), request->n(), request->seed(), chunk, metrics_);
}

grpc::ServerUnaryReactor* FlowVIService::LogDensity(grpc::CallbackServerContext* ctx,
                                                    const v1::LogDensityRequest* request,
                                                    v1::LogDensityResponse* response) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kReader, "LogDensity");
      !who.ok()) {
    return Done(ctx, who.status());
  }
  absl::StatusOr<std::shared_ptr<const ModelVersion>> model = registry_->Resolve(request->model());
  if (!model.ok()) return Done(ctx, model.status());
  const Flow& flow = *(*model)->flow;
  const int d = flow.dim();
  if (request->dim() != d) {
    return Done(ctx, absl::InvalidArgumentError(absl::StrCat(
                         "dim is ", request->dim(), " but model ", (*model)->model.name(), "/",
                         (*model)->model.version(), " has dimension ", d)));
  }
  const int64_t total = request->points_size();
  if (total % d != 0) {
    return Done(ctx, absl::InvalidArgumentError(
                         absl::StrCat("points has ", total, " values, not a multiple of dim ", d)));
  }
  const int64_t n = total / d;
  if (n > limits_.max_points) {
    return Done(ctx, OverLimit("the number of points", n, limits_.max_points, "--max_points"));
  }
  const Matrix points = Eigen::Map<const Matrix>(request->points().data(), d, n);
  RowVector log_q;
  absl::Status s;
  if ((*model)->density != nullptr) {
    // Points in the data's units; a non-finite one is InvalidArgument naming it.
    absl::StatusOr<RowVector> lq = (*model)->density->LogDensity(points);
    s = lq.status();
    if (lq.ok()) log_q = *std::move(lq);
  } else {
    Matrix a, b;
    const DensityFn flow_density = [&](const Matrix& x, RowVector* out) {
      return flow.LogDensity(x, out, &a, &b);
    };
    const lang::CompiledModel* program = (*model)->program.get();
    s = program != nullptr ? InDeclaredSpace(*program, points, flow_density, &log_q)
                           : flow_density(points, &log_q);
  }
  if (!s.ok()) return Done(ctx, s);
  response->mutable_log_q()->Add(log_q.data(), log_q.data() + n);
  response->set_model_ref(absl::StrCat((*model)->model.name(), "/", (*model)->model.version()));
  metrics_->density_points().Increment(static_cast<double>(n));
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* FlowVIService::TargetLogDensity(
    grpc::CallbackServerContext* ctx, const v1::TargetLogDensityRequest* request,
    v1::TargetLogDensityResponse* response) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kReader, "TargetLogDensity");
      !who.ok()) {
    return Done(ctx, who.status());
  }
  if (absl::Status s = CheckTargetSize(request->target(), limits_); !s.ok()) {
    return Done(ctx, s);
  }
  absl::StatusOr<BuiltTarget> built = BuildTarget(request->target(), limits_.model);
  if (!built.ok()) return Done(ctx, built.status());
  if (built->target == nullptr) {
    return Done(ctx, absl::InvalidArgumentError(
                         "target: a data set has no density to evaluate; fit a flow to it and "
                         "call LogDensity on the model"));
  }
  Target* const target = built->target.get();
  const int d = target->dim();
  if (request->dim() != d) {
    return Done(ctx, absl::InvalidArgumentError(absl::StrCat("dim is ", request->dim(),
                                                             " but the target has dimension ", d)));
  }
  const int64_t total = request->points_size();
  if (total % d != 0) {
    return Done(ctx, absl::InvalidArgumentError(
                         absl::StrCat("points has ", total, " values, not a multiple of dim ", d)));
  }
  if (total / d > limits_.max_points) {
    return Done(ctx,
                OverLimit("the number of points", total / d, limits_.max_points, "--max_points"));
  }
  const int64_t n = total / d;
  const Matrix points = Eigen::Map<const Matrix>(request->points().data(), d, n);
  for (int64_t j = 0; j < n; ++j) {
    if (!points.col(j).allFinite()) {
      return Done(ctx, absl::InvalidArgumentError(absl::StrCat("point ", j, " is not finite")));
    }
  }
  RowVector log_p(n);
  const DensityFn target_density = [target](const Matrix& x, RowVector* out) {
    out->resize(x.cols());
    target->LogDensity(x, out, nullptr);
    return absl::OkStatus();
  };
  // A program's points are in its declared space (the target lives in the unconstrained one).
  if (absl::Status s = built->program != nullptr
                           ? InDeclaredSpace(*built->program, points, target_density, &log_p)
                           : target_density(points, &log_p);
      !s.ok()) {
    return Done(ctx, s);
  }
  response->mutable_log_p()->Add(log_p.data(), log_p.data() + n);
  metrics_->density_points().Increment(static_cast<double>(n));
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* FlowVIService::ListTargets(grpc::CallbackServerContext* ctx,
                                                     const v1::ListTargetsRequest* /*request*/,
                                                     v1::ListTargetsResponse* response) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kReader, "ListTargets");
      !who.ok()) {
    return Done(ctx, who.status());
  }
  for (const TargetInfo& info : TargetCatalog()) {
    v1::TargetInfo* t = response->add_targets();
    t->set_name(info.name);
    t->set_description(info.description);
    for (const ParamSpec& p : info.params) *t->add_params() = ToParamInfo(p);
    absl::StatusOr<std::unique_ptr<Target>> target = MakeTarget(info.name, {});
    if (target.ok()) {
      t->set_default_dim((*target)->dim());
      if (std::optional<double> lz = (*target)->log_normalizer(); lz.has_value()) t->set_log_z(*lz);
      t->set_proper((*target)->proper());
      for (const std::string& n : (*target)->coordinate_names()) t->add_coordinate_names(n);
    }
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* FlowVIService::ListLayers(grpc::CallbackServerContext* ctx,
                                                    const v1::ListLayersRequest* /*request*/,
                                                    v1::ListLayersResponse* response) {
  if (absl::StatusOr<Principal> who =
          auth_->Authorize(ctx->client_metadata(), Role::kReader, "ListLayers");
      !who.ok()) {
    return Done(ctx, who.status());
  }
  for (const LayerInfo& info : LayerCatalog()) {
    v1::LayerInfo* l = response->add_layers();
    l->set_type(info.type);
    l->set_description(info.description);
    for (const ParamSpec& p : info.options) *l->add_options() = ToParamInfo(p);
  }
  return Done(ctx, absl::OkStatus());
}

}  // namespace flowvi::server
