#include "project.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <set>
#include <system_error>

#include "kernels/lockfile/variant_hash.h"

namespace kernels::cli {

bool env_truthy(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return false;
  std::string s(v);
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s == "1" || s == "ON" || s == "YES" || s == "TRUE";
}

CommandContext::CommandContext(GlobalOptions options, const Console& console)
    : options_(std::move(options)),
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
    Result<HubOptions> hub_options = hub_options_from_env();
    if (!hub_options) return hub_options.error();
    hub_options->offline = false;
    hub_options->user_agent = std::string("kernels-cpp/") + KERNELS_CLI_VERSION;
    if (options_.jobs > 0) {
      hub_options->jobs = options_.jobs;
    } else if (const char* jobs = std::getenv("KERNELS_JOBS"); jobs && *jobs) {
      int n = 0;
      std::string_view s(jobs);
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec != std::errc() || p != s.data() + s.size() || n < 1 || n > 256) {
        return make_error(ErrorCode::usage, "KERNELS_JOBS must be a number from 1 to 256",
                          "KERNELS_JOBS=" + std::string(s.substr(0, 40)),
                          "fix or unset KERNELS_JOBS, or pass --jobs N");
      }
      hub_options->jobs = n;
    }
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

Result<Lockfile> read_project_lock(const std::filesystem::path& project_dir) {
  std::filesystem::path path = project_dir / "kernels.lock";
  Result<Lockfile> lock = read_lockfile(path);
  if (!lock && lock.error().code == ErrorCode::lockfile_missing) {
    return make_error(ErrorCode::lockfile_missing,
                      "No kernels.lock file found in: " + project_dir.string(), path.string(),
                      "run `kernels lock " + project_dir.string() + "` first");
  }
  return lock;
}

std::map<std::string, int> project_versions(const std::filesystem::path& project_dir) {
  std::map<std::string, int> versions;
  std::error_code ec;
  if (!std::filesystem::exists(project_dir / "pyproject.toml", ec)) return versions;
  Result<std::vector<KernelDependency>> deps = read_pyproject(project_dir / "pyproject.toml");
  if (!deps) return versions;
  for (const auto& d : *deps) versions.emplace(d.repo_id, d.version);
  return versions;
}

std::vector<std::string> tree_variants(const RepoTree& tree) {
  std::set<std::string> names;
  for (const TreeEntry& e : tree) {
    if (e.path.rfind("build/", 0) != 0) continue;
    std::string rest = e.path.substr(6);
    auto slash = rest.find('/');
    if (slash == std::string::npos) {
      if (!e.is_file) names.insert(rest);
      continue;
    }
    names.insert(rest.substr(0, slash));
  }
  return {names.begin(), names.end()};
}

std::vector<TreeEntry> variant_files(const RepoTree& tree, const std::string& variant) {
  std::vector<TreeEntry> files;
  std::string prefix = "build/" + variant + "/";
  for (const TreeEntry& e : tree) {
    if (!e.is_file || e.path.rfind(prefix, 0) != 0) continue;
    if (e.path.size() >= 4 && e.path.compare(e.path.size() - 4, 4, ".pyc") == 0) continue;
    if (e.path.find("/__pycache__/") != std::string::npos) continue;
    files.push_back(e);
  }
  return files;
}

Result<RepoRef> parse_repo_ref(const std::string& text) {
  RepoRef ref;
  auto at = text.find('@');
  ref.repo_id = text.substr(0, at);
  if (at != std::string::npos) ref.revision = text.substr(at + 1);
  if (!is_repo_id(ref.repo_id) || (at != std::string::npos && ref.revision.empty())) {
    return make_error(ErrorCode::usage, "expected a repo id like org/name (optionally @revision)",
                      text);
  }
  return ref;
}

}  // namespace kernels::cli
