// ModelRegistry: trained models by name, with immutable integer versions (1, 2, ... per name,
// never reused) and movable aliases.
//
// Each version holds its metadata (a v1::Model without parameters or aliases) and the loaded
// flow, shared read-only with in-flight queries: deleting a version never invalidates a query
// that already resolved it.
//
// With a DataStore, every change is on disk before it is visible or acknowledged (a version
// file, then the name's index); mutations are serialized by write_mu_, so readers never wait
// for an fsync.
//
// Thread-safe: every method may be called from any thread.
#ifndef FLOWVI_SERVER_REGISTRY_H_
#define FLOWVI_SERVER_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/fit/density_model.h"
#include "engine/flows/flow.h"
#include "engine/lang/limits.h"
#include "engine/lang/model.h"
#include "flowvi/v1/types.pb.h"
#include "server/data_store.h"

namespace flowvi::server {

struct ModelVersion {
  v1::Model model;  // name, version, metadata; no parameters or aliases
  // The trained flow. For a density model it is density->flow(), which maps data to noise
  // (the normalizing direction): query it only through `density`.
  std::shared_ptr<const Flow> flow;
  // For a data-set target: the density model (flow plus standardization, in the data's units).
  // Null for variational (ELBO) fits.
  std::shared_ptr<const DensityModel> density;
  // For a program (or expression) target: the compiled model, which maps the flow's
  // unconstrained space to the declared one clients see. Null for built-ins.
  std::shared_ptr<const lang::CompiledModel> program;
};

class ModelRegistry {
 public:
  // `store` (may be null: memory only) must outlive the registry. Restore compiles the programs
  // of program targets within `model_limits`.
  explicit ModelRegistry(DataStore* store = nullptr, lang::ModelLimits model_limits = {})
      : store_(store), model_limits_(model_limits) {}
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // Rebuilds the registry from a data directory's contents (before serving). Versions whose
  // flow (or a density model's standardization) cannot be rebuilt are skipped and reported in
  // *problems.
  void Restore(const DataStore::Contents& contents, std::vector<std::string>* problems);

  // Adds the next version of model.name(), durably; returns it (with version set). Fails only
  // when the store cannot write (e.g. RESOURCE_EXHAUSTED: disk full), changing nothing.
  // `program` is the compiled program of a program target (null for built-ins).
  absl::StatusOr<std::shared_ptr<const ModelVersion>> Register(
      v1::Model model, std::unique_ptr<Flow> flow,
      std::shared_ptr<const lang::CompiledModel> program = nullptr);

  // The same for a density model; its standardization (mean, sd) must be in
  // model.density_fit(), which is how it is stored and restored.
  absl::StatusOr<std::shared_ptr<const ModelVersion>> RegisterDensity(
      v1::Model model, std::unique_ptr<DensityModel> density);

  // The version produced by a job, if any (recovery links a job to its model this way).
  std::shared_ptr<const ModelVersion> FindByJob(absl::string_view job_id) const;

  // NotFound when the model, version or alias does not exist; InvalidArgument for a malformed
  // reference.
  absl::StatusOr<std::shared_ptr<const ModelVersion>> Resolve(absl::string_view ref) const;

  // The model as GetModel returns it: metadata, aliases, and parameters if asked.
  absl::StatusOr<v1::Model> Get(absl::string_view ref, bool include_parameters) const;

  std::vector<v1::ModelSummary> List() const;

  // "name" deletes every version (and its aliases); "name/3" or "name@a" one version (and the
  // aliases pointing at it). Returns the deleted versions.
  absl::StatusOr<std::vector<int64_t>> Delete(absl::string_view ref);

  // NotFound for an unknown model or version; InvalidArgument for a malformed alias.
  absl::StatusOr<v1::ModelSummary> SetAlias(absl::string_view name, absl::string_view alias,
                                            int64_t version);

  // Number of registered versions over all names.
  int64_t num_versions() const;

 private:
  struct Entry {
    std::map<int64_t, std::shared_ptr<const ModelVersion>> versions;
    std::map<std::string, int64_t> aliases;
    int64_t next_version = 1;
  };

  absl::StatusOr<std::shared_ptr<const ModelVersion>> ResolveLocked(absl::string_view ref) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  v1::ModelSummary SummaryLocked(const std::string& name, const Entry& e) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  absl::StatusOr<std::shared_ptr<const ModelVersion>> Add(std::shared_ptr<ModelVersion> mv);
  storage::v1::ModelIndexRecord IndexRecord(const std::string& name, const Entry& e) const;

  DataStore* const store_;
  const lang::ModelLimits model_limits_;
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serializes mutations and their writes
  mutable absl::Mutex mu_;
  // Entries are kept after their last version is deleted so versions are never reused.
  std::map<std::string, Entry> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_REGISTRY_H_
