#include "command_context.h"

#include <charconv>
#include <filesystem>
#include <system_error>
#include <utility>

namespace kernels::cli {
namespace {

// --offline, or the environment's switch: decided once, before any command looks.
GlobalOptions resolve_offline(GlobalOptions options) {
  options.offline = hub_offline({options.offline, options.jobs});
  return options;
}

}  // namespace

CommandContext::CommandContext(GlobalOptions options, const Console& console)
    : options_(resolve_offline(std::move(options))),
      console_(console),
      cache_(options_.cache_dir.empty() ? resolve_cache_root()
                                        : std::filesystem::path(options_.cache_dir)) {}

Result<HubClient*> CommandContext::hub(const std::string& need) {
  if (options_.offline) {
    return make_error(ErrorCode::offline_not_cached,
                      "offline mode is on and this is not in the cache", need,
                      "run the same command once with network access (without --offline and "
                      "HF_HUB_OFFLINE), or copy a cache that has it");
  }
  if (!hub_) {
    Result<HubOptions> hub_options = hub_options_from_env({options_.offline, options_.jobs});
    if (!hub_options) return hub_options.error();
    hub_options->user_agent = std::string("kernels-cpp/") + KERNELS_CLI_VERSION;
    hub_options->log = [this](HubOptions::LogLevel level, std::string_view line) {
      if (level == HubOptions::LogLevel::warning) {
        console_.warn(line);
      } else {
        console_.debug(line);
      }
    };
    hub_options->log_wire = options_.verbosity >= 2;
    console_.debug("Hub endpoint " + hub_options->endpoint);
    Result<std::unique_ptr<HubClient>> client = HubClient::create(std::move(*hub_options));
    if (!client) return client.error();
    hub_ = std::move(*client);
  }
  return hub_.get();
}

HubAccess CommandContext::hub_access(const std::string& need) {
  return [this, need]() { return hub(need); };
}

std::uint64_t CommandContext::hub_requests() const { return hub_ ? hub_->stats().hub_requests : 0; }
std::uint64_t CommandContext::http_requests() const { return hub_ ? hub_->stats().requests : 0; }

Result<RepoTree> CommandContext::tree(const std::string& repo_id, const std::string& commit) {
  std::error_code ec;
  if (std::filesystem::exists(cache_.tree_path(repo_id, commit), ec)) {
    Result<RepoTree> cached = cache_.read_tree(repo_id, commit);
    if (cached) return cached;
    console_.warn(cached.error().message() + " (listing the tree again)");
  }
  Result<HubClient*> client = hub("the file list of " + repo_id + "@" + commit);
  if (!client) return client.error();
  Result<RepoTree> listed = (*client)->list_tree(repo_id, commit);
  if (!listed) return listed.error();
  if (Result<void> w = cache_.write_tree(repo_id, commit, *listed); !w) {
    console_.debug("could not cache the tree: " + w.error().message());
  }
  return listed;
}

Result<std::map<int, std::string>> CommandContext::versions(const std::string& repo_id) {
  if (!options_.offline) {
    Result<HubClient*> client = hub();
    if (!client) return client.error();
    Result<RepoRefs> refs = (*client)->list_refs(repo_id);
    if (!refs) return refs.error();
    return refs->versions();
  }
  // Offline: what refs/vN files the cache holds (written by our download, or by huggingface_hub).
  std::map<int, std::string> found;
  std::filesystem::path refs_dir = cache_.ref_path(repo_id, "v0").parent_path();
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(refs_dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() < 2 || name[0] != 'v') continue;
    int n = 0;
    auto [p, perr] = std::from_chars(name.data() + 1, name.data() + name.size(), n);
    if (perr != std::errc() || p != name.data() + name.size()) continue;
    Result<std::string> commit = cache_.read_ref(repo_id, name);
    if (commit) found[n] = *commit;
  }
  return found;
}

}  // namespace kernels::cli
