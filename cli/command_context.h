// What every command is handed: the global options, the console, the cache, and the Hub client
// (made on first use), plus the Hub facts several commands read through the cache (trees,
// published versions).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "blob_lock.h"
#include "console.h"
#include "hub/hub_client.h"
#include "installer.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/error.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels::cli {

struct GlobalOptions {
  bool offline = false;  // --offline, or HF_HUB_OFFLINE (resolved by hub_env)
  bool quiet = false;
  int verbosity = 0;
  bool json = false;
  std::string cache_dir;  // --cache-dir; default from the environment (cache.h)
  int jobs = 0;           // --jobs: parallel transfers; 0 = KERNELS_JOBS, else 8
};

class CommandContext {
 public:
  // `options` as the command line gave them; the environment's Hub settings are added here.
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

}  // namespace kernels::cli
