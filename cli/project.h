// What every command shares: the global options, the cache, the lazily made Hub client, and the
// project inputs (pyproject.toml, kernels.lock) and Hub facts (versions, trees) they read.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blob_lock.h"
#include "console.h"
#include "hub/hub_client.h"
#include "installer.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/lockfile.h"
#include "kernels/lockfile/pyproject.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels::cli {

struct GlobalOptions {
  bool offline = false;  // --offline or HF_HUB_OFFLINE
  bool quiet = false;
  int verbosity = 0;
  bool json = false;
  std::string cache_dir;  // --cache-dir; default from the environment (cache.h)
  int jobs = 0;           // --jobs: parallel transfers; 0 = KERNELS_JOBS, else 8
};

class CommandContext {
 public:
  CommandContext(GlobalOptions options, const Console& console);

  const GlobalOptions& options() const { return options_; }
  const Console& console() const { return console_; }
  const CacheLayout& cache() const { return cache_; }
  bool offline() const { return options_.offline; }
  // Read from the environment on each call, so a bad value is an error of the command using it.
  Result<BlobLockPolicy> locks() const { return BlobLockPolicy::from_env(); }

  // The Hub client, made on first call. Offline: ErrorCode::offline_not_cached naming `need`.
  Result<HubClient*> hub(const std::string& need = "the Hub");
  HubAccess hub_access(const std::string& need);
  // Requests sent so far to the Hub's own origin, and to any host (CDN redirects included);
  // 0 when no client was made.
  std::uint64_t hub_requests() const;
  std::uint64_t http_requests() const;

  // The tree at `commit`: trees/<commit>.json when cached, else one recursive listing, which is
  // then cached (unless the cache is read-only: then a warning at -v only).
  Result<RepoTree> tree(const std::string& repo_id, const std::string& commit);

  // Published versions (branches vN), from the Hub; offline from refs/vN in the cache.
  Result<std::map<int, std::string>> versions(const std::string& repo_id);

 private:
  GlobalOptions options_;
  const Console& console_;
  CacheLayout cache_;
  std::unique_ptr<HubClient> hub_;
};

bool env_truthy(const char* name);  // 1/ON/YES/TRUE, case-insensitive (huggingface_hub's rule)

// <dir>/kernels.lock; missing -> ErrorCode::lockfile_missing with Python's wording and a hint.
Result<Lockfile> read_project_lock(const std::filesystem::path& project_dir);

// Versions the project asks for (repo id -> N), when <dir>/pyproject.toml exists and parses.
std::map<std::string, int> project_versions(const std::filesystem::path& project_dir);

// Variant directories under build/ in a tree, sorted bytewise.
std::vector<std::string> tree_variants(const RepoTree& tree);
// Files of build/<variant>/ (bytecode excluded, as Python excludes it from downloads).
std::vector<TreeEntry> variant_files(const RepoTree& tree, const std::string& variant);

// "org/name[@rev]" split.
struct RepoRef {
  std::string repo_id;
  std::string revision;  // empty when not given
};
Result<RepoRef> parse_repo_ref(const std::string& text);

}  // namespace kernels::cli
