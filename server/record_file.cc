#include "server/record_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace flowvi::server {
namespace {

constexpr char kMagic[4] = {'F', 'V', 'R', '1'};
constexpr size_t kHeaderSize = 4 + 4 + 8 + 4;

std::function<absl::Status(const std::string&)>& WriteFault() {
  static auto* fault = new std::function<absl::Status(const std::string&)>();
  return *fault;
}

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;  // reflected Castagnoli
    table[i] = c;
  }
  return table;
}

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

absl::Status FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open directory", dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(err, "fsync directory", dir);
  return absl::OkStatus();
}

}  // namespace

uint32_t Crc32c(const void* data, size_t n) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void SetWriteFaultForTesting(std::function<absl::Status(const std::string& path)> fault) {
  WriteFault() = std::move(fault);
}

absl::Status ErrnoStatus(int err, const std::string& what, const std::string& path) {
  const std::string msg = absl::StrCat(what, " '", path, "': ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(absl::StrCat("no space left on device: ", msg));
    case EROFS:
      return absl::FailedPreconditionError(absl::StrCat("read-only file system: ", msg));
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ENOENT:
      return absl::NotFoundError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status WriteFileDurably(const std::string& path, const std::string& contents) {
  if (WriteFault()) {
    if (absl::Status s = WriteFault()(path); !s.ok()) return s;
  }
  const std::filesystem::path p(path);
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  thread_local std::mt19937_64 rng(std::random_device{}());
  const std::string tmp = absl::StrFormat("%s.tmp-%016x", path, rng());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "create", tmp);
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoStatus(err, "write", tmp);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "fsync", tmp);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "close", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "rename to", path);
  }
  return FsyncDir(dir);
}

absl::Status RemoveFileDurably(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "remove", path);
  }
  const std::filesystem::path p(path);
  return FsyncDir(p.parent_path().empty() ? "." : p.parent_path().string());
}

absl::Status WriteRecordFile(const std::string& path, const google::protobuf::MessageLite& msg) {
  std::string payload;
  if (!msg.SerializeToString(&payload)) {
    return absl::InternalError(absl::StrCat("cannot serialize the record for '", path, "'"));
  }
  std::string out(kMagic, 4);
  PutLe(&out, kRecordFormatVersion, 4);
  PutLe(&out, payload.size(), 8);
  PutLe(&out, Crc32c(payload.data(), payload.size()), 4);
  out += payload;
  return WriteFileDurably(path, out);
}

absl::Status ReadRecordFile(const std::string& path, google::protobuf::MessageLite* msg) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path))
      return absl::NotFoundError(absl::StrCat("'", path, "' does not exist"));
    return ErrnoStatus(errno, "open", path);
  }
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto loss = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("record file '", path, "' is damaged: ", why));
  };
  if (data.size() < kHeaderSize) return loss(absl::StrCat("only ", data.size(), " bytes"));
  if (std::memcmp(data.data(), kMagic, 4) != 0) return loss("wrong magic");
  const uint64_t version = GetLe(data.data() + 4, 4);
  if (version > kRecordFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "record file '", path, "' has format version ", version, "; this server reads up to ",
        kRecordFormatVersion, " (written by a newer flowvi?)"));
  }
  const uint64_t length = GetLe(data.data() + 8, 8);
  const uint32_t crc = static_cast<uint32_t>(GetLe(data.data() + 16, 4));
  if (data.size() - kHeaderSize != length) {
    return loss(
        absl::StrCat("payload is ", data.size() - kHeaderSize, " bytes, header says ", length));
  }
  if (Crc32c(data.data() + kHeaderSize, length) != crc) return loss("checksum mismatch");
  if (!msg->ParseFromArray(data.data() + kHeaderSize, static_cast<int>(length))) {
    return loss("payload does not parse");
  }
  return absl::OkStatus();
}

}  // namespace flowvi::server
