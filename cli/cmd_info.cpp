// `kernels info KERNEL [--version N | --revision R] [--variants]`: kernels 0.17.2's description
// of a kernel (cli/info.py), for a Hub repo or a local kernel directory: name, version,
// kernels-minver, license, upstream, source, Python dependencies (from one variant's
// metadata.json) and the backends of its variants; text or `--json` in 0.17.2's keys and order.
// `--variants` (ours) adds each variant's files, size, lock hash, bundle manifest and whether it is
// signed and by whom (the signature recorded by `download --require-signatures`).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "installer.h"
#include "kernels/lockfile/signature_record.h"
#include "kernels/lockfile/variant.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"
#include "kernels/lockfile/variant_metadata.h"
#include "project.h"

namespace kernels::cli {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

struct InfoArgs {
  std::string kernel;
  std::optional<int> version;
  std::string revision;
  bool variants = false;
};

// The backend a variant name stands for in 0.17.2's `Backends:` (arch variants: the backend's
// name; noarch: what follows "torch-"), and ours for cubin variants ("cuda"); nullopt for a
// name that does not parse (0.17 skips those too).
std::optional<std::string> variant_backend(const std::string& name) {
  Result<VariantName> v = parse_variant_name(name);
  if (!v) return std::nullopt;
  switch (v->kind) {
    case VariantName::Kind::noarch: return v->noarch_backend;
    case VariantName::Kind::cubin: return std::string("cuda");
    default: return v->backend.name;
  }
}

// pathlib's str(Path(p)): repeated and trailing slashes and "." components dropped.
std::string python_path_str(const std::string& p) {
  std::string root;
  if (p.rfind("//", 0) == 0 && p.rfind("///", 0) != 0) {
    root = "//";  // POSIX keeps exactly two leading slashes
  } else if (!p.empty() && p[0] == '/') {
    root = "/";
  }
  std::string out = root;
  std::istringstream parts(p);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part.empty() || part == ".") continue;
    out += (out.size() > root.size() ? "/" : "") + part;
  }
  return out.empty() ? "." : out;
}

// 0.17.2's dict, in its key order: the metadata keys only when metadata was read, then backends.
ordered_json describe(ordered_json head, const std::optional<VariantMetadata>& m,
                      const std::vector<std::string>& variant_names) {
  auto opt = [](const std::optional<std::string>& s) {
    return s ? ordered_json(*s) : ordered_json(nullptr);
  };
  if (m) {
    head["name"] = m->name;
    head["version"] = m->version;
    head["kernels_minver"] = opt(m->kernels_minver);
    head["license"] = m->license;
    head["upstream"] = opt(m->upstream);
    head["source"] = opt(m->source);
    head["python_depends"] = m->python_depends;
  }
  std::set<std::string> backends;
  for (const std::string& v : variant_names)
    if (std::optional<std::string> b = variant_backend(v)) backends.insert(*b);
  head["backends"] = std::vector<std::string>(backends.begin(), backends.end());
  return head;
}

// _print_human: one "Key: value" per line, "-" for what is absent.
std::string human(const ordered_json& info) {
  auto value = [&](const char* key) -> std::string {
    if (!info.contains(key) || info[key].is_null()) return "-";
    return info[key].is_string() ? info[key].get<std::string>() : info[key].dump();
  };
  auto joined = [&](const char* key) {
    std::string s;
    if (info.contains(key))
      for (const auto& item : info[key]) s += (s.empty() ? "" : ", ") + item.get<std::string>();
    return s;
  };
  std::string text = info.contains("repo_id") ? "Repository: " + value("repo_id") +
                                                    "\nRevision: " + value("revision") + "\n"
                                              : "Path: " + value("path") + "\n";
  text += "Name: " + value("name") + "\n";
  text += "Version: " + value("version") + "\n";
  text += "Minimum kernels version: " + value("kernels_minver") + "\n";
  text += "License: " + value("license") + "\n";
  text += "Upstream: " + value("upstream") + "\n";
  text += "Source: " + value("source") + "\n";
  const std::string deps = joined("python_depends");
  text += "Python dependencies: " + (deps.empty() ? std::string("-") : deps) + "\n";
  text += "Backends: " + joined("backends") + "\n";
  return text;
}

