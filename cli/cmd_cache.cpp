// `kernels cache ls | show REPO | verify | prune [--dry-run] | rm REPO[@REV] | path`: the cache for
// a person at a shell. Listings are read-only (they work on a read-only cache); --json on each.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cache_inventory.h"
#include "commands.h"
#include "json_document.h"
#include "project.h"

namespace kernels::cli {
namespace {

nlohmann::json revision_json(const RevisionInfo& rev) {
  nlohmann::json variants = nlohmann::json::array();
  for (const auto& v : rev.variants) {
    variants.push_back({{"variant", v.variant},
                        {"files_present", v.files_present},
                        {"files_expected", v.files_expected},
                        {"bytes", v.bytes},
                        {"complete", v.complete()}});
  }
  return {{"commit", rev.commit},
          {"refs", rev.refs},
          {"tree_cached", rev.tree_cached},
          {"complete", rev.complete()},
          {"bytes", rev.bytes},
          {"last_used", rev.last_used ? nlohmann::json(rev.last_used) : nlohmann::json(nullptr)},
          {"variants", variants},
          {"other_files", rev.other_files}};
}

nlohmann::json repo_json(const RepoInfo& repo, bool with_revisions) {
  nlohmann::json j = {{"repo_id", repo.repo_id},
                      {"blobs", repo.blobs},
                      {"bytes", repo.blob_bytes},
                      {"temp_files", repo.temp_files},
                      {"last_used",
                       repo.last_used ? nlohmann::json(repo.last_used) : nlohmann::json(nullptr)},
                      {"revisions", repo.revisions.size()}};
  if (with_revisions) {
    j["revisions"] = nlohmann::json::array();
    for (const auto& rev : repo.revisions) j["revisions"].push_back(revision_json(rev));
  }
  return j;
}

std::string revision_status(const RevisionInfo& rev) {
  if (!rev.tree_cached) return "unknown (no cached tree)";
  std::size_t missing = 0;
  for (const auto& v : rev.variants)
    missing += v.files_expected - std::min(v.files_expected, v.files_present);
  return missing == 0 ? "complete" : "incomplete (" + std::to_string(missing) + " files missing)";
}

Result<void> run_ls(CommandContext& ctx) {
  std::vector<RepoInfo> repos = scan_cache(ctx.cache());
  const Console& console = ctx.console();
  if (console.json()) {
    nlohmann::json doc = {{"cache", ctx.cache().root().string()},
                          {"repos", nlohmann::json::array()},
                          {"unpack_staging", nlohmann::json::array()}};
    for (const auto& r : repos) doc["repos"].push_back(repo_json(r, true));
    for (const auto& p : unpack_staging_dirs(ctx.cache()))
      doc["unpack_staging"].push_back(p.string());
    console.set_result(std::move(doc));
    return ok();
  }
  char line[512];
  std::string text;
  std::snprintf(line, sizeof line, "%-40s %9s %10s  %-16s %s\n", "REPO", "REVISIONS", "SIZE",
                "LAST USED (UTC)", "STATUS");
  text += line;
  for (const auto& r : repos) {
    std::size_t incomplete = 0;
    for (const auto& rev : r.revisions) incomplete += rev.complete() ? 0 : 1;
    std::string status = incomplete ? std::to_string(incomplete) + " incomplete" : "ok";
    if (r.temp_files) status += ", " + std::to_string(r.temp_files) + " partial downloads";
    std::snprintf(line, sizeof line, "%-40s %9zu %10s  %-16s %s\n", r.repo_id.c_str(),
                  r.revisions.size(), format_bytes(r.blob_bytes).c_str(),
                  format_time(r.last_used).c_str(), status.c_str());
    text += line;
  }
  console.out(text);
  if (const auto staging = unpack_staging_dirs(ctx.cache()); !staging.empty()) {
    console.info(std::to_string(staging.size()) + " unpack staging director" +
                 (staging.size() == 1 ? "y" : "ies") + " (.kernels-unpack.*.incomplete) in " +
                 ctx.cache().root().string() +
                 ": an unpack is running or was killed; `kernels cache prune` removes those "
                 "older than an hour");
  }
  if (repos.empty())
    console.info("the cache at " + ctx.cache().root().string() + " holds no kernels");
  return ok();
}

Result<void> run_show(CommandContext& ctx, const std::string& repo_text) {
  Result<RepoRef> ref = parse_repo_ref(repo_text);
  if (!ref) return ref.error();
  std::error_code ec;
  if (!std::filesystem::exists(ctx.cache().repo_dir(ref->repo_id), ec)) {
    return make_error(ErrorCode::usage, "not in the cache", ref->repo_id,
                      "`kernels cache ls` lists what the cache at " + ctx.cache().root().string() +
                          " holds");
  }
  RepoInfo repo = scan_repo(ctx.cache(), ref->repo_id);
  if (ctx.console().json()) {
    ctx.console().set_result({{"repo", repo_json(repo, true)}});
    return ok();
  }
  std::string text = repo.repo_id + "  (" + std::to_string(repo.blobs) + " blobs, " +
                     format_bytes(repo.blob_bytes) + ", last used " + format_time(repo.last_used) +
                     ")\n";
  if (repo.temp_files) {
    text += "  " + std::to_string(repo.temp_files) +
            " partial downloads (*.incomplete; `kernels cache prune` removes old ones)\n";
  }
  for (const auto& rev : repo.revisions) {
    text += "  " + rev.commit;
    if (!rev.refs.empty()) {
      text += "  [";
      for (std::size_t i = 0; i < rev.refs.size(); ++i) text += (i ? ", " : "") + rev.refs[i];
      text += "]";
    }
    text += "  " + format_bytes(rev.bytes) + "  " + revision_status(rev) + "\n";
    for (const auto& v : rev.variants) {
      text += "    " + v.variant + "  " + std::to_string(v.files_present) + "/" +
              std::to_string(v.files_expected) + " files, " + format_bytes(v.bytes) + "\n";
    }
  }
  ctx.console().out(text);
  return ok();
}

// Full re-hash of every snapshot file against the cached tree.
Result<void> run_cache_verify(CommandContext& ctx) {
  const CacheLayout& cache = ctx.cache();
  std::size_t checked = 0, bad = 0;
  std::string text;
  nlohmann::json doc = nlohmann::json::array();  // the problems found
  for (const RepoInfo& repo : scan_cache(cache)) {
    for (const RevisionInfo& rev : repo.revisions) {
      Result<RepoTree> tree = cache.read_tree(repo.repo_id, rev.commit);
      if (!tree) {
        text += "UNKNOWN " + repo.repo_id + "@" + rev.commit +
                ": no cached tree to check against\n";
        doc.push_back({{"repo_id", repo.repo_id},
                       {"commit", rev.commit},
                       {"path", nullptr},
                       {"variant", nullptr},
                       {"status", "unknown"},
                       {"problem", "no cached tree"}});
        continue;
      }
      for (const TreeEntry& e : *tree) {
        if (!e.is_file) continue;
        std::filesystem::path p = cache.snapshot_file(repo.repo_id, rev.commit, e.path);
        std::error_code ec;
        if (!std::filesystem::exists(std::filesystem::symlink_status(p, ec))) continue;
        ++checked;
        std::string problem;
        if (!std::filesystem::exists(p, ec)) {
          problem = "dangling link (its blob is gone)";
        } else if (Result<void> c = check_file(p, e.digest()); !c) {
          problem = c.error().what;
        }
        if (!problem.empty()) {
          ++bad;
          text += "CORRUPT " + repo.repo_id + "@" + rev.commit + " " + e.path + ": " + problem +
                  "\n";
          doc.push_back({{"repo_id", repo.repo_id},
                         {"commit", rev.commit},
                         {"path", e.path},
                         {"variant", nullptr},
                         {"status", "corrupt"},
                         {"problem", problem}});
        }
      }
      for (const auto& v : rev.variants) {
        if (!v.complete()) {
          text += "INCOMPLETE " + repo.repo_id + "@" + rev.commit + " " + v.variant + ": " +
                  std::to_string(v.files_present) + "/" + std::to_string(v.files_expected) +
                  " files\n";
          doc.push_back({{"repo_id", repo.repo_id},
                         {"commit", rev.commit},
                         {"path", nullptr},
                         {"variant", v.variant},
                         {"status", "incomplete"},
                         {"problem", std::to_string(v.files_present) + "/" +
                                         std::to_string(v.files_expected) + " files"}});
        }
      }
    }
  }
  text += std::to_string(checked) + " files checked, " + std::to_string(bad) + " corrupt\n";
  if (ctx.console().json()) {
    ctx.console().set_result(
        {{"checked", checked}, {"corrupt", bad}, {"problems", std::move(doc)}});
  } else {
    ctx.console().out(text);
  }
  if (bad) {
    return make_error(ErrorCode::integrity_mismatch,
                      std::to_string(bad) + " corrupt files in the cache", cache.root().string(),
                      "`kernels verify --repair` in the project fetches them again, or `kernels "
                      "cache rm REPO@REV` removes the revision");
  }
  return ok();
}

Result<void> print_actions(CommandContext& ctx, const std::vector<PruneAction>& actions,
                           bool dry_run) {
  std::uint64_t bytes = 0;
  std::string text;
  nlohmann::json doc = nlohmann::json::array();
  for (const auto& a : actions) {
    bytes += a.bytes;
    text += std::string(dry_run ? "would remove " : "removed ") + a.what + " " + a.path + "\n";
    doc.push_back({{"what", a.what},
                   {"repo_id", text_or_null(a.repo_id)},
                   {"path", a.path},
                   {"bytes", a.bytes}});
  }
  text += std::string(dry_run ? "would free " : "freed ") + format_bytes(bytes) + "\n";
  if (ctx.console().json()) {
    ctx.console().set_result({{"dry_run", dry_run}, {"bytes", bytes}, {"actions", std::move(doc)}});
  } else {
    ctx.console().out(text);
  }
  return ok();
}

Result<void> run_prune(CommandContext& ctx, const std::vector<std::string>& lockfiles,
                       bool dry_run) {
  std::vector<std::filesystem::path> sources;
  std::error_code ec;
  if (std::filesystem::exists(ctx.cache().lockfile_path(), ec))
    sources.push_back(ctx.cache().lockfile_path());
  // Every project that downloaded into this cache keeps what its lock references.
  for (const auto& kept : ctx.cache().project_lockfiles()) sources.push_back(kept);
  for (const auto& l : lockfiles) sources.emplace_back(l);
  if (sources.empty()) {
    return make_error(
        ErrorCode::lockfile_missing,
        "no lockfile says what to keep, so prune would remove everything",
        ctx.cache().lockfile_path().string(),
        "pass --lockfile PATH (repeatable), or `kernels cache rm REPO` to remove a repo");
  }
  LockedRevisions keep;
  for (const auto& path : sources) {
    Result<Lockfile> lock = read_lockfile(path);
    if (!lock) return lock.error();
    for (const auto& k : lock->kernels) keep.emplace(k.repo_id, k.sha);
  }
  Result<std::vector<PruneAction>> actions = prune_cache(ctx.cache(), keep, dry_run);
  if (!actions) return actions.error();
  return print_actions(ctx, *actions, dry_run);
}

Result<void> run_rm(CommandContext& ctx, const std::string& target) {
  Result<RepoRef> ref = parse_repo_ref(target);
  if (!ref) return ref.error();
  Result<std::vector<PruneAction>> actions = remove_from_cache(ctx.cache(), ref->repo_id,
                                                               ref->revision);
  if (!actions) return actions.error();
  return print_actions(ctx, *actions, false);
}

}  // namespace

void add_cache_command(CLI::App& app, CommandFn& chosen) {
  CLI::App* cache = app.add_subcommand("cache", "Inspect and clean the kernel cache");
  cache->require_subcommand(1);
  cache->add_subcommand("ls", "List cached repos: revisions, size, last use, status")
      ->callback([&chosen] { chosen = [](CommandContext& ctx) { return run_ls(ctx); }; });
  auto show_repo = std::make_shared<std::string>();
  CLI::App* show = cache->add_subcommand("show",
                                         "One repo: revisions, refs, variants, completeness");
  show->add_option("repo_id", *show_repo, "org/name")->required();
  show->callback([show_repo, &chosen] {
    chosen = [show_repo](CommandContext& ctx) { return run_show(ctx, *show_repo); };
  });
  cache->add_subcommand("verify", "Re-hash every cached file against its tree")
      ->callback([&chosen] { chosen = [](CommandContext& ctx) { return run_cache_verify(ctx); }; });
  auto prune_lockfiles = std::make_shared<std::vector<std::string>>();
  auto dry_run = std::make_shared<bool>(false);
  CLI::App* prune = cache->add_subcommand(
      "prune",
      "Remove revisions no lockfile references (<cache>/kernels.lock, every project's lock "
      "kept by download, and --lockfile)");
  prune
      ->add_option("--lockfile", *prune_lockfiles,
                   "Also keep what this lockfile references (repeatable)")
      ->allow_extra_args(false);
  prune->add_flag("--dry-run,-n", *dry_run, "Only say what would be removed");
  prune->callback([prune_lockfiles, dry_run, &chosen] {
    chosen = [prune_lockfiles, dry_run](CommandContext& ctx) {
      return run_prune(ctx, *prune_lockfiles, *dry_run);
    };
  });
  auto rm_target = std::make_shared<std::string>();
  CLI::App* rm = cache->add_subcommand("rm", "Remove a repo, or one revision of it (REPO@REV)");
  rm->add_option("target", *rm_target, "org/name or org/name@revision")->required();
  rm->callback([rm_target, &chosen] {
    chosen = [rm_target](CommandContext& ctx) { return run_rm(ctx, *rm_target); };
  });
  cache->add_subcommand("path", "Print the cache root")->callback([&chosen] {
    chosen = [](CommandContext& ctx) {
      if (ctx.console().json()) {
        ctx.console().set_result({{"cache", ctx.cache().root().string()}});
      } else {
        ctx.console().out(ctx.cache().root().string() + "\n");
      }
      return ok();
    };
  });
}

}  // namespace kernels::cli
