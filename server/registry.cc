#include "server/registry.h"

#include "absl/strings/str_cat.h"
#include "server/model_ref.h"
#include "server/target_builder.h"

namespace flowvi::server {

storage::v1::ModelIndexRecord ModelRegistry::IndexRecord(const std::string& name,
                                                         const Entry& e) const {
  storage::v1::ModelIndexRecord r;
  r.set_name(name);
  r.set_next_version(e.next_version);
  for (const auto& [alias, version] : e.aliases) (*r.mutable_aliases())[alias] = version;
  return r;
}

void ModelRegistry::Restore(const DataStore::Contents& contents,
                            std::vector<std::string>* problems) {
  absl::MutexLock w(&write_mu_);
  absl::MutexLock lock(&mu_);
  for (const storage::v1::ModelRecord& r : contents.models) {
    const v1::Model& m = r.model();
    absl::StatusOr<FlowSpec> spec = ParseFlowSpec(m.flow().text());
    absl::StatusOr<std::unique_ptr<Flow>> flow =
        spec.ok() ? Flow::Create(*spec, m.dim())
                  : absl::StatusOr<std::unique_ptr<Flow>>(spec.status());
    if (!flow.ok() || (*flow)->num_params() != r.parameters_size()) {
      problems->push_back(absl::StrCat(
          "model ", m.name(), "/", m.version(), ": cannot rebuild its flow (",
          flow.ok() ? "parameter count differs" : flow.status().message(), "); not served"));
      continue;
    }
    absl::StatusOr<std::shared_ptr<const lang::CompiledModel>> program =
        CompileProgramTarget(m.target(), model_limits_);
    if (!program.ok()) {
      problems->push_back(absl::StrCat("model ", m.name(), "/", m.version(),
                                       ": its program does not compile (",
                                       program.status().message(), "); not served"));
      continue;
    }
    (*flow)->mutable_params() =
        Eigen::Map<const Vector>(r.parameters().data(), r.parameters_size());
    auto mv = std::make_shared<ModelVersion>();
    mv->program = *std::move(program);
    mv->model = m;
    mv->model.clear_parameters();
    mv->model.clear_aliases();
    if (m.target().has_data()) {
      const v1::DensityFit& fit = m.density_fit();
      const Vector mean = Eigen::Map<const Vector>(fit.mean().data(), fit.mean_size());
      const Vector sd = Eigen::Map<const Vector>(fit.sd().data(), fit.sd_size());
      absl::StatusOr<std::unique_ptr<DensityModel>> density =
          DensityModel::Create(*std::move(flow), mean, sd);
      if (!density.ok()) {
        problems->push_back(absl::StrCat("model ", m.name(), "/", m.version(),
                                         ": its standardization is unusable (",
                                         density.status().message(), "); not served"));
        continue;
      }
      mv->density = *std::move(density);
      mv->flow = std::shared_ptr<const Flow>(mv->density, &mv->density->flow());
    } else {
      mv->flow = *std::move(flow);
    }
    Entry& e = models_[m.name()];
    e.versions[m.version()] = std::move(mv);
    e.next_version = std::max(e.next_version, m.version() + 1);
  }
  for (const storage::v1::ModelIndexRecord& r : contents.indexes) {
    Entry& e = models_[r.name()];
    // A version file written just before a crash may be newer than the index: never reuse it.
    e.next_version = std::max(e.next_version, r.next_version());
    for (const auto& [alias, version] : r.aliases()) {
      if (e.versions.contains(version)) e.aliases[alias] = version;
    }
  }
}

absl::StatusOr<std::shared_ptr<const ModelVersion>> ModelRegistry::Register(
    v1::Model model, std::unique_ptr<Flow> flow,
    std::shared_ptr<const lang::CompiledModel> program) {
  auto mv = std::make_shared<ModelVersion>();
  mv->model = std::move(model);
  mv->flow = std::move(flow);
  mv->program = std::move(program);
  return Add(std::move(mv));
}

absl::StatusOr<std::shared_ptr<const ModelVersion>> ModelRegistry::RegisterDensity(
    v1::Model model, std::unique_ptr<DensityModel> density) {
  auto mv = std::make_shared<ModelVersion>();
  mv->model = std::move(model);
  mv->density = std::move(density);
  // Shares the density model's ownership, so the flow lives as long as either pointer.
  mv->flow = std::shared_ptr<const Flow>(mv->density, &mv->density->flow());
  return Add(std::move(mv));
}

absl::StatusOr<std::shared_ptr<const ModelVersion>> ModelRegistry::Add(
    std::shared_ptr<ModelVersion> mv) {
  v1::Model& model = mv->model;
  absl::MutexLock w(&write_mu_);
  Entry next;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = models_.find(model.name());
    if (it != models_.end()) {
      next.next_version = it->second.next_version;
      next.aliases = it->second.aliases;
    }
  }
  const int64_t version = next.next_version++;
  model.set_version(version);
  model.clear_parameters();
  model.clear_aliases();
  if (store_ != nullptr) {
    storage::v1::ModelRecord record;
    *record.mutable_model() = model;
    const Vector& p = mv->flow->params();
    record.mutable_parameters()->Add(p.data(), p.data() + p.size());
    if (absl::Status s = store_->PutModel(record); !s.ok()) return s;
    if (absl::Status s = store_->PutModelIndex(IndexRecord(model.name(), next)); !s.ok()) {
      (void)store_->DeleteModel(model.name(), version);  // best effort; recovery would skip it
      return s;
    }
  }
  absl::MutexLock lock(&mu_);
  Entry& e = models_[mv->model.name()];
  e.versions[version] = mv;
  e.next_version = next.next_version;
  return mv;
}

