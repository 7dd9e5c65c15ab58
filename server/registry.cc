#include "server/registry.h"

#include "absl/strings/str_cat.h"
#include "server/model_ref.h"

namespace flowvi::server {

std::shared_ptr<const ModelVersion> ModelRegistry::Register(v1::Model model,
                                                           std::unique_ptr<Flow> flow) {
  absl::MutexLock lock(&mu_);
  Entry& e = models_[model.name()];
  const int64_t version = e.next_version++;
  model.set_version(version);
  model.clear_parameters();
  model.clear_aliases();
  auto mv = std::make_shared<ModelVersion>();
  mv->model = std::move(model);
  mv->flow = std::move(flow);
  e.versions[version] = mv;
  return mv;
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
    return absl::NotFoundError(
        absl::StrCat("model '", ref->name, "' has no version ", version));
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
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::shared_ptr<const ModelVersion>> mv = ResolveLocked(text);
  if (!mv.ok()) return mv.status();
  Entry& e = models_.at(ref->name);
  std::vector<int64_t> deleted;
  if (ref->version == 0 && ref->alias.empty()) {
    for (const auto& [version, unused] : e.versions) deleted.push_back(version);
    e.versions.clear();
    e.aliases.clear();
  } else {
    const int64_t version = (*mv)->model.version();
    e.versions.erase(version);
    std::erase_if(e.aliases, [&](const auto& a) { return a.second == version; });
    deleted.push_back(version);
  }
  return deleted;
}

absl::StatusOr<v1::ModelSummary> ModelRegistry::SetAlias(absl::string_view name,
                                                         absl::string_view alias,
                                                         int64_t version) {
  if (absl::Status s = ValidateModelName(name); !s.ok()) return s;
  if (absl::Status s = ValidateAlias(alias); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  auto it = models_.find(std::string(name));
  if (it == models_.end() || it->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' not found"));
  }
  if (!it->second.versions.contains(version)) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
  }
  it->second.aliases[std::string(alias)] = version;
  return SummaryLocked(it->first, it->second);
}

int64_t ModelRegistry::num_versions() const {
  absl::ReaderMutexLock lock(&mu_);
  int64_t n = 0;
  for (const auto& [name, e] : models_) n += static_cast<int64_t>(e.versions.size());
  return n;
}

}  // namespace flowvi::server
