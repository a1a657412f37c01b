// `kernels lock [PROJECT_DIR] [--locked]`: pyproject.toml -> kernels.lock, byte-identical to the
// Python `kernels lock` (hf-kernels.md §1.3). Per dependency: kernel-status.toml redirect at main,
// refs -> branch vN, one recursive tree listing, every variant hash. --locked checks instead.
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "commands.h"
#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/pyproject.h"
#include "kernels/lockfile/variant_hash.h"

namespace kernels::cli {
namespace {

struct LockArgs {
  std::string project_dir = ".";
  bool locked = false;
};

// The redirect a repo's kernel-status.toml declares at main, if any.
Result<std::optional<std::string>> redirect_of(CommandContext& ctx, const std::string& repo_id) {
  if (ctx.offline()) return std::optional<std::string>{};  // checked online only, like Python
  Result<HubClient*> hub = ctx.hub();
  if (!hub) return hub.error();
  Result<std::optional<std::string>> text = (*hub)->fetch_text(repo_id, "main", "kernel-status.toml");
  if (!text) {
    // Python ignores a missing repo here; the refs request below reports it properly.
    if (text.error().code == ErrorCode::http_permanent) return std::optional<std::string>{};
    return text.error();
  }
  if (!*text) return std::optional<std::string>{};
  std::string source = repo_id + "@main:kernel-status.toml";
  toml::table status;
  try {
    status = toml::parse(**text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << source << ":" << e.source().begin.line << ":" << e.source().begin.column;
    return make_error(ErrorCode::lockfile_invalid, std::string(e.description()), where.str(),
                      "the repo's kernel-status.toml is malformed; tell its maintainers");
  }
  if (status["kind"].value_or(std::string()) != "redirect") return std::optional<std::string>{};
  std::string destination = status["destination"].value_or(std::string());
  if (!is_repo_id(destination)) {
    return make_error(ErrorCode::lockfile_invalid,
                      "redirect destination \"" + destination + "\" is not a repo id", source);
  }
  return std::optional<std::string>{destination};
}

// `checking`: --locked, which resolves the same way but writes nothing, and says so.
Result<KernelLock> lock_dependency(CommandContext& ctx, const KernelDependency& dep, bool checking) {
  std::string repo_id = dep.repo_id;
  Result<std::optional<std::string>> redirect = redirect_of(ctx, repo_id);
  if (!redirect) return redirect.error();
  if (*redirect) {
    ctx.console().warn("'" + repo_id + "' redirected to '" + **redirect + "'");
    repo_id = **redirect;
  }
  Result<std::map<int, std::string>> versions = ctx.versions(repo_id);
  if (!versions) return versions.error();
  auto found = versions->find(dep.version);
  if (found == versions->end()) {
    std::string available;
    for (const auto& [n, commit] : *versions) {
      available += (available.empty() ? "" : ", ") + std::to_string(n);
    }
    return make_error(ErrorCode::usage,
                      "Version " + std::to_string(dep.version) +
                          " not found, available versions: " + available,
                      repo_id,
                      ctx.offline() ? "offline, only versions whose refs/vN is cached are known"
                                    : "change the version in pyproject.toml");
  }
  if (!versions->empty() && versions->rbegin()->first > dep.version) {
    ctx.console().warn("You are using version " + std::to_string(dep.version) + " of '" +
                       repo_id + "', but version " + std::to_string(versions->rbegin()->first) +
                       " is available.");
  }
  const std::string& commit = found->second;
  if (!is_commit_sha(commit)) {
    return make_error(ErrorCode::lockfile_invalid,
                      "branch v" + std::to_string(dep.version) + " points at \"" + commit +
                          "\", not a 40-hex commit",
                      repo_id);
  }
  Result<RepoTree> tree = ctx.tree(repo_id, commit);
  if (!tree) return tree.error();
  KernelLock lock;
  lock.repo_id = repo_id;
  lock.sha = commit;
  lock.variants = compute_variant_hashes(*tree);
  const std::size_t n = lock.variants.size();
  ctx.console().info(std::string(checking ? "Resolved " : "Locked ") + repo_id + " v" +
                     std::to_string(dep.version) + " at " + commit + " (" + std::to_string(n) +
                     (n == 1 ? " variant)" : " variants)"));
  return lock;
}

// Human list of what differs between the lock on disk and the one just computed.
std::vector<std::string> lock_differences(const Lockfile& old_lock, const Lockfile& new_lock) {
  std::vector<std::string> out;
  for (const KernelLock& k : new_lock.kernels) {
    const KernelLock* o = old_lock.find(k.repo_id);
    if (!o) {
      out.push_back(k.repo_id + ": not in kernels.lock");
      continue;
    }
    if (o->sha != k.sha) out.push_back(k.repo_id + ": locked at " + o->sha + ", the Hub has " + k.sha);
    for (const auto& [name, v] : k.variants) {
      auto it = o->variants.find(name);
      if (it == o->variants.end()) {
        out.push_back(k.repo_id + ": variant " + name + " is not in kernels.lock");
      } else if (it->second != v) {
        out.push_back(k.repo_id + ": variant " + name + " hash " + it->second.hash + " != " + v.hash);
      }
    }
    for (const auto& [name, v] : o->variants) {
      if (!k.variants.count(name)) out.push_back(k.repo_id + ": variant " + name + " no longer exists");
    }
  }
  for (const KernelLock& o : old_lock.kernels) {
    if (!new_lock.find(o.repo_id)) out.push_back(o.repo_id + ": locked but not a dependency any more");
  }
  return out;
}

Result<std::string> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, "cannot read", path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<void> run_lock(CommandContext& ctx, const LockArgs& args) {
  std::filesystem::path dir(args.project_dir);
  Result<std::vector<KernelDependency>> deps = read_pyproject(dir / "pyproject.toml");
  if (!deps) return deps.error();
  Lockfile lock;
  for (const KernelDependency& dep : *deps) {
    Result<KernelLock> k = lock_dependency(ctx, dep, args.locked);
    if (!k) return k.error();
    lock.kernels.push_back(std::move(*k));
  }
  std::string bytes = serialize_lockfile(lock);
  std::filesystem::path path = dir / "kernels.lock";
  ctx.console().debug("Hub requests: " + std::to_string(ctx.hub_requests()) + " (all HTTP: " +
                      std::to_string(ctx.http_requests()) + ")");
  if (ctx.console().json()) ctx.console().out(bytes + "\n");

  if (args.locked) {
    Result<Lockfile> existing = read_lockfile(path);
    if (!existing) {
      if (existing.error().code == ErrorCode::lockfile_missing) {
        return make_error(ErrorCode::lockfile_missing,
                          "kernels.lock is missing, but --locked was given", path.string(),
                          "run `kernels lock " + args.project_dir + "` to create it");
      }
      return existing.error();
    }
    std::vector<std::string> diffs = lock_differences(*existing, lock);
    Result<std::string> on_disk = read_bytes(path);
    if (diffs.empty() && on_disk && *on_disk != bytes) {
      diffs.push_back("the file is not in canonical form (what `kernels lock` writes)");
    }
    if (!diffs.empty()) {
      for (const std::string& d : diffs) ctx.console().info("  " + d);
      return make_error(ErrorCode::lockfile_stale,
                        "kernels.lock needs to be updated, but --locked was given (" +
                            std::to_string(diffs.size()) + " difference" +
                            (diffs.size() == 1 ? "" : "s") + ")",
                        path.string(), "run `kernels lock " + args.project_dir + "` to update it");
    }
    ctx.console().info("kernels.lock is up to date");
    return ok();
  }

  // An unchanged lock is not rewritten (works on a read-only project, keeps mtimes).
  if (Result<std::string> on_disk = read_bytes(path); on_disk && *on_disk == bytes) return ok();
  return write_lockfile(path, lock);
}

}  // namespace

void add_lock_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<LockArgs>();
  CLI::App* cmd = app.add_subcommand("lock", "Lock kernel revisions: pyproject.toml -> kernels.lock");
  cmd->add_option("project_dir", args->project_dir, "Project directory (default: .)");
  cmd->add_flag("--locked", args->locked,
                "Check that kernels.lock is present and up to date; never write it");
  cmd->callback([args, &chosen] {
    chosen = [args](CommandContext& ctx) { return run_lock(ctx, *args); };
  });
}

}  // namespace kernels::cli
