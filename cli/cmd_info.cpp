// `kernels info REPO [--version N | --revision R]`: what a repo revision holds: its variants,
// their files, sizes and lock hashes, and the bundle manifest (build/<variant>/manifest.json)
// where there is one.
#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"
#include "project.h"

namespace kernels::cli {
namespace {

struct InfoArgs {
  std::string repo;
  std::optional<int> version;
  std::string revision;
};

// The revision to describe, as (commit, label).
Result<std::pair<std::string, std::string>> pick_revision(CommandContext& ctx,
                                                          const std::string& repo_id,
                                                          const InfoArgs& args) {
  if (!args.revision.empty()) {
    if (is_commit_sha(args.revision)) return std::pair{args.revision, args.revision};
    Result<HubClient*> hub = ctx.hub("revision " + args.revision + " of " + repo_id);
    if (!hub) return hub.error();
    Result<std::string> sha = (*hub)->resolve_revision(repo_id, args.revision);
    if (!sha) return sha.error();
    return std::pair{*sha, args.revision};
  }
  Result<std::map<int, std::string>> versions = ctx.versions(repo_id);
  if (!versions) return versions.error();
  if (args.version) {
    auto it = versions->find(*args.version);
    if (it == versions->end()) {
      // Offline, the cache knows only the versions some earlier command fetched.
      if (ctx.offline())
        return make_error(ErrorCode::offline_not_cached,
                          "version " + std::to_string(*args.version) + " is not in the cache", repo_id,
                          "run it once with the network, or `kernels versions " + repo_id + "` offline "
                          "to see the cached ones");
      return make_error(ErrorCode::usage, "Version " + std::to_string(*args.version) + " not found",
                        repo_id, "`kernels versions " + repo_id + "` lists the versions");
    }
    return std::pair{it->second, "v" + std::to_string(*args.version)};
  }
  if (!versions->empty()) {
    return std::pair{versions->rbegin()->second, "v" + std::to_string(versions->rbegin()->first)};
  }
  Result<HubClient*> hub = ctx.hub("revision main of " + repo_id);
  if (!hub) return hub.error();
  Result<std::string> sha = (*hub)->resolve_revision(repo_id, "main");
  if (!sha) return sha.error();
  return std::pair{*sha, std::string("main")};
}

Result<void> run_info(CommandContext& ctx, const InfoArgs& args) {
  if (args.version && !args.revision.empty()) {
    return make_error(ErrorCode::usage, "--version and --revision exclude each other", "command line");
  }
  Result<RepoRef> ref = parse_repo_ref(args.repo);
  if (!ref) return ref.error();
  if (!ref->revision.empty() && (args.version || (!args.revision.empty() && args.revision != ref->revision)))
    return make_error(ErrorCode::usage,
                      args.repo + " names a revision and --" + (args.version ? "version" : "revision") +
                          " names another",
                      "command line", "give the revision one way: " + ref->repo_id + "@REV or --" +
                                          (args.version ? "version N" : "revision REV"));
  InfoArgs effective = args;
  if (!ref->revision.empty() && effective.revision.empty()) effective.revision = ref->revision;
  auto picked = pick_revision(ctx, ref->repo_id, effective);
  if (!picked) return picked.error();
  const auto& [commit, label] = *picked;
  Result<RepoTree> tree = ctx.tree(ref->repo_id, commit);
  if (!tree) return tree.error();
  std::map<std::string, VariantLock> hashes = compute_variant_hashes(*tree);

  nlohmann::json doc = {{"repo_id", ref->repo_id}, {"revision", commit}, {"ref", label}};
  doc["variants"] = nlohmann::json::array();
  std::string text = "Repository: " + ref->repo_id + "\nRevision: " + commit + " (" + label + ")\n";
  std::vector<std::string> names = tree_variants(*tree);
  text += "Variants: " + std::to_string(names.size()) + "\n";
  for (const std::string& v : names) {
    std::vector<TreeEntry> files = variant_files(*tree, v);
    std::uint64_t bytes = 0;
    bool has_manifest = false;
    for (const auto& f : files) {
      bytes += f.content_size();
      if (f.path == "build/" + v + "/manifest.json") has_manifest = true;
    }
    auto hash = hashes.find(v);
    nlohmann::json entry = {{"name", v},
                            {"files", files.size()},
                            {"bytes", bytes},
                            {"hash", hash == hashes.end() ? nlohmann::json(nullptr)
                                                          : nlohmann::json(hash->second.hash)}};
    text += "  " + v + "  " + std::to_string(files.size()) + " files, " + format_bytes(bytes) +
            (hash == hashes.end() ? std::string() : ", " + hash->second.hash) + "\n";
    if (has_manifest) {
      std::string path = "build/" + v + "/manifest.json";
      std::optional<std::string> body;
      auto entry_it = std::find_if(files.begin(), files.end(),
                                   [&](const TreeEntry& e) { return e.path == path; });
      if (snapshot_file_present(ctx.cache(), ref->repo_id, commit, *entry_it)) {
        std::ifstream in(ctx.cache().snapshot_file(ref->repo_id, commit, path), std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        body = s.str();
      } else if (Result<HubClient*> hub = ctx.hub(path); hub) {
        Result<std::optional<std::string>> fetched = (*hub)->fetch_text(ref->repo_id, commit, path);
        if (!fetched) return fetched.error();
        body = *fetched;
      }
      if (body) {
        nlohmann::json manifest = nlohmann::json::parse(*body, nullptr, false);
        if (manifest.is_discarded()) {
          text += "    manifest.json: not valid JSON\n";
          entry["manifest"] = nullptr;
        } else {
          entry["manifest"] = manifest;
          text += "    manifest.json:";
          for (const char* key : {"family", "arch", "cuda", "params_abi", "format_version"}) {
            if (manifest.contains(key)) {
              text += std::string(" ") + key + "=" +
                      (manifest[key].is_string() ? manifest[key].get<std::string>() : manifest[key].dump());
            }
          }
          if (manifest.contains("kernels") && manifest["kernels"].is_array()) {
            text += " kernels=" + std::to_string(manifest["kernels"].size());
          }
          text += "\n";
        }
      }
    }
    doc["variants"].push_back(entry);
  }
  ctx.console().out(ctx.console().json() ? doc.dump(2) + "\n" : text);
  return ok();
}

}  // namespace

void add_info_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a kernel repo revision: variants, sizes, manifest");
  cmd->add_option("repo_id", args->repo, "The kernel repo ID (org/name[@revision])")->required();
  cmd->add_option("--version", args->version, "Kernel version (branch vN)");
  cmd->add_option("--revision", args->revision, "Branch, tag or commit");
  cmd->callback([args, &chosen] {
    chosen = [args](CommandContext& ctx) { return run_info(ctx, *args); };
  });
}

}  // namespace kernels::cli
