// `kernels lock [PROJECT_DIR] [--locked] [--format 1|2]`: pyproject.toml -> kernels.lock,
// byte-identical to the Python `kernels lock` of the format written: 0.16's format 1 (variant
// hashes inside) or 0.17.2's format 2 (commits only; our variant hashes go to the sidecar
// kernels.lock.hashes, lock_hashes.h). The format is the existing lock's, 2 for a new lock, or
// --format's: a lock changes format only when asked. Per dependency: the kernel-status.toml
// redirect at main (format 1 only, as 0.17 dropped it), refs -> branch vN, one recursive tree
// listing, every variant hash; format 2 then follows the kernel-depends of every variant's
// metadata.json, as 0.17.2 does. Every dependency locked (transitive ones too) must come from a
// trusted publisher, or be allowed by --allow-untrusted / [tool.kernels] allow-untrusted
// (trusted_publisher.h). --locked checks instead, in the lock's own format.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "kernel_depends.h"
#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/lock_hashes.h"
#include "kernels/lockfile/pyproject.h"
#include "kernels/lockfile/text.h"
#include "kernels/lockfile/variant_hash.h"
#include "trusted_publisher.h"

namespace kernels::cli {
namespace {

struct LockArgs {
  std::string project_dir = ".";
  bool locked = false;
  int format = 0;  // 0: the existing lock's, else 2
  std::vector<std::string> allow_untrusted;
};

// The redirect a repo's kernel-status.toml declares at main, if any.
Result<std::optional<std::string>> redirect_of(CommandContext& ctx, const std::string& repo_id) {
  if (ctx.offline()) return std::optional<std::string>{};  // checked online only, like Python
  Result<HubClient*> hub = ctx.hub();
  if (!hub) return hub.error();
  Result<std::optional<std::string>> text = (*hub)->fetch_text(repo_id, "main",
                                                               "kernel-status.toml");
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
// `follow_redirect`: kernels 0.16 honours a kernel-status.toml redirect; 0.17 (format 2) dropped
// it.
Result<KernelLock> lock_dependency(CommandContext& ctx, const KernelDependency& dep, bool checking,
                                   bool follow_redirect) {
  std::string repo_id = dep.repo_id;
  Result<std::optional<std::string>> redirect = follow_redirect
                                                    ? redirect_of(ctx, repo_id)
                                                    : Result<std::optional<std::string>>(
                                                          std::nullopt);
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
    ctx.console().warn("You are using version " + std::to_string(dep.version) + " of '" + repo_id +
                       "', but version " + std::to_string(versions->rbegin()->first) +
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

// A revision dependency (only kernel-depends have them): 0.17 locks the revision itself as the
// commit, so it must be a full commit id.
Result<KernelLock> lock_revision(CommandContext& ctx, const std::string& repo_id,
                                 const std::string& revision, bool checking) {
  const std::string commit = ascii_lower(revision);
  if (!is_commit_sha(commit)) {
    return make_error(ErrorCode::lockfile_invalid,
                      "Invalid git object id, expected 40 or 64 hexadecimal digits: " + revision,
                      repo_id, "a kernel-depends revision must be a full commit id");
  }
  Result<RepoTree> tree = ctx.tree(repo_id, commit);
  if (!tree) return tree.error();
  KernelLock lock;
  lock.repo_id = repo_id;
  lock.sha = commit;
  lock.revision = revision;
  lock.variants = compute_variant_hashes(*tree);
  const std::size_t n = lock.variants.size();
  ctx.console().info(std::string(checking ? "Resolved " : "Locked ") + repo_id + " at " + commit +
                     " (" + std::to_string(n) + (n == 1 ? " variant)" : " variants)"));
  return lock;
}

// Format 2: kernels 0.17.2's depth-first lock of every dependency and, transitively, of the
// kernel-depends of every variant of each, memoised on the exact dependency key; a key met again
// on its own path is a cycle.
class LockWalk {
 public:
  LockWalk(CommandContext& ctx, bool checking, TrustedPublishers& trust)
      : ctx_(ctx), checking_(checking), trust_(trust) {}

  Result<void> visit(KernelLock key) {
    const std::string name = dependency_name(key);
    if (done_.count(name)) return ok();
    if (std::find(path_.begin(), path_.end(), name) != path_.end()) {
      std::string chain;
      for (const std::string& p : path_) chain += p + " -> ";
      return make_error(ErrorCode::lockfile_invalid,
                        "Cyclic kernel dependency detected: " + key.repo_id, chain + name,
                        "the kernel-depends of these kernels' metadata.json form a cycle; tell "
                        "their maintainers");
    }
    path_.push_back(name);
    // kernels 0.17.2 checks every new node, transitive ones included, before resolving it.
    if (Result<void> trusted = trust_.check(ctx_, key.repo_id); !trusted) return trusted;
    Result<KernelLock> k = key.revision
                               ? lock_revision(ctx_, key.repo_id, *key.revision, checking_)
                               : lock_dependency(ctx_, {key.repo_id, key.version.value_or(0)},
                                                 checking_, false);
    if (!k) return k.error();
    k->version = key.version;
    k->revision = key.revision;
    Result<RepoTree> tree = ctx_.tree(k->repo_id, k->sha);
    if (!tree) return tree.error();
    Result<std::vector<MetadataDependency>> deps = kernel_depends_of(ctx_, k->repo_id, k->sha,
                                                                     *tree);
    if (!deps) return deps.error();
    for (const MetadataDependency& d : *deps) {
      KernelLock child;
      child.repo_id = d.repo_id;
      if (d.version) {
        if (*d.version > 1000000) {
          return make_error(ErrorCode::lockfile_invalid,
                            "kernel-depends version " + std::to_string(*d.version) +
                                " is out of range",
                            k->repo_id + "@" + k->sha);
        }
        child.version = static_cast<int>(*d.version);
      }
      child.revision = d.revision;
      if (Result<void> r = visit(std::move(child)); !r) return r;
    }
    path_.pop_back();
    done_.emplace(name, std::move(*k));
    return ok();
  }

  std::vector<KernelLock> locks() const {
    std::vector<KernelLock> out;
    for (const auto& [name, k] : done_) out.push_back(k);
    std::stable_sort(out.begin(), out.end(), dependency_less);
    return out;
  }

 private:
  CommandContext& ctx_;
  bool checking_;
  TrustedPublishers& trust_;
  std::vector<std::string> path_;
  std::map<std::string, KernelLock> done_;
};

// Human list of what differs between the lock on disk and the one just computed, both in the
// same format. Variant hashes are compared where the old lock has them (format 1 always; format 2
// where its sidecar names the commit).
std::vector<std::string> lock_differences(const Lockfile& old_lock, const Lockfile& new_lock) {
  const bool v2 = new_lock.form == Lockfile::Form::dependency_list;
  auto key = [v2](const KernelLock& k) { return v2 ? dependency_name(k) : k.repo_id; };
  std::map<std::string, const KernelLock*> old_by_key;
  for (const KernelLock& o : old_lock.kernels) old_by_key.emplace(key(o), &o);
  std::vector<std::string> out;
  for (const KernelLock& k : new_lock.kernels) {
    auto found = old_by_key.find(key(k));
    if (found == old_by_key.end()) {
      out.push_back(key(k) + ": not in kernels.lock");
      continue;
    }
    const KernelLock* o = found->second;
    old_by_key.erase(found);
    if (o->sha != k.sha) out.push_back(key(k) + ": locked at " + o->sha + ", the Hub has " + k.sha);
    if (v2 && (o->variants.empty() || o->sha != k.sha)) continue;
    const std::string what = v2 ? "kernels.lock.hashes" : "kernels.lock";
    for (const auto& [name, v] : k.variants) {
      auto it = o->variants.find(name);
      if (it == o->variants.end()) {
        out.push_back(key(k) + ": variant " + name + " is not in " + what);
      } else if (it->second != v) {
        out.push_back(key(k) + ": variant " + name + " hash " + it->second.hash + " != " + v.hash);
      }
    }
    for (const auto& [name, v] : o->variants) {
      if (!k.variants.count(name))
        out.push_back(key(k) + ": variant " + name + " no longer exists");
    }
  }
  for (const auto& [k, o] : old_by_key) out.push_back(k + ": locked but not a dependency any more");
  return out;
}

Result<std::optional<std::string>> read_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<std::string>{};
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, "cannot read", path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return std::optional<std::string>(s.str());
}

// Writes `bytes` unless the file already holds them (works on a read-only project, keeps mtimes).
Result<void> write_if_changed(const std::filesystem::path& path, const std::string& bytes) {
  Result<std::optional<std::string>> on_disk = read_bytes(path);
  if (on_disk && *on_disk == bytes) return ok();
  return write_atomic(path, bytes);
}

// --json: what was locked (or checked, with --locked); the lock's bytes stay in the file.
nlohmann::json lock_json(const Lockfile& lock, const std::filesystem::path& path, bool check_only) {
  nlohmann::json kernels = nlohmann::json::array();
  for (const KernelLock& k : lock.kernels) {
    std::vector<std::string> variants;
    for (const auto& [name, hash] : k.variants) variants.push_back(name);
    kernels.push_back(
        {{"repo_id", k.repo_id},
         {"sha", k.sha},
         {"version", k.version ? nlohmann::json(*k.version) : nlohmann::json(nullptr)},
         {"revision", k.revision ? nlohmann::json(*k.revision) : nlohmann::json(nullptr)},
         {"variants", variants}});
  }
  return {{"lockfile", path.string()},
          {"format", format_number(lock.form)},
          {"check_only", check_only},
          {"kernels", std::move(kernels)}};
}

Result<void> check_locked(CommandContext& ctx, const LockArgs& args, const Lockfile& lock,
                          const std::string& bytes, const std::filesystem::path& path,
                          const Result<Lockfile>& existing) {
  if (!existing) {
    if (existing.error().code == ErrorCode::lockfile_missing) {
      return make_error(ErrorCode::lockfile_missing,
                        "kernels.lock is missing, but --locked was given", path.string(),
                        "run `kernels lock " + args.project_dir + "` to create it");
    }
    return existing.error();
  }
  std::vector<std::string> diffs;
  if (existing->form != lock.form) {
    diffs.push_back("kernels.lock is format " + std::to_string(format_number(existing->form)) +
                    ", --format " + std::to_string(format_number(lock.form)) + " was asked for");
  } else {
    diffs = lock_differences(*existing, lock);
  }
  Result<std::optional<std::string>> on_disk = read_bytes(path);
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
  if (lock.form == Lockfile::Form::dependency_list) {
    for (const KernelLock& k : existing->kernels) {
      if (k.variants.empty()) {
        ctx.console().info("note: " + lock_hashes_path(path).filename().string() +
                           " records no variant hashes for " + dependency_name(k) +
                           "; `kernels lock` adds them");
      }
    }
  }
  ctx.console().info("kernels.lock is up to date");
  return ok();
}

Result<void> run_lock(CommandContext& ctx, const LockArgs& args) {
  std::filesystem::path dir(args.project_dir);
  std::filesystem::path path = dir / "kernels.lock";
  Result<std::vector<KernelDependency>> deps = read_pyproject(dir / "pyproject.toml");
  if (!deps) return deps.error();
  Result<std::vector<TrustedPublishers::Allowed>> allowed = allowed_untrusted(args.allow_untrusted,
                                                                              args.project_dir);
  if (!allowed) return allowed.error();
  TrustedPublishers trust(std::move(*allowed));
  Result<Lockfile> existing = read_lockfile(path);
  if (!existing && existing.error().code != ErrorCode::lockfile_missing && args.format == 0 &&
      !args.locked) {
    Error e = existing.error();
    e.hint =
        "its format is unknown: `kernels lock --format 2` (kernels 0.17) or `--format 1` "
        "(kernels 0.16) replaces it";
    return e;
  }
  Lockfile lock;
  lock.form = args.format != 0 ? static_cast<Lockfile::Form>(args.format)
              : existing       ? existing->form
                               : Lockfile::Form::dependency_list;
  const bool v2 = lock.form == Lockfile::Form::dependency_list;
  if (v2 && deps->empty()) {
    return make_error(
        ErrorCode::lockfile_invalid, "No kernels found to lock.", (dir / "pyproject.toml").string(),
        "add a kernel to [tool.kernels.dependencies], e.g. \"kernels-community/relu\" = 1");
  }
  if (v2) {
    LockWalk walk(ctx, args.locked, trust);
    for (const KernelDependency& dep : *deps) {
      KernelLock key;
      key.repo_id = dep.repo_id;
      key.version = dep.version;
      if (Result<void> r = walk.visit(std::move(key)); !r) return r;
    }
    lock.kernels = walk.locks();
  } else {
    for (const KernelDependency& dep : *deps) {
      if (Result<void> trusted = trust.check(ctx, dep.repo_id); !trusted) return trusted.error();
      Result<KernelLock> k = lock_dependency(ctx, dep, args.locked, true);
      if (!k) return k.error();
      lock.kernels.push_back(std::move(*k));
    }
  }
  std::string bytes = serialize_lockfile(lock);
  ctx.console().debug("Hub requests: " + std::to_string(ctx.hub_requests()) +
                      " (all HTTP: " + std::to_string(ctx.http_requests()) + ")");
  if (ctx.console().json()) ctx.console().set_result(lock_json(lock, path, args.locked));

  if (args.locked) return check_locked(ctx, args, lock, bytes, path, existing);

  if (existing && existing->form != lock.form) {
    ctx.console().info("kernels.lock: format " + std::to_string(format_number(existing->form)) +
                       " -> format " + std::to_string(format_number(lock.form)) + " (--format " +
                       std::to_string(args.format) + ")");
  }
  const std::filesystem::path sidecar = lock_hashes_path(path);
  if (v2) {
    // The sidecar first: a reader that sees the new lock finds its hashes.
    if (Result<void> w = write_if_changed(sidecar, serialize_lock_hashes(lock_hashes_of(lock)));
        !w) {
      return w;
    }
    return write_if_changed(path, bytes);
  }
  if (Result<void> w = write_if_changed(path, bytes); !w) return w;
  // A format 1 lock carries its hashes; a sidecar left from format 2 would only mislead.
  std::error_code ec;
  std::filesystem::remove(sidecar, ec);
  return ok();
}

}  // namespace

void add_lock_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<LockArgs>();
  CLI::App* cmd = app.add_subcommand("lock",
                                     "Lock kernel revisions: pyproject.toml -> kernels.lock");
  cmd->add_option("project_dir", args->project_dir, "Project directory (default: .)");
  cmd->add_flag(
      "--locked", args->locked,
      "Check that kernels.lock is present and up to date (in its own format); never write it");
  cmd->add_option("--format", args->format,
                  "Lock format: 1 (kernels 0.16, hashes inside) or 2 (kernels 0.17, hashes in "
                  "kernels.lock.hashes). Default: the existing lock's, 2 for a new lock")
      ->check(CLI::IsMember({1, 2}));
  add_allow_untrusted_option(*cmd, args->allow_untrusted);
  cmd->callback(
      [args, &chosen] { chosen = [args](CommandContext& ctx) { return run_lock(ctx, *args); }; });
}

}  // namespace kernels::cli
