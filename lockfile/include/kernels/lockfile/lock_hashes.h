// The hashes sidecar of a format 2 kernels.lock: `kernels.lock.hashes`, beside the lock.
//
// kernels 0.17's lock (format 2) pins commits only. This tool also records the git_lfs_concat
// hash of every variant of each locked commit, so that `download` refuses a Hub (or mirror) that
// serves other files for the commit, and `verify`, `pack`/`unpack` and the loader keep their
// tamper check after the Hub is gone. The Python package never reads this file, and a lock it
// rewrites simply leaves the sidecar's entries for other commits unused.
//
//   {
//     "version": 1,
//     "kernels": [
//       { "repo-id": "org/name", "commit": "<40 hex>",
//         "variants": { "<variant>": { "hash": "sha256-<64 hex>", "hash_type": "git_lfs_concat" } }
//         }
//     ]
//   }
//
// Rules: entries are keyed by (repo-id, commit), sorted, one per key; hashes apply to every lock
// entry with that repo and commit, and to nothing else. A missing sidecar is no error (the lock
// came from the Python package): readers then check what they can without it. A malformed one is
// ErrorCode::lockfile_invalid, like a malformed lock. Written with 2-space indent and a newline.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "kernels/lockfile/error.h"
#include "kernels/lockfile/lockfile.h"

namespace kernels {

inline constexpr int kLockHashesVersion = 1;

struct LockHashes {
  // (repo id, commit) -> variant -> hash
  std::map<std::pair<std::string, std::string>, std::map<std::string, VariantLock>> commits;
  bool operator==(const LockHashes&) const = default;
};

// <lockfile>.hashes: kernels.lock -> kernels.lock.hashes.
std::filesystem::path lock_hashes_path(const std::filesystem::path& lockfile);

Result<LockHashes> parse_lock_hashes(std::string_view text,
                                     std::string_view source = "kernels.lock.hashes");
// nullopt when there is no such file.
Result<std::optional<LockHashes>> read_lock_hashes(const std::filesystem::path& path);

// The hashes the lock's entries carry (entries without variants are left out).
LockHashes lock_hashes_of(const Lockfile& lock);
// Fills KernelLock::variants of every entry whose (repo, commit) the sidecar names.
void apply_lock_hashes(Lockfile& lock, const LockHashes& hashes);

std::string serialize_lock_hashes(const LockHashes& hashes);
// serialize_lock_hashes + write_atomic.
Result<void> write_lock_hashes(const std::filesystem::path& path, const LockHashes& hashes);

}  // namespace kernels
