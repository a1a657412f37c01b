// Opening inside the cache without following links. Every directory from the cache root down is
// opened with openat(O_DIRECTORY | O_NOFOLLOW) relative to the one above it, and files are
// created, replaced and linked relative to the last one, so a symlink planted at any level (also
// between a check and the use) fails the walk instead of leading an open, a create or a rename
// out of the cache. The root itself may be a symlink the user made (~/.cache -> /data/cache), as
// cache_safety.h allows. Part of the cache contract: the CLI writes through it.
#pragma once

#include <sys/types.h>
#include <filesystem>
#include <optional>
#include <string_view>

#include "kernels/lockfile/error.h"

namespace kernels {

class CacheDir {
 public:
  // The directory root / relative. `relative` is plain components (no "..", ".", or root); empty
  // means the root. `create`: missing directories are made (mode 0777 less the umask). A
  // component that is a symlink or not a directory is ErrorCode::unsafe (exit 11) naming it;
  // other failures are ErrorCode::io.
  static Result<CacheDir> open(const std::filesystem::path& root,
                               const std::filesystem::path& relative, bool create);
  // The same for a directory given as a path below `root` (e.g. a CacheLayout accessor's parent).
  static Result<CacheDir> open_below(const std::filesystem::path& root,
                                     const std::filesystem::path& dir, bool create);
  // The directory fd() / relative, walked from this one the same way (this one stays open).
  Result<CacheDir> subdir(const std::filesystem::path& relative, bool create) const;

  CacheDir(CacheDir&& other) noexcept;
  CacheDir& operator=(CacheDir&& other) noexcept;
  CacheDir(const CacheDir&) = delete;
  CacheDir& operator=(const CacheDir&) = delete;
  ~CacheDir();

  int fd() const { return fd_; }
  const std::filesystem::path& path() const { return path_; }

  // openat(fd(), name, flags | O_NOFOLLOW | O_CLOEXEC, mode) for one component `name`: a link
  // there fails (ELOOP). Returns the fd, or -1 with errno set.
  int open_file(std::string_view name, int flags, mode_t mode = 0644) const;
  // open_file plus O_NONBLOCK and an fstat, for a file of ours: a symlink at `name`, or a FIFO,
  // device or directory, is ErrorCode::unsafe (exit 11) naming it, never followed, waited on or
  // read; other failures are ErrorCode::io. The fd is the caller's to close.
  Result<int> open_regular(std::string_view name, int flags, mode_t mode = 0644) const;
  // unlinkat(fd(), name): the entry itself goes (a link, never its target); a missing one is fine.
  void remove(std::string_view name) const;
  // The entry `name` and, when it is a directory, everything below it, each removed with unlinkat
  // relative to its own directory's fd (opened O_NOFOLLOW): a link anywhere below is removed,
  // never followed. A missing `name` is fine; the first failure is returned after the rest is
  // tried.
  Result<void> remove_all(std::string_view name) const;
  // write_atomic_at (atomic.h) in this directory.
  Result<void> write_atomic(std::string_view name, std::string_view bytes,
                            mode_t mode = 0644) const;
  // A symlink `name` -> `target`, made under a temp name and renamed over whatever is at `name`.
  Result<void> replace_symlink(std::string_view name, std::string_view target) const;
  // publish_file (atomic.h) into this directory from another one (a staging directory of ours):
  // fsync(from/temp), renameat(from/temp -> name), fsync of this directory. Both ends relative
  // to their directory fds; a link or non-regular file at `temp` is refused (exit 11).
  Result<void> publish_from(const CacheDir& from, std::string_view temp,
                            std::string_view name) const;
  // renameat(from, to) within this directory.
  Result<void> rename(std::string_view from, std::string_view to) const;

 private:
  CacheDir(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  static Result<CacheDir> walk(CacheDir dir, const std::filesystem::path& relative, bool create);
  int fd_ = -1;
  std::filesystem::path path_;
};

}  // namespace kernels
