// Conversion between the wire types (flowvi.v1) and the engine's types. The only place where
// proto and engine meet, so every request field is checked here with a message naming it.
#ifndef FLOWVI_SERVER_CONVERT_H_
#define FLOWVI_SERVER_CONVERT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/core/params.h"
#include "engine/diagnostics/diagnostics.h"
#include "engine/fit/density_fit_options.h"
#include "engine/fit/fit_options.h"
#include "engine/fit/fitter.h"
#include "engine/flows/flow_spec.h"
#include "engine/targets/target.h"
#include "flowvi/storage/v1/records.pb.h"
#include "flowvi/v1/service.pb.h"
#include "flowvi/v1/types.pb.h"

namespace flowvi::server {

// Typed parameters of a catalog entry from the wire map; `text` values are parsed by the
// declared type. InvalidArgument naming `owner` and the parameter.
absl::StatusOr<ParamMap> FromProto(const google::protobuf::Map<std::string, v1::ParamValue>& in,
                                   const std::vector<ParamSpec>& specs, absl::string_view owner);
v1::ParamValue ToProto(const ParamValue& value);

// Exactly one of the spec's forms must be given. Validated against the layer catalog.
absl::StatusOr<FlowSpec> FromProto(const v1::FlowSpec& in);
// Both forms filled in (canonical text and structure).
v1::FlowSpec ToProto(const FlowSpec& spec);

// Unset fields keep the engine defaults; the result is validated. The density-only fields
// (validation_fraction, patience, eval_interval) are InvalidArgument here.
absl::StatusOr<FitOptions> FromProto(const v1::FitOptions& in);
// Every field set (resolved).
v1::FitOptions ToProto(const FitOptions& options, int64_t diagnostic_draws);

// Options of a data-set (maximum-likelihood) fit: unset fields keep DensityFitOptions' defaults;
// anneal_iterations and diagnostic_draws are InvalidArgument (they do not apply). Validated.
absl::StatusOr<DensityFitOptions> DensityOptionsFromProto(const v1::FitOptions& in);
// Every field that applies set (resolved).
v1::FitOptions ToProto(const DensityFitOptions& options);

v1::Diagnostics ToProto(const Diagnostics& d, const std::vector<std::string>& coordinate_names);

// The record of a job just admitted (state QUEUED): the request's name, priority and request id,
// the resolved target, flow and options, and the sizes; progress expects options.iterations().
v1::Job QueuedJob(const v1::SubmitFitRequest& request, v1::Target target, const FlowSpec& spec,
                  v1::FitOptions options, int dim, int64_t num_params);

// A fit checkpoint as stored on disk, and back (InvalidArgument for a malformed record).
storage::v1::CheckpointRecord ToRecord(const FitCheckpoint& checkpoint, const std::string& job_id);
absl::StatusOr<FitCheckpoint> FromRecord(const storage::v1::CheckpointRecord& record);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_CONVERT_H_
