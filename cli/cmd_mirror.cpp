// `kernels mirror [PROJECT_DIR] --to DIR [--variant NAME]...`: a static mirror of everything the
// lockfile references, in the layout the Hub client reads through HF_ENDPOINT (file:///DIR, or
// any static web server serving DIR). Incremental: files already in the mirror are re-hashed and
// kept when they match; only what is missing or wrong is fetched. Every fetched file is verified
// while it streams and published atomically; listings are written last. The organisation overview
// of each locked repo's organisation (api/organizations/{org}/overview) is copied too, so that the
// trusted-publisher check of `kernels lock` (ours and kernels 0.17.2's) works against the mirror.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "hub/hub_protocol.h"
#include "hub/interrupt.h"
#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"
#include "pack/pack_paths.h"
#include "project.h"
#include "trusted_publisher.h"

namespace kernels::cli {
namespace {

namespace fs = std::filesystem;

struct MirrorArgs {
  std::string project_dir = ".";
  std::string to;
  std::vector<std::string> variants;
};

struct MirrorStats {
  std::size_t kept = 0;
  std::size_t fetched = 0;
  std::uint64_t bytes = 0;
};

// The mirror's refs: what it already serves, with the upstream branches that point at locked
// commits added (so `kernels lock` against the mirror resolves vN to the locked commit).
std::string merged_refs(const fs::path& refs_path, const RepoRefs& upstream,
                        const std::set<std::string>& locked) {
  std::map<std::string, std::string> branches;
  std::ifstream in(refs_path);
  if (in) {
    auto doc = nlohmann::json::parse(in, nullptr, false);
    if (doc.is_object() && doc.contains("branches") && doc["branches"].is_array()) {
      for (const auto& b : doc["branches"]) {
        if (b.is_object() && b.value("name", "") != "" && b.value("targetCommit", "") != "") {
          branches[b["name"]] = b["targetCommit"];
        }
      }
    }
  }
  for (const GitRef& b : upstream.branches) {
    if (locked.count(b.commit)) branches[b.name] = b.commit;
  }
  nlohmann::json out{{"branches", nlohmann::json::array()},
                     {"converts", nlohmann::json::array()},
                     {"tags", nlohmann::json::array()}};
  for (const auto& [name, commit] : branches) {
    out["branches"].push_back(
        {{"name", name}, {"ref", "refs/heads/" + name}, {"targetCommit", commit}});
  }
  return out.dump();
}

Result<void> write_listing(const fs::path& path, const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return make_error(ErrorCode::io, "cannot create directory: " + ec.message(),
                      path.parent_path().string());
  return write_atomic(path, bytes);
}

Result<void> mirror_repo(CommandContext& ctx, HubClient& hub, const KernelLock& locked,
                         const MirrorArgs& args, const std::set<std::string>& locked_shas,
                         MirrorStats& stats) {
  const Console& console = ctx.console();
  const fs::path root(args.to);
  const MirrorPaths paths(locked.repo_id);
  console.info("Mirroring `" + locked.repo_id + "` at " + locked.sha);

  Result<RepoTree> tree = hub.list_tree(locked.repo_id, locked.sha);
  if (!tree) return tree.error();
  const auto computed = compute_variant_hashes(*tree);
  std::vector<std::string> variants;
  for (const auto& [variant, lock] : locked.variants) {
    if (!args.variants.empty() &&
        std::find(args.variants.begin(), args.variants.end(), variant) == args.variants.end()) {
      continue;
    }
    auto got = computed.find(variant);
    if (got == computed.end() || got->second.hash != lock.hash) {
      return make_error(ErrorCode::integrity_mismatch,
                        "variant " + variant + " hashes to " +
                            (got == computed.end() ? std::string("nothing") : got->second.hash) +
                            " on the Hub, but kernels.lock says " + lock.hash,
                        locked.repo_id + "@" + locked.sha,
                        "nothing of this repo was mirrored; the Hub serves different files for "
                        "the locked commit");
    }
    variants.push_back(variant);
  }
  if (variants.empty()) {
    return make_error(ErrorCode::no_variant, "no locked variant matches --variant", locked.repo_id,
                      "`kernels info " + locked.repo_id + " --variants` lists its variants");
  }

  std::vector<DownloadRequest> requests;
  std::vector<fs::path> finals;
  for (const std::string& v : variants) {
    for (const TreeEntry& e : variant_files(*tree, v)) {
      const fs::path final_path = root / paths.resolve(locked.sha, e.path);
      std::error_code ec;
      if (fs::exists(final_path, ec) && check_file(final_path, e.digest())) {
        ++stats.kept;
        continue;
      }
      fs::create_directories(final_path.parent_path(), ec);
      if (ec) {
        return make_error(ErrorCode::io, "cannot create directory: " + ec.message(),
                          final_path.parent_path().string());
      }
      requests.push_back({locked.repo_id, locked.sha, e.path, e.digest(), e.content_size(),
                          unique_temp_path(final_path)});
      finals.push_back(final_path);
    }
  }
  if (!requests.empty()) {
    auto progress = console.progress("mirror " + locked.repo_id);
    std::vector<Result<void>> results = hub.download(requests, progress.get());
    std::optional<Error> first;
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i]) {
        if (!hub::interrupted()) console.error(results[i].error());  // main() says why it stopped
        if (!first) first = results[i].error();
        std::error_code ec;
        fs::remove(requests[i].temp_path, ec);
        continue;
      }
      if (auto r = publish_file(requests[i].temp_path, finals[i]); !r) return r.error();
      ++stats.fetched;
      stats.bytes += requests[i].size;
    }
    if (first) return *first;
  }

  // Listings last: a client that can see them finds every file they name.
  Result<RepoRefs> refs = hub.list_refs(locked.repo_id);
  if (!refs) return refs.error();
  if (auto r = write_listing(root / paths.tree(locked.sha), serialize_tree_listing(*tree)); !r)
    return r;
  const nlohmann::json revision{{"id", locked.repo_id}, {"sha", locked.sha}};
  if (auto r = write_listing(root / paths.revision(locked.sha), revision.dump()); !r) return r;
  for (const GitRef& b : refs->branches) {
    if (b.commit != locked.sha) continue;
    if (auto r = write_listing(root / paths.revision(b.name), revision.dump()); !r) return r;
  }
  return write_listing(root / paths.refs(), merged_refs(root / paths.refs(), *refs, locked_shas));
}

