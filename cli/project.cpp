#include "project.h"

#include <set>
#include <system_error>

#include "kernels/lockfile/lock_hashes.h"
#include "kernels/lockfile/pyproject.h"

namespace kernels::cli {

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

Result<void> require_variant_hashes(const Lockfile& lock, const std::filesystem::path& project_dir,
                                    std::string_view command) {
  if (lock.form != Lockfile::Form::dependency_list) return ok();
  for (const KernelLock& k : lock.kernels) {
    if (!k.variants.empty()) continue;
    return make_error(ErrorCode::lockfile_stale,
                      "kernels.lock.hashes records no variant hashes for " + dependency_name(k) +
                          ", and `kernels " + std::string(command) +
                          "` takes only variants it can verify",
                      lock_hashes_path(project_dir / "kernels.lock").string(),
                      "run `kernels lock " + project_dir.string() +
                          "`: it records them without changing kernels.lock");
  }
  return ok();
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
