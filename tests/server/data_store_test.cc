// The data directory: record files detect torn and corrupted content, writes are atomic, and
// a damaged file is reported while the rest still loads.
#include "server/data_store.h"

#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/record_file.h"

namespace flowvi::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class DataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("flowvi_store_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    SetWriteFaultForTesting(nullptr);
    fs::remove_all(dir_);
  }

  static storage::v1::JobRecord Job(const std::string& id, uint64_t seq) {
    storage::v1::JobRecord r;
    r.mutable_job()->set_id(id);
    r.mutable_job()->set_model_name("m");
    r.set_sequence(seq);
    return r;
  }

  static std::string Slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  static void Spit(const fs::path& p, const std::string& data) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
  }

  fs::path dir_;
};

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  // The CRC-32C check value of "123456789" (RFC 3720, appendix B.4).
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
}

TEST_F(DataStoreTest, RoundTripsEveryRecordKind) {
  auto store = DataStore::Open(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->PutJob(Job("job-000001", 1)).ok());
  ASSERT_TRUE((*store)->PutJob(Job("job-000002", 2)).ok());
  storage::v1::CheckpointRecord cp;
  cp.set_job_id("job-000001");
  cp.set_iteration(77);
  cp.add_params(0.1);
  ASSERT_TRUE((*store)->PutCheckpoint(cp).ok());
  storage::v1::ModelRecord m;
  m.mutable_model()->set_name("m");
  m.mutable_model()->set_version(3);
  m.add_parameters(1.5);
  ASSERT_TRUE((*store)->PutModel(m).ok());
  storage::v1::ModelIndexRecord idx;
  idx.set_name("m");
  idx.set_next_version(4);
  (*idx.mutable_aliases())["prod"] = 3;
  ASSERT_TRUE((*store)->PutModelIndex(idx).ok());

  auto again = DataStore::Open(dir_.string());
  ASSERT_TRUE(again.ok());
  DataStore::Contents c = (*again)->Load();
  EXPECT_THAT(c.problems, ::testing::IsEmpty());
  ASSERT_EQ(c.jobs.size(), 2u);
  EXPECT_EQ(c.jobs[1].job().id(), "job-000002");
  ASSERT_EQ(c.models.size(), 1u);
  EXPECT_EQ(c.models[0].parameters(0), 1.5);
  ASSERT_EQ(c.indexes.size(), 1u);
  EXPECT_EQ(c.indexes[0].aliases().at("prod"), 3);
  auto got = (*again)->GetCheckpoint("job-000001");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->iteration(), 77);
  EXPECT_EQ((*again)->GetCheckpoint("job-000002").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE((*again)->DeleteJob("job-000001").ok());
  EXPECT_EQ((*again)->GetCheckpoint("job-000001").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*again)->Load().jobs.size(), 1u);
}

TEST_F(DataStoreTest, TornAndCorruptFilesAreReportedAndTheRestLoads) {
  auto store = DataStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE((*store)->PutJob(Job("job-00000" + std::to_string(i), i)).ok());
  }
  const fs::path jobs = dir_ / "jobs";
  // Torn: cut in the middle of the payload.
  std::string data = Slurp(jobs / "job-000001.rec");
  Spit(jobs / "job-000001.rec", data.substr(0, data.size() - 3));
  // Corrupt: one payload byte flipped.
  data = Slurp(jobs / "job-000002.rec");
  data[data.size() - 2] ^= 0x40;
  Spit(jobs / "job-000002.rec", data);
  // Not a record at all.
  Spit(jobs / "job-000003.rec", "hello");

  DataStore::Contents c = (*store)->Load();
  ASSERT_EQ(c.jobs.size(), 1u);
  EXPECT_EQ(c.jobs[0].job().id(), "job-000004");
  ASSERT_EQ(c.problems.size(), 3u);
  EXPECT_THAT(c.problems[0], HasSubstr("job-000001.rec"));
  EXPECT_THAT(c.problems[0], HasSubstr("payload is"));
  EXPECT_THAT(c.problems[1], HasSubstr("checksum mismatch"));
  EXPECT_THAT(c.problems[2], HasSubstr("job-000003.rec"));
  // Moved aside, never read again, kept for inspection.
  EXPECT_TRUE(fs::exists(jobs / "job-000001.rec.corrupt"));
  EXPECT_FALSE(fs::exists(jobs / "job-000001.rec"));
  EXPECT_THAT((*store)->Load().problems, ::testing::IsEmpty());
}

