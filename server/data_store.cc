#include "server/data_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/record_file.h"

namespace flowvi::server {
namespace {

namespace fs = std::filesystem;

std::string FormatLine() { return absl::StrCat("flowvi-data ", kDataFormatVersion, "\n"); }

absl::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return ErrnoStatus(ec.value(), "create directory", path);
  return absl::OkStatus();
}

// Reads one record file into `out`; a damaged one is renamed aside and reported.
template <typename Record>
void LoadOne(const fs::path& path, std::vector<Record>* out, std::vector<std::string>* problems) {
  Record r;
  absl::Status s = ReadRecordFile(path.string(), &r);
  if (s.ok()) {
    out->push_back(std::move(r));
    return;
  }
  problems->push_back(std::string(s.message()));
  if (s.code() == absl::StatusCode::kDataLoss) {
    std::error_code ec;
    fs::rename(path, path.string() + ".corrupt", ec);
  }
}

bool IsLeftoverTemp(const fs::path& p) { return absl::StrContains(p.filename().string(), ".tmp-"); }

}  // namespace

absl::StatusOr<std::unique_ptr<DataStore>> DataStore::Open(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("the data directory path is empty");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory '", dir, "' is not a directory"));
  }
  const fs::path format = fs::path(dir) / "FORMAT";
  if (fs::exists(format, ec)) {
    std::ifstream in(format);
    std::string line;
    std::getline(in, line);
    absl::string_view v = line;
    int version = 0;
    if (!absl::ConsumePrefix(&v, "flowvi-data ") || !absl::SimpleAtoi(v, &version)) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", format.string(), "' does not name a flowvi data format; is '", dir,
                       "' a flowvi data directory?"));
    }
    if (version != kDataFormatVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("data directory '", dir, "' has format version ", version,
                       "; this server reads version ", kDataFormatVersion,
                       ". Use a matching flowvi-server or a new directory; nothing was changed."));
    }
  } else if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "'", dir, "' is not empty and has no FORMAT file: not a flowvi data directory"));
  }
  for (const char* sub : {"jobs", "checkpoints", "models"}) {
    if (absl::Status s = MakeDirs((fs::path(dir) / sub).string()); !s.ok()) return s;
  }
  // Writing FORMAT (again) proves the directory is writable now, not at the first fit.
  if (absl::Status s = WriteFileDurably(format.string(), FormatLine()); !s.ok()) return s;
  return std::unique_ptr<DataStore>(new DataStore(dir));
}

std::string DataStore::JobPath(const std::string& id) const {
  return (fs::path(dir_) / "jobs" / (id + ".rec")).string();
}
std::string DataStore::CheckpointPath(const std::string& id) const {
  return (fs::path(dir_) / "checkpoints" / (id + ".rec")).string();
}
std::string DataStore::ModelDir(const std::string& name) const {
  return (fs::path(dir_) / "models" / name).string();
}

absl::Status DataStore::PutJob(const storage::v1::JobRecord& record) {
  return WriteRecordFile(JobPath(record.job().id()), record);
}

absl::Status DataStore::DeleteJob(const std::string& job_id) {
  if (absl::Status s = DeleteCheckpoint(job_id); !s.ok()) return s;
  return RemoveFileDurably(JobPath(job_id));
}

absl::Status DataStore::PutCheckpoint(const storage::v1::CheckpointRecord& record) {
  return WriteRecordFile(CheckpointPath(record.job_id()), record);
}

absl::StatusOr<storage::v1::CheckpointRecord> DataStore::GetCheckpoint(
    const std::string& job_id) const {
  storage::v1::CheckpointRecord r;
  const std::string path = CheckpointPath(job_id);
  if (absl::Status s = ReadRecordFile(path, &r); !s.ok()) {
    if (s.code() == absl::StatusCode::kDataLoss) {
      // As Load() does for the other records: kept for inspection, never used again (the
      // fit's next checkpoint would otherwise replace it).
      std::error_code ec;
      fs::rename(path, path + ".corrupt", ec);
      if (!ec) {
        return absl::DataLossError(
            absl::StrCat(s.message(), " (moved aside to '", path, ".corrupt')"));
      }
    }
    return s;
  }
  return r;
}

absl::Status DataStore::DeleteCheckpoint(const std::string& job_id) {
  return RemoveFileDurably(CheckpointPath(job_id));
}

absl::Status DataStore::PutModel(const storage::v1::ModelRecord& record) {
  const std::string dir = ModelDir(record.model().name());
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  return WriteRecordFile(
      (fs::path(dir) / absl::StrCat("v", record.model().version(), ".rec")).string(), record);
}

absl::Status DataStore::DeleteModel(const std::string& name, int64_t version) {
  return RemoveFileDurably(
      (fs::path(ModelDir(name)) / absl::StrCat("v", version, ".rec")).string());
}

absl::Status DataStore::PutModelIndex(const storage::v1::ModelIndexRecord& record) {
  const std::string dir = ModelDir(record.name());
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  return WriteRecordFile((fs::path(dir) / "index.rec").string(), record);
}

DataStore::Contents DataStore::Load() const {
  Contents c;
  std::error_code ec;
  auto files = [&](const fs::path& d) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      if (!e.is_regular_file()) continue;
      if (IsLeftoverTemp(e.path())) {
        fs::remove(e.path(), ec);  // an interrupted write: the old file, if any, is intact
        continue;
      }
      if (e.path().extension() == ".rec") out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  for (const fs::path& p : files(fs::path(dir_) / "jobs")) LoadOne(p, &c.jobs, &c.problems);
  // After LoadOne so that records just moved aside count too. Checkpoints are read when their
  // job runs; only their names, and interrupted writes to clean up, matter here.
  for (const char* sub : {"jobs", "checkpoints"}) {
    for (const auto& e : fs::directory_iterator(fs::path(dir_) / sub, ec)) {
      if (!e.is_regular_file()) continue;
      if (IsLeftoverTemp(e.path())) {
        fs::remove(e.path(), ec);
        continue;
      }
      const std::string name = e.path().filename().string();
      c.job_file_ids.push_back(name.substr(0, name.find('.')));
    }
  }
  for (const auto& e : fs::directory_iterator(fs::path(dir_) / "models", ec)) {
    if (!e.is_directory()) continue;
    for (const fs::path& p : files(e.path())) {
      if (p.filename() == "index.rec") {
        LoadOne(p, &c.indexes, &c.problems);
      } else {
        LoadOne(p, &c.models, &c.problems);
      }
    }
  }
  return c;
}

}  // namespace flowvi::server
