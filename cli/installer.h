// The download engine: makes a set of files of one repo at one commit present in the cache.
//
// For each file: if snapshots/<commit>/<path> already resolves to a file of the expected size,
// nothing happens (the cache only ever holds verified bytes, so the warm path is stat-only and
// makes no request). Otherwise the blob is fetched under its per-blob lock into a unique temp
// file, checked while it streams (size and sha256 / git-blob sha1 from the tree listing), renamed
// into blobs/<etag>, passed through the caller's FileCheck if any, and linked into the snapshot.
// A blob that another process published while we waited for its lock is used as is (and checked
// the same way before it is linked).
//
// Interrupted (SIGINT/SIGTERM, hub/interrupt.h), the bytes a transfer already holds are kept as
// blobs/<etag>.incomplete (the name huggingface_hub resumes too, under the same blob lock); the
// next download of that blob takes it over and asks only for the rest (Range + If-Range, as
// after a network fault). `cache prune` removes such a file once no process holds its lock.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "blob_lock.h"
#include "console.h"
#include "hub/hub_client.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/env.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels::cli {

// Made on first use, so a warm run never builds a Hub client at all.
using HubAccess = std::function<Result<HubClient*>()>;

struct InstallReport {
  std::size_t files = 0;           // files asked for
  std::size_t already_cached = 0;  // present before we started
  std::size_t linked = 0;          // snapshot entries created this run
  std::size_t fetched = 0;         // downloaded by us
  std::uint64_t bytes_fetched = 0;
  std::vector<Error> errors;  // one per file that could not be made present
  bool ok() const { return errors.empty(); }
};

// A check each file must pass, on its verified content (the blob), before its snapshot entry is
// made, i.e. before it becomes visible (`download` checks the variant's metadata.json digest).
using FileCheck =
    std::function<Result<void>(const TreeEntry& entry, const std::filesystem::path& content)>;

// KERNELS_FSYNC (a boolean switch, env_truthy): fsync every blob before its rename. Read once
// per process by the installer.
bool blob_fsync_requested(const EnvLookup& env = process_env());

// blobs/<etag>.incomplete: where an interrupted download's bytes wait to be resumed.
std::filesystem::path resumable_partial_path(const std::filesystem::path& blob);

// True when snapshots/<commit>/<path> resolves to a regular file of the entry's content size.
bool snapshot_file_present(const CacheLayout& cache, const std::string& repo_id,
                           const std::string& commit, const TreeEntry& entry);

InstallReport install_files(const CacheLayout& cache, const std::string& repo_id,
                            const std::string& commit, const std::vector<TreeEntry>& files,
                            const HubAccess& hub, const Console& console,
                            const BlobLockPolicy& locks, const FileCheck& check = nullptr);

}  // namespace kernels::cli
