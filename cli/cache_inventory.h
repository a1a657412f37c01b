// What the cache holds, for a person at a shell (`kernels cache ...`): repos, revisions, the refs
// that name them, variants present, sizes, last use, and what is incomplete. Read-only: scanning
// never writes, so it works on a read-only cache.
#pragma once

#include <cstdint>
#include <ctime>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/error.h"
#include "kernels/lockfile/lockfile.h"

namespace kernels::cli {

struct VariantPresence {
  std::string variant;
  std::size_t files_expected = 0;  // per the cached tree (0 when no tree is cached)
  std::size_t files_present = 0;
  std::uint64_t bytes = 0;
  bool complete() const { return files_present == files_expected; }
};

struct RevisionInfo {
  std::string commit;
  std::vector<std::string> refs;  // "v1", "main", ...
  bool tree_cached = false;
  std::vector<VariantPresence> variants;
  std::size_t other_files = 0;  // snapshot files outside build/
  std::uint64_t bytes = 0;      // what the snapshot's files take (shared blobs counted once)
  std::time_t last_used = 0;
  bool complete() const;
};

struct RepoInfo {
  std::string repo_id;
  std::vector<RevisionInfo> revisions;
  std::size_t blobs = 0;
  std::uint64_t blob_bytes = 0;
  std::size_t temp_files = 0;  // *.incomplete left by interrupted downloads
  std::time_t last_used = 0;
};

RepoInfo scan_repo(const CacheLayout& cache, const std::string& repo_id);
// Staging directories of `kernels unpack` (<root>/.kernels-unpack.*.incomplete); one that
// outlives its process is left by a killed unpack.
std::vector<std::filesystem::path> unpack_staging_dirs(const CacheLayout& cache);
std::vector<RepoInfo> scan_cache(const CacheLayout& cache);

// Every (repo id, commit) the given lockfiles reference.
using LockedRevisions = std::set<std::pair<std::string, std::string>>;

struct PruneAction {
  std::string what;  // "revision", "blob", "temp file", "repo"
  std::string repo_id;
  std::string path;
  std::uint64_t bytes = 0;
};

// Revisions no lockfile references, then blobs no remaining snapshot or tree uses, temp files
// older than an hour or left by a download that died (its blob lock is free: see orphaned_temp in
// cache_inventory.cpp), and unpack staging directories older than an hour. A repo with a
// download in flight (a temp file younger than an hour whose lock is held or cannot be checked,
// or no snapshot yet and files younger than an hour) is left alone. With dry_run nothing is
// removed.
Result<std::vector<PruneAction>> prune_cache(const CacheLayout& cache, const LockedRevisions& keep,
                                             bool dry_run);

// Removes one revision (snapshot, tree, refs naming it) or, with an empty commit, the whole repo;
// then blobs that nothing references any more. Lock files stay (deleting them breaks waiters).
Result<std::vector<PruneAction>> remove_from_cache(const CacheLayout& cache,
                                                   const std::string& repo_id,
                                                   const std::string& commit);

// Carries out a list of prune_cache or remove_from_cache, through descriptors: each action's
// directory is opened from the cache root down without following links (CacheDir::open_below)
// and the entry removed relative to it (CacheDir::remove_all), so a link planted at any level is
// ErrorCode::unsafe (exit 11) naming it, and nothing outside the cache is removed. Every
// directory is opened and every entry looked at before the first removal (a link planted before
// the command removes nothing), then again for each removal (one planted since is refused too).
// Returns what was removed: an entry already gone is left out (another process removed it), one
// inside a directory removed before it is kept (it went with it). With dry_run nothing is
// removed and what is there is returned.
Result<std::vector<PruneAction>> remove_listed(const CacheLayout& cache,
                                               const std::vector<PruneAction>& actions,
                                               bool dry_run);

// Removes `path` (below the cache root) and everything under it the same way; false when
// nothing was there (its directory is missing too).
Result<bool> remove_in_cache(const CacheLayout& cache, const std::filesystem::path& path);

std::string format_time(std::time_t t);  // "2026-11-23 21:40" UTC, "-" for 0

}  // namespace kernels::cli
