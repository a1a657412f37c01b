#include "kernels/lockfile/cache_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/lockfile/atomic.h"

namespace kernels {
namespace fs = std::filesystem;
namespace {

Error io_error(const std::string& action, const fs::path& object, int err) {
  const char* hint = "check the cache directory";
  if (err == EACCES || err == EPERM || err == EROFS) {
    hint = "check that the cache directory is writable by this user";
  } else if (err == EMFILE || err == ENFILE) {
    hint = "too many open files: raise `ulimit -n` or lower --jobs / KERNELS_JOBS";
  } else if (err == ENOSPC || err == EDQUOT) {
    hint = "free disk space (or quota) for the cache";
  }
  return make_error(ErrorCode::io, action + ": " + std::strerror(err), object.string(), hint);
}

// What is at `name` instead of a regular file, for the message: "a symbolic link", "a FIFO", ...
const char* kind_of(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

Error not_regular(mode_t mode, const fs::path& path) {
  return make_error(ErrorCode::unsafe,
                    std::string(kind_of(mode)) +
                        " where the cache has a file of its own; not followed or read",
                    path.string(),
                    "remove it (`rm '" + path.string() +
                        "'`) and retry. Only a user who can write the cache can plant one: check "
                        "who can (docs/RELIABILITY.md, Cache safety model)");
}

// O_DIRECTORY | O_NOFOLLOW on a link fails with ENOTDIR (or ELOOP): which one it was, for the
// message, comes from an lstat of the name.
Error planted(int dir_fd, const fs::path& part, const fs::path& path) {
  struct stat st {};
  const bool link = ::fstatat(dir_fd, part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISLNK(st.st_mode);
  return make_error(ErrorCode::unsafe,
                    link ? "a symbolic link where the cache has a directory; not followed"
                         : "not a directory, where the cache has one",
                    path.string(),
                    "remove it (`rm '" + path.string() +
                        "'`); the next download recreates it. Only a user who can write the "
                        "cache can plant one: check who can (docs/RELIABILITY.md, Cache safety "
                        "model)");
}

bool plain_component(const fs::path& part) {
  const std::string s = part.string();
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos;
}

}  // namespace

Result<CacheDir> CacheDir::open(const fs::path& root, const fs::path& relative, bool create) {
  if (create) {
    std::error_code ec;
    fs::create_directories(root, ec);  // the root is the user's choice: links are fine there
  }
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open the cache directory", root, errno);
  return walk(CacheDir(fd, root), relative, create);
}

Result<CacheDir> CacheDir::subdir(const fs::path& relative, bool create) const {
  const int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return io_error("cannot open directory", path_, errno);
  return walk(CacheDir(fd, path_), relative, create);
}

Result<CacheDir> CacheDir::walk(CacheDir dir, const fs::path& relative, bool create) {
  const fs::path whole = dir.path_ / relative;
  for (const fs::path& part : relative) {
    if (part.empty()) continue;  // a trailing "/"
    if (!plain_component(part)) {
      return make_error(ErrorCode::unsafe, "not a plain path component inside the cache",
                        whole.string(), "this is a bug: please report it");
    }
    const fs::path shown = dir.path_ / part;
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int next = ::openat(dir.fd_, part.c_str(), flags);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(dir.fd_, part.c_str(), 0777) != 0 && errno != EEXIST) {
        return io_error("cannot create directory", shown, errno);
      }
      next = ::openat(dir.fd_, part.c_str(), flags);
    }
    if (next < 0) {
      if (errno == ELOOP || errno == ENOTDIR) return planted(dir.fd_, part, shown);
      return io_error("cannot open directory", shown, errno);
    }
    dir = CacheDir(next, shown);
  }
  return dir;
}

Result<CacheDir> CacheDir::open_below(const fs::path& root, const fs::path& dir, bool create) {
  auto normal = [](const fs::path& p) {
    fs::path n = p.lexically_normal();
    return n.has_filename() || n == n.root_path() ? n : n.parent_path();  // no trailing "/"
  };
  const fs::path relative = normal(dir).lexically_relative(normal(root));
  if (relative == ".") return open(root, {}, create);
  if (relative.empty() || *relative.begin() == "..") {
    return make_error(ErrorCode::unsafe, "not inside the cache " + root.string(), dir.string(),
                      "this is a bug: please report it");
  }
  return open(root, relative, create);
}

CacheDir::CacheDir(CacheDir&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

CacheDir& CacheDir::operator=(CacheDir&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

CacheDir::~CacheDir() {
  if (fd_ >= 0) ::close(fd_);
}

int CacheDir::open_file(std::string_view name, int flags, mode_t mode) const {
  return ::openat(fd_, std::string(name).c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
}

Result<int> CacheDir::open_regular(std::string_view name, int flags, mode_t mode) const {
  const std::string n(name);
  const int fd = open_file(n, flags | O_NONBLOCK, mode);
  if (fd < 0) {
    const int err = errno;
    // ELOOP: a link, not followed. ENXIO: a FIFO without a reader (write-only open). EISDIR.
    struct stat st {};
    if (::fstatat(fd_, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
      return not_regular(st.st_mode, path_ / n);
    }
    return io_error("cannot open", path_ / n, err);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error("cannot stat", path_ / n, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return not_regular(st.st_mode, path_ / n);
  }
  return fd;
}

void CacheDir::remove(std::string_view name) const {
  ::unlinkat(fd_, std::string(name).c_str(), 0);
}

namespace {

// Empties the directory `fd` (not closed here), depth first, never following a link: an entry
// unlinkat() refuses as a directory is opened O_NOFOLLOW relative to `fd` and emptied in turn.
// The names are read first, so removing does not race the directory stream. Returns the first
// errno, 0 when all went.
int remove_contents(int fd) {
  std::vector<std::string> names;
  const int listed = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  DIR* d = listed < 0 ? nullptr : ::fdopendir(listed);
  if (d == nullptr) {
    const int err = errno;
    if (listed >= 0) ::close(listed);
    return err;
  }
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  int first = 0;
  for (const std::string& n : names) {
    if (::unlinkat(fd, n.c_str(), 0) == 0 || errno == ENOENT) continue;
    if (errno != EISDIR && errno != EPERM) {
      if (first == 0) first = errno;
      continue;
    }
    const int sub = ::openat(fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub >= 0) {
      const int err = remove_contents(sub);
      ::close(sub);
      if (first == 0) first = err;
    }
    if (::unlinkat(fd, n.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT && first == 0) {
      first = errno;
    }
  }
  return first;
}

}  // namespace

Result<void> CacheDir::remove_all(std::string_view name) const {
  const std::string n(name);
  if (::unlinkat(fd_, n.c_str(), 0) == 0 || errno == ENOENT) return ok();
  if (errno != EISDIR && errno != EPERM) return io_error("cannot remove", path_ / n, errno);
  int err = 0;
  const int sub = ::openat(fd_, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (sub >= 0) {
    err = remove_contents(sub);
    ::close(sub);
  }
  if (::unlinkat(fd_, n.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT && err == 0) err = errno;
  if (err != 0) return io_error("cannot remove", path_ / n, err);
  return ok();
}

Result<void> CacheDir::write_atomic(std::string_view name, std::string_view bytes,
                                    mode_t mode) const {
  return write_atomic_at(fd_, name, bytes, mode, path_);
}

Result<void> CacheDir::replace_symlink(std::string_view name, std::string_view target) const {
  const std::string temp = unique_temp_path(std::string(name)).string();
  if (::symlinkat(std::string(target).c_str(), fd_, temp.c_str()) != 0) {
    return io_error("cannot create symlink", path_ / temp, errno);
  }
  if (::renameat(fd_, temp.c_str(), fd_, std::string(name).c_str()) != 0) {
    const int err = errno;
    ::unlinkat(fd_, temp.c_str(), 0);
    Error e = io_error("cannot move symlink into place", path_ / std::string(name), err);
    e.hint = "a directory may be in the way; remove it";
    return e;
  }
  return ok();
}

Result<void> CacheDir::publish_from(const CacheDir& from, std::string_view temp,
                                    std::string_view name) const {
  const std::string t(temp);
  auto fd = from.open_regular(t, O_RDONLY);
  if (!fd) return std::move(fd).error();
  const int synced = ::fsync(*fd);
  const int err = errno;
  ::close(*fd);
  if (synced != 0) return io_error("fsync failed", from.path_ / t, err);
  if (::renameat(from.fd_, t.c_str(), fd_, std::string(name).c_str()) != 0) {
    return io_error("cannot rename " + t + " into place", path_ / std::string(name), errno);
  }
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != ENOTSUP && errno != EBADF) {
    return io_error("fsync of directory failed", path_, errno);
  }
  return ok();
}

Result<void> CacheDir::rename(std::string_view from, std::string_view to) const {
  if (::renameat(fd_, std::string(from).c_str(), fd_, std::string(to).c_str()) != 0) {
    return io_error("cannot move " + std::string(from) + " into place", path_ / std::string(to),
                    errno);
  }
  return ok();
}

}  // namespace kernels
