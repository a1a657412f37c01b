// Who may write the cache. A cache that another local user can write is a cache they control:
// they can replace kernels.lock and the bundles it pins (the loader trusts <cache>/kernels.lock),
// or plant symlinks that make our next write land outside the cache. So, as ssh does for
// ~/.ssh and cargo for its home, the directories of the cache are checked before a command uses
// it: each must be a real directory (not a symlink), owned by this user or root, and writable by
// no one else. Group-writable is accepted only for a user-private group (named like the owner,
// with no other members: the umask 002 setups of Debian and Fedora). A cache shared on purpose
// opts out with KERNELS_ALLOW_SHARED_CACHE=1.
//
// Checked: the root, .locks and its repo folders, .kernels-projects and its project folders, each
// repo folder and its blobs/, snapshots/, refs/ and trees/, and each snapshots/<commit>. Writes
// and removals below them go through CacheDir (cache_dir.h), which never follows a link at any
// level. A path that does not exist yet is fine: we create it with this process's umask.
//
// Part of the cache contract, so both readers of the cache apply the same rule: the CLI before
// every command, the loader before it reads a lock or a bundle from the cache.
#pragma once

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/env.h"
#include "kernels/lockfile/error.h"

namespace kernels {

// ErrorCode::unsafe (exit 11) naming the first unsafe directory and the fix; ok() without a
// look when `env` has KERNELS_ALLOW_SHARED_CACHE on (env_truthy).
Result<void> check_cache_permissions(const CacheLayout& cache,
                                     const EnvLookup& env = process_env());

}  // namespace kernels
