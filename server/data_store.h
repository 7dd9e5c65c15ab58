// DataStore: flowvi-server's data directory — job records, fit checkpoints and the model
// registry, each a record file (record_file.h) written durably before the server acknowledges
// what it holds.
//
//   <dir>/FORMAT                       "flowvi-data 1": the layout version
//   <dir>/jobs/<job id>.rec            storage.v1.JobRecord
//   <dir>/checkpoints/<job id>.rec     storage.v1.CheckpointRecord
//   <dir>/models/<name>/v<N>.rec       storage.v1.ModelRecord
//   <dir>/models/<name>/index.rec      storage.v1.ModelIndexRecord
//
// Load() reads everything back; a damaged file is reported in Contents::problems, renamed to
// <file>.corrupt (kept for inspection, never served), and the rest still loads.
//
// Thread-safe: writes of different files may run concurrently; callers serialize writes of the
// same file.
#ifndef FLOWVI_SERVER_DATA_STORE_H_
#define FLOWVI_SERVER_DATA_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "flowvi/storage/v1/records.pb.h"

namespace flowvi::server {

inline constexpr int kDataFormatVersion = 1;

class DataStore {
 public:
  struct Contents {
    std::vector<storage::v1::JobRecord> jobs;
    std::vector<storage::v1::ModelRecord> models;
    std::vector<storage::v1::ModelIndexRecord> indexes;
    // One line per damaged or unreadable file.
    std::vector<std::string> problems;
    // The job id every file in jobs/ and checkpoints/ is named after, damaged ones (moved
    // aside) included: ids that were handed out even if their record did not load.
    std::vector<std::string> job_file_ids;
  };

  // Creates the directory and its layout if missing. FAILED_PRECONDITION if it holds another
  // format version or is not a flowvi data directory; PERMISSION_DENIED or
  // FAILED_PRECONDITION (read-only) if it cannot be written; RESOURCE_EXHAUSTED if full.
  static absl::StatusOr<std::unique_ptr<DataStore>> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }

  absl::Status PutJob(const storage::v1::JobRecord& record);
  // Removes the job record and its checkpoint.
  absl::Status DeleteJob(const std::string& job_id);
  absl::Status PutCheckpoint(const storage::v1::CheckpointRecord& record);
  // NOT_FOUND when the job has none; DATA_LOSS when it is damaged, and then it is renamed to
  // <file>.corrupt (kept for inspection, never read again).
  absl::StatusOr<storage::v1::CheckpointRecord> GetCheckpoint(const std::string& job_id) const;
  absl::Status DeleteCheckpoint(const std::string& job_id);
  absl::Status PutModel(const storage::v1::ModelRecord& record);
  absl::Status DeleteModel(const std::string& name, int64_t version);
  absl::Status PutModelIndex(const storage::v1::ModelIndexRecord& record);

  Contents Load() const;

 private:
  explicit DataStore(std::string dir) : dir_(std::move(dir)) {}
  std::string JobPath(const std::string& id) const;
  std::string CheckpointPath(const std::string& id) const;
  std::string ModelDir(const std::string& name) const;

  const std::string dir_;
};

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_DATA_STORE_H_
