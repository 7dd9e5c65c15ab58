// targets, layers, health.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/output.h"

namespace flowvi::client {
namespace {

std::string ParamsText(const google::protobuf::RepeatedPtrField<v1::ParamInfo>& params) {
  std::vector<std::string> parts;
  for (const v1::ParamInfo& p : params) {
    parts.push_back(absl::StrCat(p.name(), "=", p.default_value()));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

std::string ParamsDetail(const google::protobuf::RepeatedPtrField<v1::ParamInfo>& params) {
  if (params.empty()) return "";
  TextTable t({"PARAMETER", "TYPE", "DEFAULT", "DESCRIPTION"}, 2);
  for (const v1::ParamInfo& p : params) {
    t.AddRow({p.name(), p.type(), p.default_value(), p.description()});
  }
  return t.Render();
}

absl::Status RunTargets(Context& ctx) {
  absl::StatusOr<v1::ListTargetsResponse> r =
      ctx.client.Call(&v1::FlowVI::Stub::ListTargets, v1::ListTargetsRequest(), "listing targets");
  if (!r.ok()) return r.status();
  if (!ctx.args.positional().empty()) {
    const std::string& name = ctx.args.positional()[0];
    for (const v1::TargetInfo& t : r->targets()) {
      if (t.name() != name) continue;
      if (ctx.json) {
        Out(ToJson(t));
        return absl::OkStatus();
      }
      KeyValues kv;
      kv.Add("target", t.name());
      kv.Add("dimension", absl::StrCat(t.default_dim(), " (with default parameters)"));
      kv.Add("proper", t.proper() ? "yes" : "no (improper: log Z is infinite)");
      if (t.has_log_z()) kv.Add("log Z", Fixed(t.log_z(), 6));
      if (!t.coordinate_names().empty()) {
        kv.Add("coordinates", absl::StrJoin(t.coordinate_names(), " "));
      }
      Out(kv.Render());
      Out(absl::StrCat("\n", t.description(), "\n"));
      if (!t.params().empty()) Out(absl::StrCat("\n", ParamsDetail(t.params())));
      return absl::OkStatus();
    }
    return absl::NotFoundError(
        absl::StrCat("unknown target '", name, "' ('flowvi targets' lists them)"));
  }
  if (ctx.json) {
    Out(ToJson(*r));
    return absl::OkStatus();
  }
  TextTable t({"TARGET", "DIM", "PROPER", "LOG Z", "PARAMETERS (defaults)"});
  for (const v1::TargetInfo& info : r->targets()) {
    t.AddRow({info.name(), absl::StrCat(info.default_dim()), info.proper() ? "yes" : "no",
              info.has_log_z() ? Fixed(info.log_z(), 4) : "-", ParamsText(info.params())});
  }
  Out(t.Render());
  return absl::OkStatus();
}

absl::Status RunLayers(Context& ctx) {
  absl::StatusOr<v1::ListLayersResponse> r = ctx.client.Call(
      &v1::FlowVI::Stub::ListLayers, v1::ListLayersRequest(), "listing layer types");
  if (!r.ok()) return r.status();
  if (ctx.json) {
    Out(ToJson(*r));
    return absl::OkStatus();
  }
  for (const v1::LayerInfo& l : r->layers()) {
    Out(absl::StrCat(l.type(), ": ", l.description(), "\n"));
    if (!l.options().empty()) Out(ParamsDetail(l.options()));
    Out("\n");
  }
  Out("Flow specs: 'meanfield', or comma-separated groups type[(option=value,...)][*count], e.g. "
      "planar*32 or radial*8,planar*8.\n");
  return absl::OkStatus();
}

absl::Status RunHealth(Context& ctx) {
  absl::StatusOr<std::string> status = ctx.client.HealthCheck();
  if (!status.ok()) return status.status();
  if (ctx.json) {
    Out(absl::StrCat("{\n  \"server\": \"", ctx.client.address(), "\",\n  \"status\": \"", *status,
                     "\"\n}\n"));
  } else {
    Out(absl::StrCat(ctx.client.address(), ": ", *status, "\n"));
  }
  if (*status != "SERVING") {
    return WithExitCode(absl::UnavailableError(absl::StrCat(
                            "the server at ", ctx.client.address(), " is ", *status,
                            *status == "NOT_SERVING" ? " (starting or shutting down)" : "")),
                        kExitUnreachable);
  }
  return absl::OkStatus();
}

}  // namespace

void AddInfoCommands(std::vector<CommandEntry>* out) {
  Command targets("targets", "[NAME]", "list the built-in targets, or describe one", 0, 1);
  targets.examples = "flowvi targets\nflowvi targets eight_schools";
  out->push_back({targets, RunTargets});

  Command layers("layers", "", "list the flow layer types and their options");
  out->push_back({layers, RunLayers});

  Command health("health", "", "check that the server is up and serving");
  health.description =
      "Asks the server's standard gRPC health service. Exit code 0 when it is SERVING, 3 when "
      "it cannot be reached or is not serving.";
  out->push_back({health, RunHealth});
}

}  // namespace flowvi::client
