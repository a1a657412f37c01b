#include "kernels/lockfile/atomic.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include <openssl/rand.h>

#include "kernels/lockfile/fd_io.h"

namespace kernels {

namespace {

Error io_error(std::string action, const std::filesystem::path& object, int err,
               std::string hint = {}) {
  if (hint.empty()) {
    if (err == EACCES || err == EPERM || err == EROFS) {
      hint = "check that the directory exists and is writable by this user";
    } else if (err == ENOSPC || err == EDQUOT) {
      hint = "free disk space or choose another cache directory";
    }
  }
  return make_error(ErrorCode::io, std::move(action) + ": " + std::strerror(err), object.string(),
                    std::move(hint));
}

std::uint32_t random_u32() {
  std::uint32_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) == 1) return v;
  // OpenSSL's generator failing is unheard of; mix pid, a counter and std::random_device then.
  static std::atomic<std::uint32_t> counter{0};
  std::random_device rd;
  return rd() ^ (static_cast<std::uint32_t>(::getpid()) << 8) ^ counter.fetch_add(0x9E3779B9u);
}

std::filesystem::path parent_or_dot(const std::filesystem::path& p) {
  auto parent = p.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

}  // namespace

std::filesystem::path unique_temp_path(const std::filesystem::path& final_path) {
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".%08x.incomplete", random_u32());
  std::filesystem::path out = final_path;
  out += suffix;
  return out;
}

Result<void> fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open directory to sync it", dir, errno);
  // Some filesystems (and some FUSE mounts) refuse fsync on a directory; the rename itself has
  // still happened, so only a real I/O error is reported.
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL && err != ENOTSUP && err != EBADF) {
    return io_error("fsync of directory failed", dir, err);
  }
  return ok();
}

Result<void> publish_file(const std::filesystem::path& temp_path,
                          const std::filesystem::path& final_path) {
  const int fd = ::open(temp_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open temp file to publish it", temp_path, errno);
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error("fsync failed", temp_path, err);
  }
  ::close(fd);
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    return io_error("cannot rename " + temp_path.filename().string() + " into place", final_path,
                    errno);
  }
  return fsync_directory(parent_or_dot(final_path));
}

Result<void> write_atomic_at(int dir_fd, std::string_view name, std::string_view bytes, mode_t mode,
                             const std::filesystem::path& shown_as) {
  const std::filesystem::path final_path = shown_as / std::string(name);
  const std::string temp = unique_temp_path(std::string(name)).string();
  const std::filesystem::path temp_shown = shown_as / temp;
  const int fd = ::openat(dir_fd, temp.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return io_error("cannot create temp file", temp_shown, errno);
  auto fail = [&](Error e) -> Result<void> {
    ::unlinkat(dir_fd, temp.c_str(), 0);
    return e;
  };
  if (const int err = write_all(fd, bytes.data(), bytes.size()); err != 0) {
    ::close(fd);
    return fail(io_error("write failed", temp_shown, err));
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(io_error("fsync failed", temp_shown, err));
  }
  if (::close(fd) != 0) return fail(io_error("close failed", temp_shown, errno));
  // renameat replaces whatever is at `name` (a planted link included) and never follows it.
  if (::renameat(dir_fd, temp.c_str(), dir_fd, std::string(name).c_str()) != 0) {
    const int err = errno;
    std::string hint;
    if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
      hint = "a directory is in the way; remove it or choose another path";
    }
    return fail(io_error("cannot replace file", final_path, err, std::move(hint)));
  }
  // Some filesystems (and some FUSE mounts) refuse fsync on a directory; the rename itself has
  // still happened, so only a real I/O error is reported.
  if (::fsync(dir_fd) != 0 && errno != EINVAL && errno != ENOTSUP && errno != EBADF) {
    return io_error("fsync of directory failed", shown_as, errno);
  }
  return ok();
}

Result<void> write_atomic(const std::filesystem::path& path, std::string_view bytes, mode_t mode) {
  if (path.empty() || !path.has_filename()) {
    return make_error(ErrorCode::io, "not a file path", path.string());
  }
  const std::filesystem::path dir = parent_or_dot(path);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return io_error("cannot create temp file", unique_temp_path(path), errno);
  auto r = write_atomic_at(dir_fd, path.filename().string(), bytes, mode, dir);
  ::close(dir_fd);
  return r;
}

}  // namespace kernels
