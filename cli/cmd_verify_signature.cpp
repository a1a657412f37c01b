// `kernels verify-signature REPO VERSION [--all-variants] [--filter-unsigned]
// [--filter-no-digest] [--trusted-root FILE]`: Python kernels 0.17's command. The variant this
// machine would use (or every variant) of version VERSION is made present in the cache, its
// metadata.json.sigstore bundle is verified offline over the exact metadata.json bytes against
// the trusted root and the signing identity (cli/sigstore), then every file against the
// metadata's digest. One line per variant on stdout, in 0.17's words, sorted by variant name.
//
// Unlike 0.17 it works with the network off (the version's refs, tree and files from the cache,
// the trusted root built in), --json gives one object per variant (docs/JSON.md), and it exits 6
// (integrity mismatch: exit-codes) rather than 1 when a variant fails.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/sigstore/policy.h"
#include "kernels/sigstore/variant.h"
#include "project.h"

namespace kernels::cli {
namespace {

struct VerifySignatureArgs {
  std::string repo;
  int version = 0;
  bool all_variants = false;
  bool filter_unsigned = false;
  bool filter_no_digest = false;
  std::string trusted_root;
  std::string project_dir = ".";
  SystemOptions system;
};

Result<std::vector<std::string>> pick_variants(CommandContext& ctx, const VerifySignatureArgs& args,
                                               const RepoTree& tree, const std::string& object) {
  std::vector<std::string> names = tree_variants(tree);
  if (args.all_variants) return names;
  bool has_cubin = std::any_of(names.begin(), names.end(),
                               [](const std::string& n) { return n.rfind("cubin-", 0) == 0; });
  DriverFacts facts;
  if (has_cubin && args.system.compute_capability.empty()) facts = probe_driver();
  Result<TargetSystems> targets = describe_targets(args.system, facts);
  if (!targets) return targets.error();
  VariantChoice choice = choose_variants(names, *targets, facts.problem);
  for (const std::string& note : choice.notes) ctx.console().info(note);
  if (choice.chosen.empty())
    return make_error(ErrorCode::no_variant,
                      "Cannot find a build variant for this system in " + object +
                          (choice.trace.empty() ? "" : ":\n\n" + choice.trace),
                      args.repo, "--all-variants verifies every variant");
  std::sort(choice.chosen.begin(), choice.chosen.end());
  return choice.chosen;
}

Result<void> run_verify_signature(CommandContext& ctx, const VerifySignatureArgs& args) {
  Result<RepoRef> ref = parse_repo_ref(args.repo);
  if (!ref) return ref.error();
  if (!ref->revision.empty())
    return make_error(ErrorCode::usage, "verify-signature takes a version, not a revision",
                      args.repo,
                      "give the repo id and the version: kernels verify-signature " + ref->repo_id +
                          " 1");
  const std::string& repo = ref->repo_id;
  // The trusted root and the identity first: a bad --trusted-root or pyproject.toml is an error
  // before anything is fetched.
  std::optional<std::filesystem::path> root_file;
  if (!args.trusted_root.empty()) root_file = args.trusted_root;
  Result<sigstore::TrustedRoot> root = sigstore::load_trusted_root(root_file, ctx.cache().root());
  if (!root) return root.error();
  Result<sigstore::SignatureSettings> settings = sigstore::read_signature_settings(
      args.project_dir);
  if (!settings) return settings.error();
  const sigstore::IdentityPolicy policy = settings->policy_for(repo);

  Result<std::map<int, std::string>> versions = ctx.versions(repo);
  if (!versions) return versions.error();
  auto found = versions->find(args.version);
  if (found == versions->end()) {
    if (ctx.offline())
      return make_error(ErrorCode::offline_not_cached,
                        "Version " + std::to_string(args.version) + " of '" + repo +
                            "' is not available in the local cache and Hugging Face Hub is in "
                            "offline mode",
                        repo, "run it once with the network, or download the version first");
    return make_error(ErrorCode::usage, "Version " + std::to_string(args.version) + " not found",
                      repo, "`kernels versions " + repo + "` lists the versions");
  }
  const std::string& commit = found->second;
  // refs/vN, as `download` writes it, so that a later offline run finds this version.
  const std::string version_ref = "v" + std::to_string(args.version);
  if (Result<std::string> cached = ctx.cache().read_ref(repo, version_ref);
      !cached || *cached != commit) {
    if (Result<void> w = ctx.cache().write_ref(repo, version_ref, commit); !w)
      ctx.console().warn("could not write refs/" + version_ref + ": " + w.error().message());
  }
  const std::string object = repo + " (revision: " + commit + ")";
  Result<RepoTree> tree = ctx.tree(repo, commit);
  if (!tree) return tree.error();
  Result<std::vector<std::string>> variants = pick_variants(ctx, args, *tree, object);
  if (!variants) return variants.error();

  Result<BlobLockPolicy> locks = ctx.locks();
  if (!locks) return locks.error();
  std::vector<TreeEntry> files;
  for (const std::string& v : *variants) {
    std::vector<TreeEntry> f = variant_files(*tree, v);
    files.insert(files.end(), f.begin(), f.end());
  }
  InstallReport report = install_files(ctx.cache(), repo, commit, files,
                                       ctx.hub_access(repo + "@" + commit), ctx.console(), *locks);
  if (!report.ok()) return report.errors.front();

  using Kind = sigstore::VariantSignature::Kind;
  std::size_t failed = 0;
  nlohmann::json doc = nlohmann::json::array();
  for (const std::string& v : *variants) {
    std::filesystem::path dir = ctx.cache().snapshot_dir(repo, commit) / "build" / v;
    sigstore::VariantSignature result = sigstore::verify_variant_signature(dir, *root, policy);
    if (args.filter_unsigned && result.kind == Kind::bundle_missing) continue;
    if (args.filter_no_digest &&
        (result.kind == Kind::metadata_missing || result.kind == Kind::digest_missing))
      continue;
    if (result.kind != Kind::verified) ++failed;
    if (ctx.console().json()) {
      nlohmann::json item = {{"variant", v},
                             {"verified", result.kind == Kind::verified},
                             {"message", sigstore::describe(result, v)},
                             {"reasons", result.reasons}};
      if (result.refusal) item["check"] = sigstore::check_name(result.refusal->check);
      if (const auto& who = result.verified)
        item["signer"] = {{"issuer", who->signer.issuer},
                          {"source_repository", who->signer.source_repository},
                          {"build_signer_uri", who->signer.build_signer_uri},
                          {"integrated_time", who->integrated_time},
                          {"log_url", who->log_url},
                          {"log_index", who->log_index}};
      doc.push_back(std::move(item));
      continue;
    }
    ctx.console().out(sigstore::describe(result, v) + "\n");
    if (result.verified)
      ctx.console().debug(
          v + ": signed by " + result.verified->signer.build_signer_uri + " at integrated time " +
          std::to_string(result.verified->integrated_time) + " (" + result.verified->log_url +
          ", log index " + std::to_string(result.verified->log_index) + ")");
  }
  if (ctx.console().json())
    ctx.console().set_result({{"repo_id", repo}, {"commit", commit}, {"variants", std::move(doc)}});
  if (failed > 0)
    return make_error(ErrorCode::integrity_mismatch,
                      std::to_string(failed) + " of " + std::to_string(variants->size()) +
                          " variant" + (variants->size() == 1 ? "" : "s") +
                          " failed signature verification",
                      object, "do not use these builds; docs/SIGNATURES.md explains each message");
  return ok();
}

}  // namespace

void add_verify_signature_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<VerifySignatureArgs>();
  CLI::App* cmd = app.add_subcommand(
      "verify-signature", "Verify the Sigstore signature of a kernel version's variants, offline");
  cmd->add_option("repo_id", args->repo, "Kernel repo, org/name")->required();
  cmd->add_option("version", args->version, "Kernel version N (the Hub branch vN)")
      ->required()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--all-variants", args->all_variants,
                "Verify every build variant (default: the one this machine would use)");
  cmd->add_flag("--filter-unsigned", args->filter_unsigned, "Skip unsigned variants");
  cmd->add_flag("--filter-no-digest", args->filter_no_digest,
                "Skip variants without a digest in the metadata");
  cmd->add_option("--trusted-root", args->trusted_root,
                  "Sigstore trusted_root.json (default: $KERNELS_SIGSTORE_TRUSTED_ROOT, else the "
                  "one `kernels trust-root refresh` stored, else the built-in public-good root)");
  cmd->add_option("--project-dir", args->project_dir,
                  "Where pyproject.toml's [tool.kernels.signatures] is read (default: .)");
  add_system_options(*cmd, args->system);
  cmd->callback([args, &chosen] {
    chosen = [args](CommandContext& ctx) { return run_verify_signature(ctx, *args); };
  });
}

}  // namespace kernels::cli
