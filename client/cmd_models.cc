// models, model, alias, rm.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/output.h"

namespace flowvi::client {
namespace {

std::string OptionsText(const v1::FitOptions& o) {
  std::vector<std::string> parts;
  parts.push_back(absl::StrCat(Thousands(o.iterations()), " iterations"));
  parts.push_back(absl::StrCat("batch ", o.batch_size()));
  parts.push_back(absl::StrCat("lr ", Sig(o.learning_rate(), 4)));
  parts.push_back(absl::StrCat("seed ", o.seed()));
  if (o.has_validation_fraction()) {  // a data-set fit
    parts.push_back(absl::StrCat("validation ", Sig(o.validation_fraction(), 4), ", patience ",
                                 o.patience(), ", evaluated every ", Thousands(o.eval_interval())));
  } else {
    parts.push_back(o.anneal_iterations() > 0
                        ? absl::StrCat("anneal ", Thousands(o.anneal_iterations()))
                        : "no annealing");
  }
  parts.push_back(o.optimizer() == v1::OPTIMIZER_RMSPROP ? "rmsprop" : "adam");
  if (o.max_grad_norm() > 0) parts.push_back(absl::StrCat("clip ", Sig(o.max_grad_norm(), 4)));
  if (!o.has_validation_fraction()) {
    parts.push_back(absl::StrCat(Thousands(o.diagnostic_draws()), " diagnostic draws"));
  }
  return absl::StrJoin(parts, ", ");
}

absl::Status RunModels(Context& ctx) {
  absl::StatusOr<v1::ListModelsResponse> list =
      ctx.client.Call(&v1::FlowVI::Stub::ListModels, v1::ListModelsRequest(), "listing models");
  if (!list.ok()) return list.status();
  if (ctx.json) {
    Out(ToJson(*list));
    return absl::OkStatus();
  }
  if (list->models().empty()) {
    Err("no models yet (flowvi fit registers one)\n");
    return absl::OkStatus();
  }
  TextTable t({"MODEL", "VERSIONS", "ALIASES", "TARGET", "FLOW", "ELBO", "K̂"});
  for (const v1::ModelSummary& m : list->models()) {
    std::vector<std::string> versions;
    for (int64_t v : m.versions()) versions.push_back(absl::StrCat(v));
    std::vector<std::string> aliases;
    for (const auto& [alias, version] : m.aliases())
      aliases.push_back(absl::StrCat(alias, "=", version));
    std::sort(aliases.begin(), aliases.end());
    std::vector<std::string> row = {absl::StrCat(m.name(), "/", m.latest_version()),
                                    absl::StrJoin(versions, ","),
                                    aliases.empty() ? "-" : absl::StrJoin(aliases, ",")};
    // The latest version's target, flow and diagnostics.
    absl::StatusOr<v1::Model> latest =
        ctx.client.GetModel(absl::StrCat(m.name(), "/", m.latest_version()));
    if (latest.ok()) {
      row.push_back(TargetText(latest->target()));
      row.push_back(FlowText(latest->flow()));
      if (latest->has_density_fit()) {  // no ELBO or k-hat: its held-out log-likelihood
        const v1::DensityFit& f = latest->density_fit();
        row.push_back(
            absl::StrCat("LL ", Fixed(f.has_held_out_log_likelihood() ? f.held_out_log_likelihood()
                                                                      : f.train_log_likelihood(),
                                      4)));
        row.push_back("-");
      } else {
        row.push_back(Fixed(latest->diagnostics().elbo(), 4));
        row.push_back(Fixed(latest->diagnostics().k_hat(), 2));
      }
    } else if (ExitCodeOf(latest.status()) == kExitUnreachable) {
      return latest.status();
    }
    t.AddRow(std::move(row));
  }
  Out(t.Render());
  return absl::OkStatus();
}

absl::Status RunModel(Context& ctx) {
  const bool params = ctx.args.Switch("parameters");
  absl::StatusOr<v1::Model> m = ctx.client.GetModel(ctx.args.positional()[0], params);
  if (!m.ok()) return m.status();
  if (ctx.json) {
    Out(ToJson(*m));
    return absl::OkStatus();
  }
  KeyValues kv;
  std::string title = absl::StrCat(m->name(), "/", m->version());
  if (!m->aliases().empty()) {
    absl::StrAppend(&title, " (",
                    absl::StrJoin(m->aliases(), ", ",
                                  [&](std::string* out, const std::string& a) {
                                    absl::StrAppend(out, m->name(), "@", a);
                                  }),
                    ")");
  }
  kv.Add("model", title);
  kv.Add("created", absl::StrCat(Time(m->create_time()), " (", Age(m->create_time()), " ago) by ",
                                 m->job_id().empty() ? "-" : m->job_id()));
  kv.Add("target", TargetText(m->target()));
  kv.Add("flow", absl::StrCat(FlowText(m->flow()), " (", m->dim(),
                              m->dim() == 1 ? " dimension, " : " dimensions, ",
                              Thousands(m->num_params()), " parameters)"));
  kv.Add("options", OptionsText(m->options()));
  if (m->elbo_trace_size() > 0) {
    kv.Add("ELBO trace",
           absl::StrCat(m->elbo_trace_size(), " points, each the mean of ", m->trace_stride(),
                        " iterations; first ", Fixed(m->elbo_trace(0), 4), ", last ",
                        Fixed(m->elbo_trace(m->elbo_trace_size() - 1), 4)));
  }
  Out(kv.Render());
  if (m->has_density_fit()) {
    // Fitted to data: log-likelihoods and the standardization instead of diagnostics.
    const v1::DensityFit& f = m->density_fit();
    Out("density fit (maximum likelihood)\n");
    Out(DensityFitText(f, 2));
    std::vector<std::string> rows;
    for (int j = 0; j < f.mean_size() && j < f.sd_size(); ++j) {
      const std::string name = j < m->target().data().column_names_size()
                                   ? m->target().data().column_names(j)
                                   : absl::StrCat("x", j + 1);
      rows.push_back(
          absl::StrCat("  ", name, "  mean ", Sig(f.mean(j), 6), "  sd ", Sig(f.sd(j), 6), "\n"));
    }
    Out(absl::StrCat("standardization (training split)\n", absl::StrJoin(rows, "")));
  } else {
    Out(absl::StrCat("diagnostics (", Thousands(m->diagnostics().num_draws()), " draws from q)\n"));
    Out(DiagnosticsText(m->diagnostics(), 2));
    const std::string coords = CoordinatesText(m->diagnostics());
    if (!coords.empty()) Out(absl::StrCat("coordinates\n", coords));
  }
  if (params) {
    std::vector<std::string> values;
    for (double v : m->parameters()) values.push_back(Sig(v, 6));
    Out(absl::StrCat("parameters (", m->parameters_size(), ")\n  ", absl::StrJoin(values, " "),
                     "\n"));
  }
  return absl::OkStatus();
}

absl::Status RunAlias(Context& ctx) {
  const std::string& ref = ctx.args.positional()[0];
  const std::string& alias = ctx.args.positional()[1];
  // SetAlias takes a name and a version: resolve the reference first.
  absl::StatusOr<v1::Model> m = ctx.client.GetModel(ref);
  if (!m.ok()) return m.status();
  v1::SetAliasRequest request;
  request.set_name(m->name());
  request.set_alias(alias);
  request.set_version(m->version());
  absl::StatusOr<v1::ModelSummary> s =
      ctx.client.Call(&v1::FlowVI::Stub::SetAlias, request, absl::StrCat("setting alias ", alias));
  if (!s.ok()) return s.status();
  if (ctx.json) {
    Out(ToJson(*s));
  } else {
    Out(absl::StrCat(m->name(), "@", alias, " -> ", m->name(), "/", m->version(), "\n"));
  }
  return absl::OkStatus();
}

absl::Status RunRm(Context& ctx) {
  const std::string& ref = ctx.args.positional()[0];
  v1::DeleteModelRequest request;
  request.set_model(ref);
  absl::StatusOr<v1::DeleteModelResponse> r =
      ctx.client.Call(&v1::FlowVI::Stub::DeleteModel, request, absl::StrCat("deleting ", ref));
  if (!r.ok()) return r.status();
  if (ctx.json) {
    Out(ToJson(*r));
    return absl::OkStatus();
  }
  const std::string name = ref.substr(0, ref.find_first_of("/@"));
  std::vector<std::string> deleted;
  for (int64_t v : r->deleted_versions()) deleted.push_back(absl::StrCat(name, "/", v));
  Out(absl::StrCat("deleted ", deleted.empty() ? "nothing" : absl::StrJoin(deleted, ", "), "\n"));
  return absl::OkStatus();
}

}  // namespace

void AddModelCommands(std::vector<CommandEntry>* out) {
  Command models("models", "", "list registered models (latest version's diagnostics)");
  out->push_back({models, RunModels});

  Command model("model", "REF", "show a model version: spec, target, options, diagnostics", 1, 1);
  model.description =
      "Shows one version of a model. REF is 'name' (the latest version), 'name/3' (version 3) "
      "or 'name@alias'.";
  model.flags = {{"parameters", "", "also print the trained parameter vector"}};
  model.examples = "flowvi model u1\nflowvi model eight_schools/2 --json";
  out->push_back({model, RunModel});

  Command alias("alias", "REF NAME", "point the alias NAME at the model version REF", 2, 2);
  alias.description =
      "Points the alias NAME (letters, digits, '_', '-'; starting with a letter) at the version "
      "REF resolves to; 'name@NAME' then refers to it. Moving an existing alias is allowed.";
  alias.examples = "flowvi alias u1/3 prod\nflowvi sample u1@prod -n 100";
  out->push_back({alias, RunAlias});

  Command rm("rm", "REF", "delete a model version, or every version of a model", 1, 1);
  rm.description = "'name' deletes every version of the model; 'name/3' or 'name@alias' one.";
  rm.examples = "flowvi rm u1/2\nflowvi rm u1";
  out->push_back({rm, RunRm});
}

}  // namespace flowvi::client