std::shared_ptr<const ModelVersion> ModelRegistry::FindByJob(absl::string_view job_id) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, e] : models_) {
    for (const auto& [version, mv] : e.versions) {
      if (mv->model.job_id() == job_id) return mv;
    }
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<const ModelVersion>> ModelRegistry::ResolveLocked(
    absl::string_view text) const {
  absl::StatusOr<ModelRef> ref = ParseModelRef(text);
  if (!ref.ok()) return ref.status();
  auto it = models_.find(ref->name);
  if (it == models_.end() || it->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", ref->name, "' not found"));
  }
  const Entry& e = it->second;
  int64_t version = ref->version;
  if (!ref->alias.empty()) {
    auto a = e.aliases.find(ref->alias);
    if (a == e.aliases.end()) {
      return absl::NotFoundError(
          absl::StrCat("model '", ref->name, "' has no alias '", ref->alias, "'"));
    }
    version = a->second;
  }
  if (version == 0) return e.versions.rbegin()->second;
  auto v = e.versions.find(version);
  if (v == e.versions.end()) {
    return absl::NotFoundError(absl::StrCat("model '", ref->name, "' has no version ", version));
  }
  return v->second;
}

absl::StatusOr<std::shared_ptr<const ModelVersion>> ModelRegistry::Resolve(
    absl::string_view ref) const {
  absl::ReaderMutexLock lock(&mu_);
  return ResolveLocked(ref);
}

absl::StatusOr<v1::Model> ModelRegistry::Get(absl::string_view ref, bool include_parameters) const {
  absl::ReaderMutexLock lock(&mu_);
  absl::StatusOr<std::shared_ptr<const ModelVersion>> mv = ResolveLocked(ref);
  if (!mv.ok()) return mv.status();
  v1::Model out = (*mv)->model;
  const Entry& e = models_.at(out.name());
  for (const auto& [alias, version] : e.aliases) {
    if (version == out.version()) out.add_aliases(alias);
  }
  if (include_parameters) {
    const Vector& p = (*mv)->flow->params();
    out.mutable_parameters()->Add(p.data(), p.data() + p.size());
  }
  return out;
}

v1::ModelSummary ModelRegistry::SummaryLocked(const std::string& name, const Entry& e) const {
  v1::ModelSummary s;
  s.set_name(name);
  for (const auto& [version, mv] : e.versions) s.add_versions(version);
  if (!e.versions.empty()) s.set_latest_version(e.versions.rbegin()->first);
  for (const auto& [alias, version] : e.aliases) (*s.mutable_aliases())[alias] = version;
  return s;
}

std::vector<v1::ModelSummary> ModelRegistry::List() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<v1::ModelSummary> out;
  for (const auto& [name, e] : models_) {
    if (!e.versions.empty()) out.push_back(SummaryLocked(name, e));
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ModelRegistry::Delete(absl::string_view text) {
  absl::StatusOr<ModelRef> ref = ParseModelRef(text);
  if (!ref.ok()) return ref.status();
  absl::MutexLock w(&write_mu_);
  std::vector<int64_t> deleted;
  Entry after;
  {
    absl::ReaderMutexLock lock(&mu_);
    absl::StatusOr<std::shared_ptr<const ModelVersion>> mv = ResolveLocked(text);
    if (!mv.ok()) return mv.status();
    after = models_.at(ref->name);
    if (ref->version == 0 && ref->alias.empty()) {
      for (const auto& [version, unused] : after.versions) deleted.push_back(version);
      after.versions.clear();
      after.aliases.clear();
    } else {
      const int64_t version = (*mv)->model.version();
      after.versions.erase(version);
      std::erase_if(after.aliases, [&](const auto& a) { return a.second == version; });
      deleted.push_back(version);
    }
  }
  if (store_ != nullptr) {
    // The index first: once it no longer names an alias, a crash leaves at worst a version
    // file that is still served, never an alias to a missing version.
    if (absl::Status s = store_->PutModelIndex(IndexRecord(ref->name, after)); !s.ok()) return s;
    for (int64_t version : deleted) {
      if (absl::Status s = store_->DeleteModel(ref->name, version); !s.ok()) return s;
    }
  }
  absl::MutexLock lock(&mu_);
  models_[ref->name] = std::move(after);
  return deleted;
}

absl::StatusOr<v1::ModelSummary> ModelRegistry::SetAlias(absl::string_view name,
                                                         absl::string_view alias, int64_t version) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (absl::Status s = ValidateAlias(alias); !s.ok()) return s;
  absl::MutexLock w(&write_mu_);
  Entry after;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = models_.find(std::string(name));
    if (it == models_.end() || it->second.versions.empty()) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
    }
    if (!it->second.versions.contains(version)) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
    }
    after = it->second;
  }
  after.aliases[std::string(alias)] = version;
  if (store_ != nullptr) {
    if (absl::Status s = store_->PutModelIndex(IndexRecord(std::string(name), after)); !s.ok()) {
      return s;
    }
  }
  absl::MutexLock lock(&mu_);
  Entry& e = models_[std::string(name)];
  e = std::move(after);
  return SummaryLocked(std::string(name), e);
}

int64_t ModelRegistry::num_versions() const {
  absl::ReaderMutexLock lock(&mu_);
  int64_t n = 0;
  for (const auto& [name, e] : models_) n += static_cast<int64_t>(e.versions.size());
  return n;
}

}  // namespace flowvi::server
