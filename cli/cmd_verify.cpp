// `kernels verify [PROJECT_DIR] [--repair]`: re-hash every file the lock references in the cache
// (check_variant_on_disk against the lock's hashes, or the format 2 sidecar's; the cached tree
// where there are none), check each variant against its metadata.json digest when it has one,
// name each bad or missing file, and with --repair fetch them again.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cache_inventory.h"
#include "commands.h"
#include "json_document.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"
#include "kernels/lockfile/variant_metadata.h"
#include "project.h"

namespace kernels::cli {
namespace {

struct VerifyArgs {
  std::string project_dir = ".";
  bool repair = false;
};

struct VariantResult {
  std::string variant;
  std::size_t files = 0;
  std::vector<FileProblem> problems;
  std::string hash_problem;  // the files are fine but their hash is not the locked one
  std::vector<std::string> digest_problems;  // metadata.json digest violations, kernels' wording
};

// The variant's files against its metadata.json digest, when it has a metadata.json with one.
std::vector<std::string> digest_problems(const std::filesystem::path& variant_dir) {
  const std::filesystem::path meta = variant_dir / "metadata.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(meta, ec)) return {};
  Result<VariantMetadata> parsed = read_variant_metadata(meta);
  if (!parsed) return {"invalid metadata.json: " + parsed.error().message()};
  if (!parsed->digest) return {};
  std::vector<std::string> out;
  for (const DigestViolation& v : check_variant_digest(variant_dir, *parsed->digest)) {
    out.push_back(v.message());
  }
  return out;
}

std::string kind_name(FileProblem::Kind k) {
  switch (k) {
    case FileProblem::Kind::missing: return "missing";
    case FileProblem::Kind::mismatch: return "corrupt";
    case FileProblem::Kind::unreadable: return "unreadable";
  }
  return "bad";
}

// `unhashed_ok`: a format 2 lock whose sidecar does not name this commit; its variants are then
// checked against the tree and the metadata digest only.
VariantResult check_variant(const CacheLayout& cache, const KernelLock& locked,
                            const RepoTree& tree, const std::string& variant, bool unhashed_ok) {
  VariantResult r;
  r.variant = variant;
  std::vector<TreeEntry> files = variant_files(tree, variant);
  r.files = files.size();
  std::filesystem::path snap = cache.snapshot_dir(locked.repo_id, locked.sha);
  r.digest_problems = digest_problems(snap / "build" / variant);
  auto lock = locked.variants.find(variant);
  if (is_hashed_variant(variant) && lock != locked.variants.end()) {
    VariantCheck check = check_variant_on_disk(snap, variant, tree, lock->second);
    r.problems = check.problems;
    if (check.problems.empty() && !check.hash_matches) {
      r.hash_problem = "files match the cached tree, but their variant hash " +
                       check.computed_hash + " is not the locked " + lock->second.hash;
    }
    return r;
  }
  if (is_hashed_variant(variant) && !unhashed_ok) {
    r.hash_problem = "kernels.lock has no hash for this variant";
  }
  for (const TreeEntry& e : files) {
    std::filesystem::path p = cache.snapshot_file(locked.repo_id, locked.sha, e.path);
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) {
      r.problems.push_back({FileProblem::Kind::missing, e.path, e.digest().hex, ""});
      continue;
    }
    if (Result<void> c = check_file(p, e.digest()); !c) {
      r.problems.push_back({FileProblem::Kind::mismatch, e.path, e.digest().hex, c.error().what});
    }
  }
  return r;
}

// Removes what is bad (the snapshot entry and, for corrupt bytes, the blob behind it) and fetches
// it again through the normal verified path.
Result<void> repair_variant(CommandContext& ctx, const KernelLock& locked, const RepoTree& tree,
                            const VariantResult& bad) {
  std::vector<TreeEntry> refetch;
  std::vector<TreeEntry> files = variant_files(tree, bad.variant);
  for (const FileProblem& p : bad.problems) {
    auto it = std::find_if(files.begin(), files.end(),
                           [&](const TreeEntry& e) { return e.path == p.path; });
    if (it == files.end()) continue;
    // Through descriptors (remove_in_cache): a link planted above either is exit 11, never
    // followed out of the cache.
    const CacheLayout& cache = ctx.cache();
    if (p.kind != FileProblem::Kind::missing) {
      const auto blob = cache.blob_path(locked.repo_id, it->digest().hex);
      if (Result<bool> r = remove_in_cache(cache, blob); !r) return std::move(r).error();
    }
    const auto snap_file = cache.snapshot_file(locked.repo_id, locked.sha, it->path);
    if (Result<bool> r = remove_in_cache(cache, snap_file); !r) return std::move(r).error();
    refetch.push_back(*it);
  }
  Result<BlobLockPolicy> locks = ctx.locks();
  if (!locks) return locks.error();
  InstallReport report = install_files(ctx.cache(), locked.repo_id, locked.sha, refetch,
                                       ctx.hub_access(locked.repo_id + "@" + locked.sha),
                                       ctx.console(), *locks);
  if (!report.ok()) return report.errors.front();
  ctx.console().info("repaired " + locked.repo_id + " " + bad.variant + ": fetched " +
                     std::to_string(report.fetched) + " file" + (report.fetched == 1 ? "" : "s"));
  return ok();
}

Result<void> run_verify(CommandContext& ctx, const VerifyArgs& args) {
  const Console& console = ctx.console();
  Result<Lockfile> lock = read_project_lock(args.project_dir);
  if (!lock) return lock.error();
  std::size_t bad_count = 0;
  std::optional<Error> unrepaired;
  nlohmann::json doc = nlohmann::json::array();
  std::string text;
  const bool v2 = lock->form == Lockfile::Form::dependency_list;
  for (const KernelLock& locked : lock->kernels) {
    const bool unhashed_ok = v2 && locked.variants.empty();
    if (unhashed_ok) {
      console.info("note: kernels.lock.hashes records no variant hashes for " +
                   dependency_name(locked) +
                   "; its files are checked against the cached tree and metadata.json digests");
    }
    Result<RepoTree> tree = ctx.tree(locked.repo_id, locked.sha);
    if (!tree) return tree.error();
    std::filesystem::path build = ctx.cache().snapshot_dir(locked.repo_id, locked.sha) / "build";
    std::vector<std::string> present;
    for (const std::string& v : tree_variants(*tree)) {
      std::error_code ec;
      if (std::filesystem::is_directory(build / v, ec)) present.push_back(v);
    }
    nlohmann::json entry = {{"repo_id", locked.repo_id}, {"sha", locked.sha}, {"problem", nullptr}};
    entry["variants"] = nlohmann::json::array();
    if (present.empty()) {
      ++bad_count;
      text += "MISSING " + locked.repo_id + "@" + locked.sha + ": no variant is in the cache\n";
      entry["problem"] = "not downloaded";
      unrepaired = make_error(ErrorCode::integrity_mismatch, "not downloaded",
                              locked.repo_id + "@" + locked.sha, "run `kernels download`");
    }
    for (const std::string& v : present) {
      VariantResult r = check_variant(ctx.cache(), locked, *tree, v, unhashed_ok);
      nlohmann::json problems = nlohmann::json::array();
      for (const FileProblem& p : r.problems) {
        problems.push_back({{"path", p.path},
                            {"kind", kind_name(p.kind)},
                            {"expected", text_or_null(p.expected)},
                            {"actual", text_or_null(p.actual)}});
      }
      bool good = r.problems.empty() && r.hash_problem.empty() && r.digest_problems.empty();
      entry["variants"].push_back({{"variant", v},
                                   {"files", r.files},
                                   {"ok", good},
                                   {"problems", problems},
                                   {"hash_problem", text_or_null(r.hash_problem)},
                                   {"digest_problems", r.digest_problems}});
      if (good) {
        text += "OK      " + locked.repo_id + " " + v + " (" + std::to_string(r.files) +
                " files)\n";
        continue;
      }
      ++bad_count;
      text += "BAD     " + locked.repo_id + " " + v + "\n";
      for (const FileProblem& p : r.problems) {
        text += "        " + kind_name(p.kind) + ": " + p.path +
                (p.kind == FileProblem::Kind::mismatch
                     ? " (expected " + p.expected + ", got " + p.actual + ")"
                 : p.kind == FileProblem::Kind::unreadable ? " (" + p.actual + ")"
                                                           : std::string()) +
                "\n";
      }
      if (!r.hash_problem.empty()) text += "        " + r.hash_problem + "\n";
      for (const std::string& d : r.digest_problems)
        text += "        metadata.json digest: " + d + "\n";
      if (args.repair && r.hash_problem.empty()) {
        if (Result<void> fixed = repair_variant(ctx, locked, *tree, r); !fixed) {
          console.error(fixed.error());
          unrepaired = fixed.error();
        } else if (VariantResult again = check_variant(ctx.cache(), locked, *tree, v, unhashed_ok);
                   !again.problems.empty() || !again.digest_problems.empty()) {
          unrepaired = make_error(ErrorCode::integrity_mismatch, "still bad after repair",
                                  locked.repo_id + " " + v);
        } else {
          --bad_count;
          text += "REPAIRED " + locked.repo_id + " " + v + "\n";
        }
      } else {
        unrepaired = make_error(ErrorCode::integrity_mismatch,
                                !r.hash_problem.empty() ? r.hash_problem
                                : !r.digest_problems.empty() && r.problems.empty()
                                    ? "files do not match their metadata.json digest: " +
                                          r.digest_problems.front()
                                    : "bad or missing files",
                                locked.repo_id + " " + v,
                                r.hash_problem.empty()
                                    ? "run `kernels verify --repair` to fetch them again"
                                    : "run `kernels lock` and `kernels download` again");
      }
    }
    doc.push_back(entry);
  }
  if (console.json()) {
    console.set_result(
        {{"lockfile", (std::filesystem::path(args.project_dir) / "kernels.lock").string()},
         {"kernels", std::move(doc)}});
  } else {
    console.out(text);
  }
  if (bad_count > 0 && unrepaired) {
    Error e = *unrepaired;
    e.what = std::to_string(bad_count) + " problem" + (bad_count == 1 ? "" : "s") +
             " in the cache; first: " + e.what;
    return e;
  }
  return ok();
}

}  // namespace

void add_verify_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<VerifyArgs>();
  CLI::App* cmd = app.add_subcommand("verify", "Re-hash what kernels.lock references in the cache");
  cmd->add_option("project_dir", args->project_dir,
                  "Project directory with kernels.lock (default: .)");
  cmd->add_flag("--repair", args->repair, "Fetch bad or missing files again");
  cmd->callback(
      [args, &chosen] { chosen = [args](CommandContext& ctx) { return run_verify(ctx, *args); }; });
}

}  // namespace kernels::cli