std::vector<std::string> parseable(std::vector<std::string> names) {
  std::erase_if(names, [](const std::string& v) { return !variant_backend(v); });
  std::sort(names.begin(), names.end());
  return names;
}

Result<ordered_json> local_info(const std::string& dir) {
  const fs::path build = fs::path(dir) / "build";
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(build, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec)) names.push_back(it->path().filename().string());
  names = parseable(std::move(names));
  if (names.empty())
    return make_error(ErrorCode::no_variant,
                      "No build variants found in: " + python_path_str(build.string()), dir,
                      "a kernel directory holds build/<variant>/ (e.g. build/torch-cuda/)");
  // 0.17.2 takes the first variant (in set order) whose metadata.json exists; we take the first
  // in name order, and its parse errors are errors, as there.
  std::optional<VariantMetadata> metadata;
  for (const std::string& v : names) {
    const fs::path path = build / v / "metadata.json";
    if (!fs::exists(path, ec)) continue;
    Result<VariantMetadata> m = read_variant_metadata(path);
    if (!m) return m.error();
    metadata = std::move(*m);
    break;
  }
  return describe(ordered_json{{"path", python_path_str(dir)}}, metadata, names);
}

// The revision to describe, as (commit, label): label is what 0.17.2 shows as the revision (the
// branch name for a version, the revision as given, or "main").
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
                          "version " + std::to_string(*args.version) + " is not in the cache",
                          repo_id,
                          "run it once with the network, or `kernels versions " + repo_id +
                              "` offline "
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

// The first variant (name order) whose tree lists metadata.json, fetched into the cache (checked
// against the tree) and parsed. As in 0.17.2, failing to read it only leaves the metadata out.
std::optional<VariantMetadata> hub_metadata(CommandContext& ctx, const std::string& repo_id,
                                            const std::string& commit, const RepoTree& tree,
                                            const std::vector<std::string>& names) {
  for (const std::string& v : names) {
    const std::string path = "build/" + v + "/metadata.json";
    auto entry = std::find_if(tree.begin(), tree.end(),
                              [&](const TreeEntry& e) { return e.is_file && e.path == path; });
    if (entry == tree.end()) continue;
    Result<BlobLockPolicy> locks = ctx.locks();
    if (!locks) {
      ctx.console().warn(locks.error().message());
      return std::nullopt;
    }
    InstallReport report = install_files(ctx.cache(), repo_id, commit, {*entry},
                                         ctx.hub_access(repo_id + " " + path), ctx.console(),
                                         *locks);
    if (!report.ok()) {
      ctx.console().warn("metadata left out: " + report.errors.front().message());
      return std::nullopt;
    }
    Result<VariantMetadata> m = read_variant_metadata(ctx.cache().snapshot_file(repo_id, commit,
                                                                                path),
                                                      repo_id + "@" + commit + ":" + path);
    if (!m) {
      ctx.console().warn("metadata left out: " + m.error().message());
      return std::nullopt;
    }
    return std::move(*m);
  }
  return std::nullopt;
}

