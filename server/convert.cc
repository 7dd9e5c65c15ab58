#include "server/convert.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/diagnostics/psis.h"
#include "engine/flows/layer_catalog.h"
#include "engine/targets/catalog.h"

namespace flowvi::server {
namespace {

absl::StatusOr<ParamValue> ValueFromProto(const v1::ParamValue& in, const ParamSpec& spec,
                                          absl::string_view owner) {
  switch (in.kind_case()) {
    case v1::ParamValue::kBoolValue:
      return ParamValue(in.bool_value());
    case v1::ParamValue::kIntValue:
      return ParamValue(static_cast<int64_t>(in.int_value()));
    case v1::ParamValue::kRealValue:
      return ParamValue(in.real_value());
    case v1::ParamValue::kRealVector:
      return ParamValue(
          std::vector<double>(in.real_vector().values().begin(), in.real_vector().values().end()));
    case v1::ParamValue::kText: {
      absl::StatusOr<ParamValue> v = ParseParamValue(spec.type, in.text());
      if (!v.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(owner, " parameter '", spec.name, "': ", v.status().message()));
      }
      return v;
    }
    case v1::ParamValue::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(owner, " parameter '", spec.name, "' has no value"));
}

}  // namespace

absl::StatusOr<ParamMap> FromProto(const google::protobuf::Map<std::string, v1::ParamValue>& in,
                                   const std::vector<ParamSpec>& specs, absl::string_view owner) {
  ParamMap given;
  for (const auto& [name, value] : in) {
    const ParamSpec* spec = nullptr;
    for (const ParamSpec& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      // Let ResolveParams produce the message listing what the entry takes.
      given.emplace(name, ParamValue(false));
      continue;
    }
    absl::StatusOr<ParamValue> v = ValueFromProto(value, *spec, owner);
    if (!v.ok()) return v.status();
    given.emplace(name, *std::move(v));
  }
  return ResolveParams(specs, given, owner);
}

v1::ParamValue ToProto(const ParamValue& value) {
  v1::ParamValue out;
  if (const bool* b = std::get_if<bool>(&value)) out.set_bool_value(*b);
  if (const int64_t* i = std::get_if<int64_t>(&value)) out.set_int_value(*i);
  if (const double* d = std::get_if<double>(&value)) out.set_real_value(*d);
  if (const auto* v = std::get_if<std::vector<double>>(&value)) {
    out.mutable_real_vector()->mutable_values()->Add(v->begin(), v->end());
  }
  return out;
}

absl::StatusOr<FlowSpec> FromProto(const v1::FlowSpec& in) {
  const bool has_text = !in.text().empty();
  const bool has_layers = in.layers_size() > 0;
  if (has_text == has_layers) {
    return absl::InvalidArgumentError(
        "flow: give exactly one of 'text' (e.g. \"planar*32\" or \"meanfield\") and 'layers'");
  }
  if (has_text) return ParseFlowSpec(in.text());
  FlowSpec spec;
  for (int i = 0; i < in.layers_size(); ++i) {
    const v1::LayerGroup& g = in.layers(i);
    const LayerInfo* info = FindLayer(g.type());
    if (info == nullptr) {
      std::vector<std::string> known;
      for (const LayerInfo& l : LayerCatalog()) known.push_back(l.type);
      return absl::InvalidArgumentError(absl::StrCat("flow.layers[", i, "]: unknown layer type '",
                                                     g.type(),
                                                     "'; known: ", absl::StrJoin(known, ", ")));
    }
    absl::StatusOr<ParamMap> options = FromProto(
        g.options(), info->options, absl::StrCat("flow.layers[", i, "] '", g.type(), "'"));
    if (!options.ok()) return options.status();
    if (g.count() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("flow.layers[", i, "].count must be >= 1, got ", g.count()));
    }
    spec.groups.push_back({g.type(), *std::move(options), g.count() == 0 ? 1 : g.count()});
  }
  return ValidateFlowSpec(spec);
}

v1::FlowSpec ToProto(const FlowSpec& spec) {
  v1::FlowSpec out;
  out.set_text(spec.ToString());
  for (const LayerGroup& g : spec.groups) {
    v1::LayerGroup* pg = out.add_layers();
    pg->set_type(g.type);
    pg->set_count(g.count);
    for (const auto& [k, v] : g.options) (*pg->mutable_options())[k] = ToProto(v);
  }
  return out;
}

