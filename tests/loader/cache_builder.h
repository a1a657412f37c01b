// Real caches for loader tests, written with the lockfile library's own APIs (CacheLayout,
// compute_variant_hashes, write_lockfile), laid out exactly as `kernels download` leaves them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels::loader::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct BundleFile {
  std::string rel_path;  // inside build/<variant>/
  std::vector<std::uint8_t> bytes;
  bool lfs = false;  // binaries are LFS files on the Hub
};

struct ManifestSpec {
  std::string family = "fa3";
  std::uint32_t params_abi = 0;  // 0: this library's kParamsAbiVersion
  std::string arch = "sm90a";
  std::vector<std::string> kernels;  // empty: every kernel of the launch plan
  int threads_delta = 0;             // added to every kernel's threads (a config mismatch)
};

std::string manifest_json(const ManifestSpec& spec);

// attention.cubin (a fake image with `image_kernels`, default: the manifest's) + manifest.json.
std::vector<BundleFile> bundle_files(const ManifestSpec& spec,
                                     std::optional<std::vector<std::string>> image_kernels = {});

struct CachedRepo {
  std::string repo_id;
  std::string sha;
  RepoTree tree;
};

// Publishes `variants` (name -> files) of `repo_id` into the cache at `root` (blobs, snapshot
// links, trees/<sha>.json) and returns what it wrote.
CachedRepo add_repo(const std::filesystem::path& root, const std::string& repo_id,
                    const std::map<std::string, std::vector<BundleFile>>& variants);

// <root>/kernels.lock (or `lock_path`) pinning these repos, as `kernels lock` writes it.
void write_lock(const std::filesystem::path& lock_path, const std::vector<CachedRepo>& repos);

// Path of a file's blob in the cache (to damage it).
std::filesystem::path blob_of(const std::filesystem::path& root, const CachedRepo& repo,
                              const std::string& repo_path);

}  // namespace kernels::loader::testing
