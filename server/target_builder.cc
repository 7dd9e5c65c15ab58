#include "server/target_builder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/targets/catalog.h"
#include "server/convert.h"

namespace flowvi::server {
namespace {

// The built-in a target names, with its parameters resolved (defaults filled in).
struct ResolvedBuiltin {
  const TargetInfo* info;
  ParamMap params;
};

absl::StatusOr<ResolvedBuiltin> ResolveBuiltin(const v1::BuiltinTarget& in) {
  absl::StatusOr<const TargetInfo*> info = FindTarget(in.name());
  if (!info.ok()) return info.status();
  absl::StatusOr<ParamMap> params =
      FromProto(in.params(), (*info)->params, absl::StrCat("target '", in.name(), "'"));
  if (!params.ok()) return params.status();
  return ResolvedBuiltin{*info, *std::move(params)};
}

absl::Status NoTarget() {
  return absl::InvalidArgumentError(
      "target: give a built-in ('builtin' with a name), a model program ('program' with source "
      "and data_json), a 2-D expression ('expression') or a data set ('data' with dim and "
      "values)");
}

// Compile errors say where in the program; this says which field the program came from.
absl::Status InField(const absl::Status& s, absl::string_view field) {
  return absl::Status(s.code(), absl::StrCat("target.", field, ": ", s.message()));
}

}  // namespace

int BuiltTarget::dim() const { return data != nullptr ? data->dim() : target->dim(); }

std::vector<std::string> BuiltTarget::user_coordinate_names() const {
  if (data != nullptr) return data_column_names;
  return program != nullptr ? program->names() : target->coordinate_names();
}

absl::StatusOr<Dataset> DatasetFromProto(const v1::DataSet& in) {
  const int dim = in.dim();
  if (dim < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("target.data.dim must be at least 1 (coordinates per point), got ", dim));
  }
  if (in.column_names_size() != 0 && in.column_names_size() != dim) {
    return absl::InvalidArgumentError(absl::StrCat("target.data.column_names has ",
                                                   in.column_names_size(), " names for dim ", dim,
                                                   "; give one per column or none"));
  }
  DatasetBuilder builder(dim);
  const int64_t total = in.values_size();
  const double* v = in.values().data();
  for (int64_t start = 0; start < total; start += dim) {
    // The last row may be short: the builder names its first missing column.
    const int64_t len = std::min<int64_t>(dim, total - start);
    if (absl::Status s = builder.AddRow(absl::MakeConstSpan(v + start, len)); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("target.data: ", s.message()));
    }
  }
  absl::StatusOr<Dataset> data = builder.Build();
  if (!data.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("target.data: ", data.status().message()));
  }
  return data;
}

absl::StatusOr<std::shared_ptr<const lang::CompiledModel>> CompileProgramTarget(
    const v1::Target& in, const lang::ModelLimits& limits) {
  absl::StatusOr<std::unique_ptr<lang::CompiledModel>> model;
  switch (in.kind_case()) {
    case v1::Target::kProgram:
      if (in.program().source().empty()) {
        return absl::InvalidArgumentError("target.program.source is empty");
      }
      model = lang::CompileModel(in.program().source(), in.program().data_json(), limits);
      if (!model.ok()) return InField(model.status(), "program");
      break;
    case v1::Target::kExpression:
      model = lang::CompileExpression2D(in.expression(), limits);
      if (!model.ok()) return InField(model.status(), "expression");
      break;
    default:
      return nullptr;
  }
  return std::shared_ptr<const lang::CompiledModel>(*std::move(model));
}

absl::StatusOr<BuiltTarget> BuildTarget(const v1::Target& in, const lang::ModelLimits& limits) {
  BuiltTarget out;
  switch (in.kind_case()) {
    case v1::Target::kBuiltin: {
      absl::StatusOr<ResolvedBuiltin> r = ResolveBuiltin(in.builtin());
      if (!r.ok()) return r.status();
      absl::StatusOr<std::unique_ptr<Target>> t = r->info->factory(r->params);
      if (!t.ok()) return t.status();
      out.target = *std::move(t);
      return out;
    }
    case v1::Target::kProgram:
    case v1::Target::kExpression: {
      absl::StatusOr<std::shared_ptr<const lang::CompiledModel>> program =
          CompileProgramTarget(in, limits);
      if (!program.ok()) return program.status();
      out.program = *std::move(program);
      std::unique_ptr<lang::ModelTarget> t = out.program->NewTarget();
      out.model_target = t.get();
      out.target = std::move(t);
      return out;
    }
    case v1::Target::kData: {
      absl::StatusOr<Dataset> data = DatasetFromProto(in.data());
      if (!data.ok()) return data.status();
      out.data = std::make_shared<const Dataset>(*std::move(data));
      for (int i = 0; i < out.data->dim(); ++i) {
        out.data_column_names.push_back(in.data().column_names_size() > 0
                                            ? in.data().column_names(i)
                                            : absl::StrCat("x", i + 1));
      }
      return out;
    }
    default:
      return NoTarget();
  }
}

absl::StatusOr<v1::Target> CanonicalTarget(const v1::Target& in) {
  if (in.kind_case() == v1::Target::kData) {
    v1::Target out;
    v1::DataSet* d = out.mutable_data();
    d->set_dim(in.data().dim());
    d->set_num_points(in.data().dim() > 0 ? in.data().values_size() / in.data().dim() : 0);
    *d->mutable_column_names() = in.data().column_names();
    return out;
  }
  if (in.kind_case() != v1::Target::kBuiltin) {
    if (in.kind_case() == v1::Target::KIND_NOT_SET) return NoTarget();
    return in;
  }
  absl::StatusOr<ResolvedBuiltin> r = ResolveBuiltin(in.builtin());
  if (!r.ok()) return r.status();
  v1::Target out;
  out.mutable_builtin()->set_name(r->info->name);
  for (const auto& [k, v] : r->params) (*out.mutable_builtin()->mutable_params())[k] = ToProto(v);
  return out;
}

}  // namespace flowvi::server
