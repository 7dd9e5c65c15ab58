#include "server/read_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace flowvi::server {

absl::StatusOr<std::string> ReadConfigFile(const std::string& path, absl::string_view what) {
  constexpr off_t kMaxBytes = 1 << 20;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    const std::string message =
        absl::StrCat(what, ": cannot read '", path, "': ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", path, "' is not a regular file"));
  }
  if (st.st_size > kMaxBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": '", path, "' is ", st.st_size,
                                                   " bytes, more than the 1 MiB such a "
                                                   "file can be"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, ": cannot open '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(what, ": error reading '", path, "'"));
  }
  return contents.str();
}

}  // namespace flowvi::server