namespace {

absl::StatusOr<OptimizerType> OptimizerFromProto(v1::Optimizer optimizer) {
  switch (optimizer) {
    case v1::OPTIMIZER_UNSPECIFIED:
    case v1::OPTIMIZER_ADAM:
      return OptimizerType::kAdam;
    case v1::OPTIMIZER_RMSPROP:
      return OptimizerType::kRmsprop;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("options.optimizer: unknown value ", optimizer));
  }
}

absl::Status OnlyForData(absl::string_view field) {
  return absl::InvalidArgumentError(absl::StrCat(
      "options.", field, " applies only to data-set targets (target.data); remove it"));
}

absl::Status NotForData(absl::string_view field) {
  return absl::InvalidArgumentError(absl::StrCat(
      "options.", field, " does not apply to a data-set target (maximum likelihood); remove it"));
}

}  // namespace

absl::StatusOr<DensityFitOptions> DensityOptionsFromProto(const v1::FitOptions& in) {
  if (in.has_anneal_iterations()) return NotForData("anneal_iterations");
  if (in.has_diagnostic_draws()) return NotForData("diagnostic_draws");
  DensityFitOptions o;
  if (in.has_iterations()) o.iterations = in.iterations();
  if (in.has_batch_size()) o.batch_size = in.batch_size();
  if (in.has_learning_rate()) o.learning_rate = in.learning_rate();
  if (in.has_seed()) o.seed = in.seed();
  if (in.has_max_grad_norm()) o.max_grad_norm = in.max_grad_norm();
  if (in.has_validation_fraction()) o.validation_fraction = in.validation_fraction();
  if (in.has_patience()) o.patience = in.patience();
  if (in.has_eval_interval()) o.eval_interval = in.eval_interval();
  absl::StatusOr<OptimizerType> optimizer = OptimizerFromProto(in.optimizer());
  if (!optimizer.ok()) return optimizer.status();
  o.optimizer = *optimizer;
  if (absl::Status s = o.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("options: ", s.message()));
  }
  return o;
}

v1::FitOptions ToProto(const DensityFitOptions& o) {
  v1::FitOptions out;
  out.set_iterations(o.iterations);
  out.set_batch_size(o.batch_size);
  out.set_learning_rate(o.learning_rate);
  out.set_seed(o.seed);
  out.set_max_grad_norm(o.max_grad_norm);
  out.set_optimizer(o.optimizer == OptimizerType::kAdam ? v1::OPTIMIZER_ADAM
                                                        : v1::OPTIMIZER_RMSPROP);
  out.set_validation_fraction(o.validation_fraction);
  out.set_patience(o.patience);
  out.set_eval_interval(o.eval_interval);
  return out;
}

absl::StatusOr<FitOptions> FromProto(const v1::FitOptions& in) {
  if (in.has_validation_fraction()) return OnlyForData("validation_fraction");
  if (in.has_patience()) return OnlyForData("patience");
  if (in.has_eval_interval()) return OnlyForData("eval_interval");
  FitOptions o;
  if (in.has_iterations()) o.iterations = in.iterations();
  if (in.has_batch_size()) o.batch_size = in.batch_size();
  if (in.has_learning_rate()) o.learning_rate = in.learning_rate();
  if (in.has_seed()) o.seed = in.seed();
  if (in.has_anneal_iterations()) o.anneal_iterations = in.anneal_iterations();
  if (in.has_max_grad_norm()) o.max_grad_norm = in.max_grad_norm();
  switch (in.optimizer()) {
    case v1::OPTIMIZER_UNSPECIFIED:
    case v1::OPTIMIZER_ADAM:
      o.optimizer = OptimizerType::kAdam;
      break;
    case v1::OPTIMIZER_RMSPROP:
      o.optimizer = OptimizerType::kRmsprop;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("options.optimizer: unknown value ", in.optimizer()));
  }
  if (absl::Status s = o.Validate(); !s.ok()) return s;
  return o;
}

