// Durable, verifiable files holding one protobuf message each.
//
// Layout: "FVR1" | u32 format version | u64 payload length | u32 CRC-32C of the payload |
// payload (little-endian integers). A file cut short or altered is detected on read (length and
// checksum) and reported as DATA_LOSS, never parsed.
//
// WriteRecordFile is atomic and durable: it writes a temporary file in the same directory,
// fsyncs it, renames it over the target and fsyncs the directory, so after it returns OK the
// new content survives a crash, and at any moment before that the old content is intact.
#ifndef FLOWVI_SERVER_RECORD_FILE_H_
#define FLOWVI_SERVER_RECORD_FILE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message_lite.h"

namespace flowvi::server {

inline constexpr uint32_t kRecordFormatVersion = 1;

// CRC-32C (Castagnoli) of `n` bytes.
uint32_t Crc32c(const void* data, size_t n);

// Test hook: when set, called before every write with the path; a non-OK status is returned
// by the write instead of touching the disk (simulates ENOSPC, EIO...). Not thread-safe to
// change while writes run.
void SetWriteFaultForTesting(std::function<absl::Status(const std::string& path)> fault);

// Errors: RESOURCE_EXHAUSTED for no space left, PERMISSION_DENIED / FAILED_PRECONDITION for a
// read-only or inaccessible directory, INTERNAL for other I/O errors; each names the path.
absl::Status WriteRecordFile(const std::string& path, const google::protobuf::MessageLite& msg);

// NOT_FOUND if the file does not exist; DATA_LOSS if it is torn, corrupt, or not a record;
// FAILED_PRECONDITION if it was written by a newer format version.
absl::Status ReadRecordFile(const std::string& path, google::protobuf::MessageLite* msg);

// Durably writes a small plain file (same temp + fsync + rename + fsync-dir protocol).
absl::Status WriteFileDurably(const std::string& path, const std::string& contents);

// Removes a file and fsyncs its directory; OK if it did not exist.
absl::Status RemoveFileDurably(const std::string& path);

// Maps errno from an operation on `path` to a status with the right code.
absl::Status ErrnoStatus(int err, const std::string& what, const std::string& path);

}  // namespace flowvi::server

#endif  // FLOWVI_SERVER_RECORD_FILE_H_