Result<void> run_mirror(CommandContext& ctx, const MirrorArgs& args) {
  Result<Lockfile> lock = read_project_lock(args.project_dir);
  if (!lock) return lock.error();
  if (Result<void> h = require_variant_hashes(*lock, args.project_dir, "mirror"); !h) return h;
  Result<HubClient*> hub = ctx.hub("mirroring needs the Hub");
  if (!hub) return hub.error();
  std::set<std::string> locked_shas;
  for (const KernelLock& k : lock->kernels) locked_shas.insert(k.sha);
  MirrorStats stats;
  std::set<std::string> orgs;
  for (const KernelLock& k : lock->kernels) {
    if (auto r = mirror_repo(ctx, **hub, k, args, locked_shas, stats); !r) return r;
    orgs.insert(k.repo_id.substr(0, k.repo_id.find('/')));
  }
  for (const std::string& org : orgs) {
    Result<std::string> overview = (*hub)->organization_overview(org);
    if (overview) {
      // Copied only when it is an answer the check can read.
      Result<bool> readable = parse_trusted_kernel_publisher(*overview, "organization " + org);
      if (!readable) overview = readable.error();
    }
    if (!overview) {
      if (overview.error().code != ErrorCode::http_permanent &&
          overview.error().code != ErrorCode::lockfile_invalid) {
        return overview.error();
      }
      ctx.console().warn("the Hub gives no organisation overview for '" + org + "' (" +
                         overview.error().message() +
                         "); `kernels lock` against this mirror "
                         "will need --allow-untrusted " +
                         org);
      continue;
    }
    const fs::path path = fs::path(args.to) / hub::organization_overview_path(org);
    if (auto r = write_listing(path, *overview); !r) return r;
  }
  if (ctx.console().json()) {
    ctx.console().set_result({{"mirror", fs::absolute(args.to).string()},
                              {"kept", stats.kept},
                              {"fetched", stats.fetched},
                              {"bytes_fetched", stats.bytes}});
  } else {
    ctx.console().info("Mirror " + fs::absolute(args.to).string() + ": " +
                       std::to_string(stats.fetched) + " files fetched (" +
                       format_bytes(stats.bytes) + "), " + std::to_string(stats.kept) +
                       " already present and verified. Serve it with any static web server, "
                       "or use HF_ENDPOINT=file://" +
                       fs::absolute(args.to).string());
  }
  return ok();
}

}  // namespace

void add_mirror_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<MirrorArgs>();
  CLI::App* cmd = app.add_subcommand(
      "mirror", "Write a static mirror (HF_ENDPOINT layout) of everything kernels.lock references");
  cmd->add_option("project_dir", args->project_dir, "Directory holding kernels.lock")
      ->capture_default_str();
  cmd->add_option("--to", args->to, "Mirror directory to create or update")->required();
  cmd->add_option("--variant", args->variants, "Mirror only these variants (repeatable)");
  cmd->callback(
      [args, &chosen] { chosen = [args](CommandContext& ctx) { return run_mirror(ctx, *args); }; });
}

}  // namespace kernels::cli