// Whether a variant is signed and by whom, as far as this cache knows: "unsigned" (the tree lists
// no metadata.json.sigstore), "verified" (a signature record vouches for the cached metadata.json:
// lockfile/signature_record.h, written by `download --require-signatures`), else "not_verified"
// with the reason. Nothing is fetched or verified here. Returns the JSON and appends a text line.
ordered_json signature_status(const CacheLayout& cache, const std::string& repo_id,
                              const std::string& commit, const RepoTree& tree,
                              const std::string& variant, std::string& text) {
  const std::string prefix = "build/" + variant + "/";
  auto listed = [&](const std::string& path) {
    return std::any_of(tree.begin(), tree.end(),
                       [&](const TreeEntry& e) { return e.is_file && e.path == path; });
  };
  if (!listed(prefix + "metadata.json.sigstore")) {
    text += "    signature: unsigned (no metadata.json.sigstore)\n";
    return {{"status", "unsigned"}};
  }
  auto not_verified = [&](const std::string& reason) {
    text += "    signature: not verified: " + reason + "\n";
    return ordered_json{{"status", "not_verified"}, {"reason", reason}};
  };
  std::ifstream in(cache.snapshot_file(repo_id, commit, prefix + "metadata.json"),
                   std::ios::binary);
  if (!in)
    return not_verified(
        "metadata.json is not in the cache; `kernels download --require-signatures` verifies "
        "the signature and records it");
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  SignatureCheck check = check_signature_record(
      cache, repo_id, commit, variant,
      std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  if (check.state != SignatureCheck::State::verified) return not_verified(check.why.what);
  const SignatureRecord& r = *check.record;
  text += "    signature: verified, signed by " + r.build_signer_uri + " (issuer " + r.issuer +
          ", source " + r.source_repository + ")\n";
  return {{"status", "verified"},
          {"issuer", r.issuer},
          {"source_repository", r.source_repository},
          {"build_signer_uri", r.build_signer_uri},
          {"subject_alt_name", r.subject_alt_name},
          {"integrated_time", r.integrated_time},
          {"log_url", r.log_url},
          {"log_index", r.log_index}};
}

// --variants: each variant's files, bytes, lock hash, bundle manifest and signature (text lines
// appended to `text`, entries to `doc["variants"]`).
Result<void> list_variants(CommandContext& ctx, const std::string& repo_id,
                           const std::string& commit, const RepoTree& tree, ordered_json& doc,
                           std::string& text) {
  std::map<std::string, VariantLock> hashes = compute_variant_hashes(tree);
  std::vector<std::string> names = tree_variants(tree);
  doc["commit"] = commit;
  doc["variants"] = ordered_json::array();
  text += "Commit: " + commit + "\nVariants: " + std::to_string(names.size()) + "\n";
  for (const std::string& v : names) {
    std::vector<TreeEntry> files = variant_files(tree, v);
    std::uint64_t bytes = 0;
    for (const auto& f : files) bytes += f.content_size();
    auto hash = hashes.find(v);
    ordered_json entry = {{"name", v},
                          {"files", files.size()},
                          {"bytes", bytes},
                          {"hash", hash == hashes.end() ? ordered_json(nullptr)
                                                        : ordered_json(hash->second.hash)}};
    text += "  " + v + "  " + std::to_string(files.size()) + " files, " + format_bytes(bytes) +
            (hash == hashes.end() ? std::string() : ", " + hash->second.hash) + "\n";
    const std::string path = "build/" + v + "/manifest.json";
    auto manifest_entry = std::find_if(files.begin(), files.end(),
                                       [&](const TreeEntry& e) { return e.path == path; });
    if (manifest_entry != files.end()) {
      std::optional<std::string> body;
      if (snapshot_file_present(ctx.cache(), repo_id, commit, *manifest_entry)) {
        std::ifstream in(ctx.cache().snapshot_file(repo_id, commit, path), std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        body = s.str();
      } else if (Result<HubClient*> hub = ctx.hub(path); hub) {
        Result<std::optional<std::string>> fetched = (*hub)->fetch_text(repo_id, commit, path);
        if (!fetched) return fetched.error();
        body = *fetched;
      }
      if (body) {
        ordered_json manifest = ordered_json::parse(*body, nullptr, false);
        if (manifest.is_discarded()) {
          text += "    manifest.json: not valid JSON\n";
          entry["manifest"] = nullptr;
        } else {
          entry["manifest"] = manifest;
          text += "    manifest.json:";
          for (const char* key : {"family", "arch", "cuda", "params_abi", "format_version"}) {
            if (manifest.contains(key)) {
              text += std::string(" ") + key + "=" +
                      (manifest[key].is_string() ? manifest[key].get<std::string>()
                                                 : manifest[key].dump());
            }
          }
          if (manifest.contains("kernels") && manifest["kernels"].is_array()) {
            text += " kernels=" + std::to_string(manifest["kernels"].size());
          }
          text += "\n";
        }
      }
    }
    entry["signature"] = signature_status(ctx.cache(), repo_id, commit, tree, v, text);
    doc["variants"].push_back(entry);
  }
  return ok();
}

Result<void> run_info(CommandContext& ctx, const InfoArgs& args) {
  std::error_code ec;
  const bool local = fs::is_directory(args.kernel, ec);
  if (args.version && !args.revision.empty())
    return make_error(ErrorCode::usage, "Only one of --revision or --version can be specified",
                      "command line");
  if (local && (args.version || !args.revision.empty()))
    return make_error(ErrorCode::usage, "--revision and --version cannot be used with a local path",
                      args.kernel);
  if (local && args.variants)
    return make_error(ErrorCode::usage, "--variants describes a Hub revision's files", args.kernel,
                      "`kernels check " + args.kernel + "` checks a local kernel's variants");
  ordered_json info;
  std::string extra_text;
  if (local) {
    Result<ordered_json> described = local_info(args.kernel);
    if (!described) return described.error();
    info = std::move(*described);
  } else {
    Result<RepoRef> ref = parse_repo_ref(args.kernel);
    if (!ref) return ref.error();
    if (!ref->revision.empty() &&
        (args.version || (!args.revision.empty() && args.revision != ref->revision)))
      return make_error(ErrorCode::usage,
                        args.kernel + " names a revision and --" +
                            (args.version ? "version" : "revision") + " names another",
                        "command line",
                        "give the revision one way: " + ref->repo_id + "@REV or --" +
                            (args.version ? "version N" : "revision REV"));
    InfoArgs effective = args;
    if (!ref->revision.empty() && effective.revision.empty()) effective.revision = ref->revision;
    auto picked = pick_revision(ctx, ref->repo_id, effective);
    if (!picked) return picked.error();
    const auto& [commit, label] = *picked;
    Result<RepoTree> tree = ctx.tree(ref->repo_id, commit);
    if (!tree) return tree.error();
    std::vector<std::string> names = parseable(tree_variants(*tree));
    if (names.empty())
      return make_error(ErrorCode::no_variant,
                        "No build variants found in " + ref->repo_id + " (revision: " + label + ")",
                        ref->repo_id + "@" + commit,
                        "`kernels versions " + ref->repo_id + "` lists its versions");
    std::optional<VariantMetadata> metadata = hub_metadata(ctx, ref->repo_id, commit, *tree, names);
    info = describe(ordered_json{{"repo_id", ref->repo_id}, {"revision", label}}, metadata, names);
    if (args.variants) {
      if (Result<void> listed = list_variants(ctx, ref->repo_id, commit, *tree, info, extra_text);
          !listed)
        return listed.error();
    }
  }
  // json.dumps(info, indent=2): ASCII only, "key": value, one item per line.
  ctx.console().out(ctx.console().json()
                        ? info.dump(2, ' ', true, ordered_json::error_handler_t::replace) + "\n"
                        : human(info) + extra_text);
  return ok();
}

}  // namespace

void add_info_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand("info",
                                     "Describe a kernel: a Hub repo or a local kernel directory");
  cmd->add_option("kernel", args->kernel,
                  "The kernel repo ID (org/name[@revision]) or a local path to a kernel repository")
      ->required();
  cmd->add_option("--version", args->version,
                  "The kernel version (branch vN). Cannot be used together with --revision.");
  cmd->add_option(
      "--revision", args->revision,
      "The kernel revision (branch, tag, or commit). Cannot be used together with --version.");
  cmd->add_flag(
      "--variants", args->variants,
      "Also list each variant's files, size, lock hash, bundle manifest and signature (who "
      "signed it, as `download --require-signatures` recorded; Hub repos; not in the Python "
      "kernels)");
  cmd->callback(
      [args, &chosen] { chosen = [args](CommandContext& ctx) { return run_info(ctx, *args); }; });
}

}  // namespace kernels::cli