TEST_F(DataStoreTest, ReadRecordFileCodes) {
  ASSERT_TRUE(DataStore::Open(dir_.string()).ok());
  storage::v1::JobRecord r;
  EXPECT_EQ(ReadRecordFile((dir_ / "missing.rec").string(), &r).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(WriteRecordFile((dir_ / "x.rec").string(), Job("a", 1)).ok());
  std::string data = Slurp(dir_ / "x.rec");
  data[4] = 9;  // a format version from the future
  Spit(dir_ / "x.rec", data);
  absl::Status s = ReadRecordFile((dir_ / "x.rec").string(), &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("newer"));
}

TEST_F(DataStoreTest, FailedWriteLeavesTheOldContentIntact) {
  auto store = DataStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  storage::v1::JobRecord r = Job("job-000001", 1);
  r.mutable_job()->set_model_name("before");
  ASSERT_TRUE((*store)->PutJob(r).ok());
  SetWriteFaultForTesting([](const std::string&) {
    return absl::ResourceExhaustedError("no space left on device (injected)");
  });
  r.mutable_job()->set_model_name("after");
  EXPECT_EQ((*store)->PutJob(r).code(), absl::StatusCode::kResourceExhausted);
  SetWriteFaultForTesting(nullptr);
  DataStore::Contents c = (*store)->Load();
  ASSERT_EQ(c.jobs.size(), 1u);
  EXPECT_EQ(c.jobs[0].job().model_name(), "before");
  // A temporary file left by a write killed half-way is cleaned up and ignored.
  Spit(dir_ / "jobs" / "job-000001.rec.tmp-0123456789abcdef", "partial");
  c = (*store)->Load();
  EXPECT_EQ(c.jobs.size(), 1u);
  EXPECT_FALSE(fs::exists(dir_ / "jobs" / "job-000001.rec.tmp-0123456789abcdef"));
}

TEST_F(DataStoreTest, RefusesForeignOrFutureDirectories) {
  fs::create_directories(dir_);
  Spit(dir_ / "FORMAT", "flowvi-data 2\n");
  auto s = DataStore::Open(dir_.string());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("format version 2"));
  EXPECT_EQ(Slurp(dir_ / "FORMAT"), "flowvi-data 2\n");  // untouched
  fs::remove(dir_ / "FORMAT");
  Spit(dir_ / "unrelated.txt", "mine");
  EXPECT_EQ(DataStore::Open(dir_.string()).status().code(), absl::StatusCode::kFailedPrecondition);
  Spit(dir_ / "FORMAT", "garbage\n");
  EXPECT_EQ(DataStore::Open(dir_.string()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(DataStoreTest, ReadOnlyDirectoryIsAClearError) {
  fs::create_directories(dir_);
  bool mounted = false;
  if (::geteuid() == 0) {
    // Root writes through permission bits: a read-only tmpfs is the honest test.
    mounted = ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_RDONLY, "size=64k") == 0;
    if (!mounted) GTEST_SKIP() << "root, and mounting a read-only tmpfs is not allowed here";
  } else {
    fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
  }
  auto s = DataStore::Open(dir_.string());
  if (mounted) {
    ::umount(dir_.c_str());
  } else {
    fs::permissions(dir_, fs::perms::owner_all);
  }
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().code() == absl::StatusCode::kFailedPrecondition ||
              s.status().code() == absl::StatusCode::kPermissionDenied)
      << s.status();
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(dir_.string()));
}

}  // namespace
}  // namespace flowvi::server