v1::FitOptions ToProto(const FitOptions& o, int64_t diagnostic_draws) {
  v1::FitOptions out;
  out.set_iterations(o.iterations);
  out.set_batch_size(o.batch_size);
  out.set_learning_rate(o.learning_rate);
  out.set_seed(o.seed);
  out.set_anneal_iterations(o.anneal_iterations);
  out.set_max_grad_norm(o.max_grad_norm);
  out.set_optimizer(o.optimizer == OptimizerType::kAdam ? v1::OPTIMIZER_ADAM
                                                        : v1::OPTIMIZER_RMSPROP);
  out.set_diagnostic_draws(diagnostic_draws);
  return out;
}

v1::Diagnostics ToProto(const Diagnostics& d, const std::vector<std::string>& coordinate_names) {
  v1::Diagnostics out;
  out.set_num_draws(d.num_draws);
  out.set_elbo(d.elbo);
  out.set_elbo_se(d.elbo_se);
  out.set_k_hat(d.k_hat);
  out.set_k_hat_reading(std::string(KHatReading(d.k_hat)));
  out.set_ess(d.ess);
  out.set_log_z(d.log_z);
  out.set_log_z_se(d.log_z_se);
  if (d.kl.has_value()) out.set_kl(*d.kl);
  for (const std::string& n : coordinate_names) out.add_coordinate_names(n);
  out.mutable_mean()->Add(d.mean.data(), d.mean.data() + d.mean.size());
  out.mutable_sd()->Add(d.sd.data(), d.sd.data() + d.sd.size());
  out.mutable_psis_mean()->Add(d.psis_mean.data(), d.psis_mean.data() + d.psis_mean.size());
  out.mutable_psis_sd()->Add(d.psis_sd.data(), d.psis_sd.data() + d.psis_sd.size());
  return out;
}

storage::v1::CheckpointRecord ToRecord(const FitCheckpoint& c, const std::string& job_id) {
  storage::v1::CheckpointRecord r;
  r.set_job_id(job_id);
  r.mutable_params()->Add(c.params.data(), c.params.data() + c.params.size());
  r.set_optimizer_step(c.optimizer.step);
  r.mutable_optimizer_m()->Add(c.optimizer.m.data(), c.optimizer.m.data() + c.optimizer.m.size());
  r.mutable_optimizer_v()->Add(c.optimizer.v.data(), c.optimizer.v.data() + c.optimizer.v.size());
  r.set_iteration(c.iteration);
  for (uint64_t w : c.rng) r.add_rng_state(w);
  r.set_skipped_steps(c.skipped_steps);
  r.set_consecutive_skips(c.consecutive_skips);
  r.mutable_trace()->Add(c.trace.begin(), c.trace.end());
  r.set_trace_sum(c.trace_sum);
  r.set_trace_count(c.trace_count);
  return r;
}

absl::StatusOr<FitCheckpoint> FromRecord(const storage::v1::CheckpointRecord& r) {
  if (r.rng_state_size() != 4 || r.optimizer_m_size() != r.params_size() ||
      r.optimizer_v_size() != r.params_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint of ", r.job_id(), " is inconsistent (sizes)"));
  }
  FitCheckpoint c;
  c.params = Eigen::Map<const Vector>(r.params().data(), r.params_size());
  c.optimizer.step = r.optimizer_step();
  c.optimizer.m = Eigen::Map<const Vector>(r.optimizer_m().data(), r.optimizer_m_size());
  c.optimizer.v = Eigen::Map<const Vector>(r.optimizer_v().data(), r.optimizer_v_size());
  c.iteration = r.iteration();
  for (int i = 0; i < 4; ++i) c.rng[i] = r.rng_state(i);
  c.skipped_steps = r.skipped_steps();
  c.consecutive_skips = r.consecutive_skips();
  c.trace.assign(r.trace().begin(), r.trace().end());
  c.trace_sum = r.trace_sum();
  c.trace_count = r.trace_count();
  return c;
}

v1::Job QueuedJob(const v1::SubmitFitRequest& request, v1::Target target, const FlowSpec& spec,
                  v1::FitOptions options, int dim, int64_t num_params) {
  v1::Job job;
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_model_name(request.model_name());
  job.set_priority(request.priority());
  job.set_client_request_id(request.client_request_id());
  *job.mutable_target() = std::move(target);
  *job.mutable_flow() = ToProto(spec);
  job.mutable_progress()->set_total_iterations(options.iterations());
  *job.mutable_options() = std::move(options);
  job.set_dim(dim);
  job.set_num_params(num_params);
  return job;
}

}  // namespace flowvi::server
