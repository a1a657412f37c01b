#include "blob_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "hub/interrupt.h"
#include "kernels/lockfile/cache_dir.h"

namespace kernels::cli {
namespace {

enum class Attempt { acquired, busy, unsupported };

Attempt lock_once(int fd) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return Attempt::acquired;
  if (errno == EWOULDBLOCK || errno == EINTR) return Attempt::busy;
  return Attempt::unsupported;  // ENOLCK, EOPNOTSUPP, ...: behave as if locked
}

int open_lock_file(const std::filesystem::path& path) {
  // <root>/.locks/<repo folder>/<etag>.lock (CacheLayout::lock_path): .locks and the repo
  // folder are opened from the root without following links (cache_dir.h), and the lock file
  // itself with O_NOFOLLOW, so a symlink planted at any of them must not make us (maybe root)
  // create or truncate a file elsewhere. The open then fails and the download goes on without
  // the lock, which costs at most a duplicate transfer. 0664: a cache shared by a group stays
  // lockable by all its members.
  const std::filesystem::path repo_dir = path.parent_path();
  auto dir = CacheDir::open_below(repo_dir.parent_path().parent_path(), repo_dir, true);
  if (!dir) {
    errno = dir.error().code == ErrorCode::unsafe ? ELOOP : EACCES;
    return -1;
  }
  return dir->open_file(path.filename().string(), O_RDWR | O_CREAT, 0664);
}

// The holder writes its pid into the lock file, so that a process waiting for it can say whom it
// waits for; the file's content means nothing else (lock files are never deleted).
void record_holder(int fd) {
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) {
    [[maybe_unused]] ssize_t n = ::pwrite(fd, pid.data(), pid.size(), 0);
  }
}

std::string holder_of(int fd) {
  char buffer[32] = {};
  const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  long pid = 0;
  if (n > 0) {
    auto [p, ec] = std::from_chars(buffer, buffer + n, pid);
    if (ec == std::errc() && pid > 0 && (p == buffer + n || *p == '\n')) {
      return "process " + std::to_string(pid);
    }
  }
  return "another process";
}

std::string seconds_text(std::chrono::milliseconds ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g s", static_cast<double>(ms.count()) / 1000.0);
  return buffer;
}

}  // namespace

Result<BlobLockPolicy> BlobLockPolicy::from_env(const EnvLookup& env) {
  BlobLockPolicy policy;
  policy.enabled = !env_truthy(env, "KERNELS_DISABLE_FLOCK");
  if (const std::optional<std::string> t = env("KERNELS_LOCK_TIMEOUT"); t && !t->empty()) {
    // Checked before any conversion: inf or 1e308 seconds would overflow the integer
    // milliseconds (undefined behaviour), and nan, -1 or abc must not silently mean the default.
    double seconds = 0;
    std::string_view s(*t);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), seconds);
    if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(seconds) || seconds < 0 ||
        seconds > kMaxLockTimeoutSeconds) {
      return make_error(ErrorCode::usage,
                        "KERNELS_LOCK_TIMEOUT must be a number of seconds from 0 to " +
                            std::to_string(static_cast<long>(kMaxLockTimeoutSeconds)),
                        "KERNELS_LOCK_TIMEOUT=" + std::string(s.substr(0, 40)),
                        "set it to e.g. 600, or unset it for the default (600 s)");
    }
    policy.timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
  }
  return policy;
}

BlobLock::~BlobLock() { release(); }

BlobLock::BlobLock(BlobLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

BlobLock& BlobLock::operator=(BlobLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void BlobLock::release() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
    fd_ = -1;
  }
}

std::optional<BlobLock> BlobLock::try_acquire(const std::filesystem::path& path,
                                              const BlobLockPolicy& policy) {
  BlobLock lock;
  if (!policy.enabled) return lock;
  int fd = open_lock_file(path);
  if (fd < 0) return lock;  // read-only cache: nothing to coordinate with
  switch (lock_once(fd)) {
    case Attempt::acquired:
      record_holder(fd);
      lock.fd_ = fd;
      return lock;
    case Attempt::unsupported: ::close(fd); return lock;
    case Attempt::busy: ::close(fd); return std::nullopt;
  }
  ::close(fd);
  return std::nullopt;
}

Result<BlobLock> BlobLock::acquire(const std::filesystem::path& path, const BlobLockPolicy& policy,
                                   const std::function<void(const std::string&)>& on_blocked) {
  BlobLock lock;
  if (!policy.enabled) return lock;
  int fd = open_lock_file(path);
  if (fd < 0) return lock;
  auto deadline = std::chrono::steady_clock::now() + policy.timeout;
  auto pause = std::chrono::milliseconds(5);
  for (;;) {
    switch (lock_once(fd)) {
      case Attempt::acquired:
        record_holder(fd);
        lock.fd_ = fd;
        return lock;
      case Attempt::unsupported: ::close(fd); return lock;
      case Attempt::busy: break;
    }
    if (on_blocked && pause == std::chrono::milliseconds(5)) on_blocked(holder_of(fd));
    if (hub::interrupted()) {
      ::close(fd);
      return make_error(ErrorCode::lock_timeout, "interrupted while waiting for a download lock",
                        path.string());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd);
      return make_error(ErrorCode::lock_timeout,
                        "another process held this download lock for longer than " +
                            seconds_text(policy.timeout),
                        path.string(),
                        "if no other `kernels download` is running, the lock holder is stuck on "
                        "a slow transfer; raise KERNELS_LOCK_TIMEOUT (seconds) or set "
                        "KERNELS_DISABLE_FLOCK=1");
    }
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(200)) pause *= 2;
  }
}

}  // namespace kernels::cli
