#include "file_read.h"

#include "kernels/lockfile/fd_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kernels {

Result<std::string> read_small_file(const std::filesystem::path& path, std::size_t max_bytes,
                                    ErrorCode missing_code, std::string missing_hint) {
  // O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return make_error(missing_code, "file not found", path.string(), std::move(missing_hint));
    }
    return make_error(ErrorCode::io, std::string("cannot open: ") + std::strerror(err),
                      path.string(), "check the file's permissions");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(ErrorCode::io, std::string("cannot stat: ") + std::strerror(err),
                      path.string());
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return make_error(ErrorCode::lockfile_invalid,
                      std::string("expected a regular file, found ") + kind, path.string(),
                      "point at the file itself");
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return make_error(ErrorCode::lockfile_invalid,
                      "file is " + std::to_string(st.st_size) + " bytes, more than the " +
                          std::to_string(max_bytes) + "-byte limit",
                      path.string(), "this is not a file this tool writes; regenerate it");
  }
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  const int err = read_to_end(fd, out, max_bytes);
  ::close(fd);
  if (err == EFBIG) {
    return make_error(ErrorCode::lockfile_invalid,
                      "file grew past the " + std::to_string(max_bytes) + "-byte limit while read",
                      path.string(), "this is not a file this tool writes; regenerate it");
  }
  if (err != 0) {
    return make_error(ErrorCode::io, std::string("read failed: ") + std::strerror(err),
                      path.string());
  }
  return out;
}

}  // namespace kernels
