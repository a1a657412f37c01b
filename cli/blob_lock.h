// Per-blob advisory lock: .locks/kernels--org--name/<etag>.lock, held with flock while one
// process downloads that blob, so racing processes do not fetch the same bytes twice.
//
// Correctness never depends on it: every download goes to a unique temp file, is verified, and
// is renamed into place, so a lock that silently does nothing (NFS, Lustre, GPFS) only costs
// duplicate transfers. KERNELS_DISABLE_FLOCK=1 turns locking off (to test exactly that), and
// KERNELS_LOCK_TIMEOUT (seconds, default 600) bounds the wait; lock files are never deleted.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "kernels/lockfile/env.h"
#include "kernels/lockfile/error.h"

namespace kernels::cli {

// A week: longer is a mistake, not a wait.
inline constexpr double kMaxLockTimeoutSeconds = 7 * 24 * 3600;

struct BlobLockPolicy {
  bool enabled = true;
  std::chrono::milliseconds timeout{600'000};
  // ErrorCode::usage naming the variable for a KERNELS_LOCK_TIMEOUT that is not a finite number
  // of seconds from 0 to kMaxLockTimeoutSeconds.
  // KERNELS_DISABLE_FLOCK is a boolean switch (env_truthy).
  static Result<BlobLockPolicy> from_env(const EnvLookup& env = process_env());
};

class BlobLock {
 public:
  BlobLock() = default;
  ~BlobLock();
  BlobLock(BlobLock&& other) noexcept;
  BlobLock& operator=(BlobLock&& other) noexcept;
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

  // Non-blocking: nullopt when another process holds it. A lock file that cannot be created
  // (read-only cache) or a filesystem without flock counts as acquired: see above.
  static std::optional<BlobLock> try_acquire(const std::filesystem::path& path,
                                             const BlobLockPolicy& policy);
  // Waits up to policy.timeout, then ErrorCode::lock_timeout naming the lock file. When the lock
  // is busy, `on_blocked` is called once, before the wait, with who holds it ("process 1234", or
  // "another process" when the holder did not record its pid, as Python's filelock does not).
  // A SIGINT/SIGTERM (hub/interrupt.h) ends the wait as a failure.
  static Result<BlobLock> acquire(
      const std::filesystem::path& path, const BlobLockPolicy& policy,
      const std::function<void(const std::string& holder)>& on_blocked = {});

  void release();

 private:
  int fd_ = -1;
};

}  // namespace kernels::cli
