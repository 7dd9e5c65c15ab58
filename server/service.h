// FlowVIService: the flowvi.v1.FlowVI handlers on gRPC's callback API. Handlers are thin:
// convert the request, call the job manager or registry, convert the status. Streams
// (WatchJob, Sample) are reactors that write one message at a time and never queue a backlog.
//
// Every handler first asks the Authenticator who is calling and whether their role allows the
// call (reader: reads, sampling and densities; submitter: also SubmitFit and CancelJob of its
// own jobs; admin: also DeleteModel, SetAlias and any job); a submitter's ListJobs shows its own
// jobs only.
//
// Thread-safe; borrows the job manager, registry, metrics and authenticator, which must outlive
// it.
#ifndef FLOWVI_SERVER_SERVICE_H_
#define FLOWVI_SERVER_SERVICE_H_

#include "flowvi/v1/service.grpc.pb.h"
#include "server/auth.h"
#include "server/job_manager.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/registry.h"

namespace flowvi::server {

class FlowVIService final : public v1::FlowVI::CallbackService {
 public:
  FlowVIService(JobManager* jobs, ModelRegistry* registry, Metrics* metrics, Limits limits,
                const Authenticator* auth);

  grpc::ServerUnaryReactor* SubmitFit(grpc::CallbackServerContext* ctx,
                                      const v1::SubmitFitRequest* request,
                                      v1::Job* response) override;
  // Client streaming: the request, then more rows of its data set (SubmitStreamReactor).
  grpc::ServerReadReactor<v1::SubmitFitChunk>* SubmitFitStream(grpc::CallbackServerContext* ctx,
                                                               v1::Job* response) override;
  grpc::ServerWriteReactor<v1::WatchJobEvent>* WatchJob(
      grpc::CallbackServerContext* ctx, const v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx,
                                   const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const v1::CancelJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const v1::GetModelRequest* request,
                                     v1::Model* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* ctx,
                                        const v1::DeleteModelRequest* request,
                                        v1::DeleteModelResponse* response) override;
  grpc::ServerUnaryReactor* SetAlias(grpc::CallbackServerContext* ctx,
                                     const v1::SetAliasRequest* request,
                                     v1::ModelSummary* response) override;
  grpc::ServerWriteReactor<v1::SampleChunk>* Sample(grpc::CallbackServerContext* ctx,
                                                    const v1::SampleRequest* request) override;
  grpc::ServerUnaryReactor* LogDensity(grpc::CallbackServerContext* ctx,
                                       const v1::LogDensityRequest* request,
                                       v1::LogDensityResponse* response) override;
  grpc::ServerUnaryReactor* TargetLogDensity(grpc::CallbackServerContext* ctx,
                                             const v1::TargetLogDensityRequest* request,
                                             v1::TargetLogDensityResponse* response) override;
  grpc::ServerUnaryReactor* ListTargets(grpc::CallbackServerContext* ctx,
                                        const v1::ListTargetsRequest* request,
                                        v1::ListTargetsResponse* response) override;
  grpc::ServerUnaryReactor* ListLayers(grpc::CallbackServerContext* ctx,
                                       const v1::ListLayersRequest* request,
                                       v1::ListLayersResponse* response) override;

  // Draws per Sample chunk for a model of dimension `dim` (even, so that the draws do not
  // depend on how a stream is chunked; each chunk stays near 1 MiB).
  static int ChunkSize(int dim, int requested);

 private:
  JobManager* const jobs_;
  ModelRegistry* const registry_;
  Metrics* const metrics_;
  const Limits limits_;
  const Authenticator* const auth_;
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_SERVICE_H_
