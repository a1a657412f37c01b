// `kernels download [PROJECT_DIR] [--all-variants] [--variant NAME]...`: every locked sha into the
// cache, verified before it becomes visible; a warm cache is a stat-only no-op with no request.
// Verified: each file against the Hub tree (size, sha256 / git sha1), each variant's hash
// against the lock's (format 1) or its sidecar's (format 2, when it names the commit), and each
// file against its variant's metadata.json digest when the variant has one. With
// --require-signatures (or [tool.kernels.signatures] require = true) each variant's
// metadata.json must also carry a Sigstore signature that verifies (docs/SIGNATURES.md) before it
// is linked, and a digest; the result is recorded in the cache (signature_record_path). The
// repos of a format 1 lock are checked for a trusted publisher before their first fetch
// (trusted_publisher.h).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "hub/interrupt.h"
#include "kernel_checks.h"
#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/cache_dir.h"
#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/lock_hashes.h"
#include "kernels/lockfile/signature_record.h"
#include "kernels/lockfile/variant_files.h"
#include "kernels/lockfile/variant_hash.h"
#include "kernels/lockfile/variant_metadata.h"
#include "kernels/sigstore/policy.h"
#include "kernels/sigstore/verify.h"
#include "project.h"
#include "trusted_publisher.h"

namespace kernels::cli {
namespace {

struct DownloadArgs {
  std::string project_dir = ".";
  bool all_variants = false;
  std::vector<std::string> variants;
  bool require_signatures = false;
  std::string trusted_root;
  SystemOptions system;
  std::vector<std::string> allow_untrusted;
};

// A variant's metadata.json whose signature verified: who signed it, and the SHA-256 of the bytes.
struct VerifiedMetadata {
  sigstore::Verified who;
  std::string metadata_sha256;
};

// What --require-signatures checks each variant's metadata.json against.
struct SignatureRequirement {
  sigstore::TrustedRoot root;
  sigstore::SignatureSettings settings;
};

std::optional<std::string> file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The lock's variant hashes, recomputed from the tree, must match before a byte is fetched: a
// Hub (or mirror) that now serves different files for the locked commit is caught here. A format 2
// lock whose sidecar does not name the commit has no hashes to compare.
Result<void> check_against_lock(const KernelLock& locked, const RepoTree& tree,
                                const std::vector<std::string>& variants, const Console& console,
                                Lockfile::Form form) {
  if (form == Lockfile::Form::dependency_list && locked.variants.empty()) {
    console.info(
        "  " + dependency_name(locked) +
        ": kernels.lock.hashes records no variant hashes for this commit; files are "
        "checked against the Hub tree and metadata.json digests (`kernels lock` records them)");
    return ok();
  }
  std::map<std::string, VariantLock> computed = compute_variant_hashes(tree);
  for (const std::string& v : variants) {
    if (!is_hashed_variant(v)) {
      console.debug(locked.repo_id + ": " + v +
                    " is not covered by kernels.lock hashes; its files are verified one by one");
      continue;
    }
    auto want = locked.variants.find(v);
    if (want == locked.variants.end()) {
      return make_error(ErrorCode::integrity_mismatch, "No lock found for build variant: " + v,
                        locked.repo_id + "@" + locked.sha,
                        "run `kernels lock` again to lock every variant of this commit");
    }
    auto got = computed.find(v);
    std::string got_hash = got == computed.end() ? std::string("(no files)") : got->second.hash;
    if (got == computed.end() || got->second.hash != want->second.hash) {
      return make_error(ErrorCode::integrity_mismatch,
                        "Lock file specifies kernel with hash " + want->second.hash +
                            ", but the Hub's file list gives hash: " + got_hash + " (variant " + v +
                            ")",
                        locked.repo_id + "@" + locked.sha,
                        "nothing was downloaded; the Hub or mirror serves different files for the "
                        "locked commit than when it was locked");
    }
  }
  return ok();
}

std::string where(const KernelLock& locked, const std::string& path = {}) {
  return locked.repo_id + "@" + locked.sha + (path.empty() ? "" : ":" + path);
}

// The digests of the selected variants' metadata.json, and the check each other file must pass
// before it is linked. A variant whose tree lists metadata.json gets it installed first (checked
// against the tree like any file) and parsed; one without metadata.json, or without a digest in
// it, is checked against the Hub tree (and the lock's hashes) alone.
class MetadataDigests {
 public:
  Result<void> load(CommandContext& ctx, const KernelLock& locked, const RepoTree& tree,
                    const std::vector<std::string>& variants, const BlobLockPolicy& locks,
                    const SignatureRequirement* signatures, bool check_minver) {
    for (const std::string& v : variants) {
      const std::string meta_path = "build/" + v + "/metadata.json";
      auto meta = std::find_if(tree.begin(), tree.end(), [&](const TreeEntry& e) {
        return e.is_file && e.path == meta_path;
      });
      if (meta == tree.end() && signatures)
        return make_error(ErrorCode::integrity_mismatch,
                          "variant " + v + " is not signed: it has no metadata.json", where(locked),
                          "--require-signatures refuses unsigned variants; nothing of this "
                          "variant was made visible");
      if (meta == tree.end()) {
        ctx.console().debug(locked.repo_id + ": " + v +
                            " has no metadata.json, so no per-file digest");
        continue;
      }
      std::optional<std::string> bundle;
      if (signatures) {
        Result<std::string> b = signature_bundle(ctx, locked, tree, v);
        if (!b) return b.error();
        bundle = std::move(*b);
      }
      const sigstore::IdentityPolicy policy = signatures
                                                  ? signatures->settings.policy_for(locked.repo_id)
                                                  : sigstore::IdentityPolicy{};
      // The signature is checked on the verified blob, before metadata.json is linked.
      FileCheck signed_check = nullptr;
      if (signatures)
        signed_check = [&](const TreeEntry&, const std::filesystem::path& content) {
          return check_signature(locked, v, content, *bundle, signatures->root, policy);
        };
      InstallReport report = install_files(ctx.cache(), locked.repo_id, locked.sha, {*meta},
                                           ctx.hub_access(where(locked)), ctx.console(), locks,
                                           signed_check);
      if (!report.ok()) return report.errors.front();
      const std::filesystem::path meta_file = ctx.cache().snapshot_file(locked.repo_id, locked.sha,
                                                                        meta_path);
      if (signatures) {
        // Also when metadata.json was already in the cache (the check above did not run then).
        Result<void> c = check_signature(locked, v, meta_file, *bundle, signatures->root, policy);
        if (!c) return c.error();
        verified_.emplace(v, *last_verified_);
      }
      Result<VariantMetadata> parsed = read_variant_metadata(meta_file, where(locked, meta_path));
      if (!parsed) return parsed.error();
      if (!parsed->digest && signatures)
        return make_error(ErrorCode::integrity_mismatch,
                          "variant " + v +
                              "'s signed metadata.json has no digest, so the "
                              "signature covers none of its files",
                          where(locked, meta_path),
                          "--require-signatures needs a digest; nothing else of this variant "
                          "was made visible");
      // kernels 0.17.2 refuses a variant whose kernels-minver is newer before fetching it (at
      // load); --all-variants fetches without loading, as there.
      if (check_minver) {
        if (std::optional<std::string> too_new = minver_problem(*parsed, v)) {
          return make_error(ErrorCode::no_variant, *too_new, where(locked, meta_path),
                            "this kernels CLI implements the Python kernels " +
                                std::string(kPythonKernelsVersion) +
                                "; use a kernel version made for it (`kernels versions " +
                                locked.repo_id + "`)");
        }
      }
      if (!parsed->digest) {
        ctx.console().debug(locked.repo_id + ": " + v + "'s metadata.json has no digest");
        continue;
      }
      const VariantDigest& digest = digests_.emplace(v, std::move(*parsed->digest)).first->second;
      std::vector<std::string> rel_paths;
      const std::string prefix = "build/" + v + "/";
      for (const TreeEntry& e : variant_files(tree, v)) {
        rel_paths.push_back(e.path.substr(prefix.size()));
        covered_.emplace(e.path, std::pair{&digest, e.path.substr(prefix.size())});
      }
      // The file set is checked from the listing, before a byte of the variant is fetched.
      std::vector<DigestViolation> wrong = check_digest_paths(digest, rel_paths);
      if (!wrong.empty()) {
        std::string all;
        for (const DigestViolation& w : wrong) all += "\n  " + w.message();
        return make_error(ErrorCode::integrity_mismatch,
                          "the Hub's files of variant " + v +
                              " are not those its metadata.json digest lists:" + all,
                          where(locked), "nothing of this variant was downloaded");
      }
    }
    return ok();
  }

  // Per variant, who signed it (only with --require-signatures).
  const std::map<std::string, VerifiedMetadata>& verified() const { return verified_; }

  FileCheck check(const KernelLock& locked) const {
    if (covered_.empty()) return nullptr;
    return [this, &locked](const TreeEntry& e,
                           const std::filesystem::path& content) -> Result<void> {
      auto it = covered_.find(e.path);
      if (it == covered_.end() || !is_digest_covered(it->second.second)) return ok();
      if (auto wrong = check_digest_file(*it->second.first, it->second.second, content)) {
        return make_error(ErrorCode::integrity_mismatch,
                          "metadata.json digest: " + wrong->message(), where(locked, e.path),
                          "the file was not made visible in the cache; the Hub serves bytes its "
                          "variant's metadata.json does not describe");
      }
      return ok();
    };
  }

 private:
  // The variant's metadata.json.sigstore bytes: from the snapshot when already there, else from
  // the Hub, checked against the tree like any file (it becomes visible with the variant's files).
  static Result<std::string> signature_bundle(CommandContext& ctx, const KernelLock& locked,
                                              const RepoTree& tree, const std::string& v) {
    const std::string path = "build/" + v + "/metadata.json.sigstore";
    auto entry = std::find_if(tree.begin(), tree.end(),
                              [&](const TreeEntry& e) { return e.is_file && e.path == path; });
    if (entry == tree.end())
      return make_error(ErrorCode::integrity_mismatch,
                        "variant " + v + " is not signed: the Hub lists no metadata.json.sigstore",
                        where(locked),
                        "--require-signatures refuses unsigned variants; nothing "
                        "of this variant was made visible");
    if (snapshot_file_present(ctx.cache(), locked.repo_id, locked.sha, *entry)) {
      if (auto bytes = file_bytes(ctx.cache().snapshot_file(locked.repo_id, locked.sha, path)))
        return *bytes;
    }
    Result<HubClient*> hub = ctx.hub(where(locked, path));
    if (!hub) return hub.error();
    Result<std::optional<std::string>> text = (*hub)->fetch_text(locked.repo_id, locked.sha, path,
                                                                 4 << 20);
    if (!text) return text.error();
    if (!*text)
      return make_error(ErrorCode::integrity_mismatch, "the Hub lists but does not serve " + path,
                        where(locked), "nothing of this variant was made visible");
    const std::string& bytes = **text;
    Result<void> c = check_bytes(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                           bytes.size()),
                                 entry->digest(), where(locked, path));
    if (!c) return c.error();
    return bytes;
  }

  Result<void> check_signature(const KernelLock& locked, const std::string& v,
                               const std::filesystem::path& metadata, const std::string& bundle,
                               const sigstore::TrustedRoot& root,
                               const sigstore::IdentityPolicy& policy) {
    std::optional<std::string> bytes = file_bytes(metadata);
    if (!bytes) return make_error(ErrorCode::io, "cannot read metadata.json", metadata.string());
    sigstore::Verdict verdict = sigstore::verify_bundle(*bytes, bundle, root, policy);
    if (const auto* r = std::get_if<sigstore::Refusal>(&verdict))
      return make_error(ErrorCode::integrity_mismatch,
                        "the signature of variant " + v + "'s metadata.json is refused: " +
                            std::string(sigstore::check_name(r->check)) + ": " + r->message,
                        where(locked, "build/" + v + "/metadata.json"),
                        "nothing of this variant was made visible; `kernels verify-signature` "
                        "explains the checks (docs/SIGNATURES.md)");
    Sha256 sha;
    sha.update(*bytes);
    last_verified_ = VerifiedMetadata{std::get<sigstore::Verified>(verdict), sha.finish_hex()};
    return ok();
  }

  std::map<std::string, VerifiedMetadata> verified_;
  std::optional<VerifiedMetadata> last_verified_;
  std::map<std::string, VariantDigest> digests_;
  // repo path -> (its variant's digest, the path inside the variant)
  std::map<std::string, std::pair<const VariantDigest*, std::string>> covered_;
};

// <repo>/signatures/<commit>/<variant>.json: who signed the variant's metadata.json (bytes with
// SHA-256 `metadata_sha256`) and when, as verified before the variant became visible
// (lockfile/signature_record.h, docs/SIGNATURES.md).
Result<void> record_signature(const CacheLayout& cache, const KernelLock& locked,
                              const std::string& variant, const VerifiedMetadata& verified,
                              const sigstore::TrustedRoot& root) {
  const sigstore::Verified& who = verified.who;
  SignatureRecord record;
  record.repo_id = locked.repo_id;
  record.commit = locked.sha;
  record.variant = variant;
  record.verified = true;
  record.metadata_sha256 = verified.metadata_sha256;
  record.issuer = who.signer.issuer;
  record.source_repository = who.signer.source_repository;
  record.build_signer_uri = who.signer.build_signer_uri;
  record.subject_alt_name = who.signer.san;
  record.integrated_time = static_cast<std::uint64_t>(
      std::max<std::int64_t>(who.integrated_time, 0));
  record.log_url = who.log_url;
  record.log_index = who.log_index;
  record.trusted_root = root.source;
  const std::filesystem::path path = cache.signature_record_path(locked.repo_id, locked.sha,
                                                                 variant);
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  return write_atomic(path, signature_record_text(record));
}

// kernels 0.17.2's best-effort suggestion when no variant of the locked commit fits: the repo's
// highest version vN, if one of its variants fits, in 0.17.2's words ("" otherwise, and on any
// failure: it never hides the original error).
std::string newer_version_suggestion(CommandContext& ctx, const std::string& repo_id,
                                     const TargetSystems& targets, const std::string& problem) {
  if (ctx.offline()) return "";
  Result<std::map<int, std::string>> versions = ctx.versions(repo_id);
  if (!versions || versions->empty()) return "";
  const auto& [latest, commit] = *versions->rbegin();
  Result<RepoTree> tree = ctx.tree(repo_id, commit);
  if (!tree) return "";
  VariantChoice choice = choose_variants(tree_variants(*tree), targets, problem);
  if (choice.chosen.empty()) return "";
  return "\n\nHowever, version v" + std::to_string(latest) + " of '" + repo_id +
         "' has a build compatible with your system (" + choice.chosen.front() +
         "). Consider upgrading to that version by specifying the `version` argument.";
}

// The command's problems. The first is held back: when it stays the only one it is the command's
// error and main() prints it, once; when another follows, both are printed as they come and the
// command's error only counts them.
struct Outcome {
  explicit Outcome(const Console& c) : console(c) {}
  const Console& console;
  std::optional<Error> first_error;
  std::size_t count = 0;
  void record(const Error& e) {
    if (++count == 1) {
      first_error = e;
      return;
    }
    if (count == 2) console.error(*first_error);
    console.error(e);
  }
  // The command stops early with `e`: a problem still held back is printed first, so that
  // nothing recorded goes unsaid.
  Error stop(Error e) const {
    if (count == 1) console.error(*first_error);
    return e;
  }
  Error result() const {
    if (count == 1) return *first_error;
    return make_error(first_error->code,
                      "download incomplete: " + std::to_string(count) + " problems (above)", "",
                      "");
  }
};

Result<void> run_download(CommandContext& ctx, const DownloadArgs& args) {
  const Console& console = ctx.console();
  std::filesystem::path dir(args.project_dir);
  Result<Lockfile> lock = read_project_lock(dir);
  if (!lock) return lock.error();
  Result<BlobLockPolicy> locks = ctx.locks();
  if (!locks) return locks.error();
  std::map<std::string, int> versions = project_versions(dir);
  // Signatures: asked for on the command line or in pyproject.toml. The trusted root and the
  // identities are read before anything is fetched, so a bad one fetches nothing.
  Result<sigstore::SignatureSettings> settings = sigstore::read_signature_settings(dir);
  if (!settings) return settings.error();
  std::optional<SignatureRequirement> signatures;
  if (args.require_signatures || settings->require) {
    std::optional<std::filesystem::path> root_file;
    if (!args.trusted_root.empty()) root_file = args.trusted_root;
    Result<sigstore::TrustedRoot> root = sigstore::load_trusted_root(root_file, ctx.cache().root());
    if (!root) return root.error();
    signatures = SignatureRequirement{std::move(*root), std::move(*settings)};
  } else if (!args.trusted_root.empty()) {
    return make_error(ErrorCode::usage, "--trusted-root is used only with --require-signatures",
                      "command line", "add --require-signatures, or drop --trusted-root");
  }
  Result<std::vector<TrustedPublishers::Allowed>> allowed = allowed_untrusted(args.allow_untrusted,
                                                                              args.project_dir);
  if (!allowed) return allowed.error();
  TrustedPublishers trust(std::move(*allowed));

  std::optional<DriverFacts> driver;  // probed only when a cubin variant has to be chosen
  Outcome outcome{console};
  std::size_t fetched_files = 0;
  std::uint64_t fetched_bytes = 0;
  nlohmann::json downloaded = nlohmann::json::array();  // --json: each repo that is complete

  const bool v2 = lock->form == Lockfile::Form::dependency_list;
  for (const KernelLock& locked : lock->kernels) {
    if (hub::interrupted()) return make_error(ErrorCode::network, "interrupted", locked.repo_id);
    // Each tool's own line: 0.17 (format 2) and 0.16 (format 1) word it differently.
    console.info(v2 ? "Downloading kernel: " + locked.repo_id + " (revision: " + locked.sha + ")"
                    : "Downloading `" + locked.repo_id + "` with SHA: " + locked.sha);
    // A format 1 lock may come from kernels 0.16, which never checked publishers: a repo of it
    // whose tree this cache has never listed (so never locked or fetched here) is checked before
    // anything of it is fetched. Format 2 locks were checked when locked (0.17.2 and ours).
    std::error_code tree_ec;
    if (!v2 && !ctx.offline() &&
        !std::filesystem::exists(ctx.cache().tree_path(locked.repo_id, locked.sha), tree_ec)) {
      if (Result<void> trusted = trust.check(ctx, locked.repo_id); !trusted) {
        if (trusted.error().code == ErrorCode::usage || hub::interrupted()) {
          return outcome.stop(trusted.error());
        }
        outcome.record(trusted.error());
        continue;
      }
    }
    Result<RepoTree> tree = ctx.tree(locked.repo_id, locked.sha);
    // A bad setting (KERNELS_JOBS=0, a malformed proxy) is wrong for every repo: say it once.
    if (!tree && tree.error().code == ErrorCode::usage) return outcome.stop(tree.error());
    if (!tree) {
      outcome.record(tree.error());
      continue;
    }
    std::vector<std::string> names = tree_variants(*tree);
    std::vector<std::string> selected;
    if (!args.variants.empty()) {
      for (const std::string& v : args.variants) {
        if (std::find(names.begin(), names.end(), v) != names.end()) selected.push_back(v);
      }
      if (selected.empty()) {
        Error e = make_error(ErrorCode::no_variant, "none of the requested variants exists",
                             locked.repo_id + "@" + locked.sha,
                             "`kernels info " + locked.repo_id + " --revision " + locked.sha +
                                 " --variants" + "` lists its variants");
        outcome.record(e);
        continue;
      }
    } else if (args.all_variants) {
      selected = names;
    } else {
      bool has_cubin = std::any_of(names.begin(), names.end(),
                                   [](const std::string& n) { return n.rfind("cubin-", 0) == 0; });
      if (has_cubin && !driver && args.system.compute_capability.empty()) driver = probe_driver();
      DriverFacts facts = driver ? *driver : DriverFacts{};
      Result<TargetSystems> targets = describe_targets(args.system, facts);
      if (!targets) return outcome.stop(targets.error());
      VariantChoice choice = choose_variants(names, *targets, facts.problem);
      for (const std::string& note : choice.notes) console.info(note);
      if (choice.chosen.empty()) {
        Error e = make_error(ErrorCode::no_variant,
                             "Cannot find a build variant for this system in " + locked.repo_id +
                                 " (revision: " + locked.sha + ")" +
                                 (choice.trace.empty() ? "" : ":\n\n" + choice.trace) +
                                 newer_version_suggestion(ctx, locked.repo_id, *targets,
                                                          facts.problem),
                             locked.repo_id,
                             "`kernels variant` shows this machine's facts; --all-variants fetches "
                             "every variant");
        outcome.record(e);
        continue;
      }
      selected = choice.chosen;
    }
    for (const std::string& v : selected) console.debug(locked.repo_id + ": variant " + v);

    if (Result<void> checked = check_against_lock(locked, *tree, selected, console, lock->form);
        !checked) {
      outcome.record(checked.error());
      continue;
    }
    MetadataDigests digests;
    if (Result<void> loaded = digests.load(ctx, locked, *tree, selected, *locks,
                                           signatures ? &*signatures : nullptr, !args.all_variants);
        !loaded) {
      outcome.record(loaded.error());
      continue;
    }

    std::vector<TreeEntry> files;
    for (const std::string& v : selected) {
      std::vector<TreeEntry> f = variant_files(*tree, v);
      files.insert(files.end(), f.begin(), f.end());
    }
    InstallReport report = install_files(ctx.cache(), locked.repo_id, locked.sha, files,
                                         ctx.hub_access(locked.repo_id + "@" + locked.sha), console,
                                         *locks, digests.check(locked));
    fetched_files += report.fetched;
    fetched_bytes += report.bytes_fetched;
    if (hub::interrupted()) return make_error(ErrorCode::network, "interrupted", locked.repo_id);
    for (const Error& e : report.errors) {
      if (e.code == ErrorCode::usage)
        return outcome.stop(e);  // a bad setting, as for the tree above
      outcome.record(e);
    }
    if (!report.ok()) continue;
    downloaded.push_back({{"repo_id", locked.repo_id},
                          {"sha", locked.sha},
                          {"variants", selected},
                          {"files", report.files},
                          {"fetched", report.fetched},
                          {"bytes_fetched", report.bytes_fetched},
                          {"already_cached", report.already_cached}});
    for (const auto& [variant, who] : digests.verified()) {
      Result<void> w = record_signature(ctx.cache(), locked, variant, who, signatures->root);
      if (!w) console.warn("could not record the verified signature: " + w.error().message());
      console.debug("  " + variant + ": signed by " + who.who.signer.build_signer_uri);
    }
    if (report.fetched > 0 || report.linked > 0) {
      console.info("  " + std::to_string(selected.size()) + " variant" +
                   (selected.size() == 1 ? "" : "s") + ", " + std::to_string(report.files) +
                   " files: fetched " + std::to_string(report.fetched) + " (" +
                   format_bytes(report.bytes_fetched) + "), " +
                   std::to_string(report.already_cached) + " already cached");
    } else {
      console.debug("  all " + std::to_string(report.files) + " files already cached");
    }

    // refs/vN lets a later offline `version=N` load find this commit (Python never writes it).
    // A format 2 entry names its version, or is a revision (no branch to record); a format 1
    // entry's version is the project's.
    std::optional<int> version = locked.version;
    if (!version && !v2) {
      if (auto it = versions.find(locked.repo_id); it != versions.end()) version = it->second;
    }
    if (version) {
      std::string ref = "v" + std::to_string(*version);
      Result<std::string> current = ctx.cache().read_ref(locked.repo_id, ref);
      if (!current || *current != locked.sha) {
        if (Result<void> w = ctx.cache().write_ref(locked.repo_id, ref, locked.sha); !w) {
          console.warn("could not write refs/" + ref + ": " + w.error().message());
        }
      }
    }
  }

  // The loader reads <cache>/kernels.lock with no configuration, and every project's lock is kept
  // beside it (cache.h), so projects sharing a cache do not hide each other's kernels from the
  // loader or from prune. Copied only when different: a warm run (and a read-only cache) writes
  // nothing.
  if (!outcome.first_error) {
    std::optional<std::string> project_bytes = file_bytes(dir / "kernels.lock");
    // The hashes sidecar goes with a format 2 lock (before it: a reader of the new lock finds
    // them); a copy whose project has none is emptied rather than left to describe another lock.
    std::optional<std::string> sidecar_bytes;
    if (v2) {
      sidecar_bytes = file_bytes(lock_hashes_path(dir / "kernels.lock"));
      if (!sidecar_bytes) sidecar_bytes = serialize_lock_hashes(LockHashes{});
    }
    const std::filesystem::path kept = ctx.cache().project_lock_path(dir);
    std::error_code ec;
    const std::string project_path =
        std::filesystem::weakly_canonical(std::filesystem::absolute(dir), ec).string();
    for (const auto& [path, bytes] :
         {std::pair{lock_hashes_path(ctx.cache().lockfile_path()), sidecar_bytes},
          std::pair{ctx.cache().lockfile_path(), project_bytes},
          std::pair{lock_hashes_path(kept), sidecar_bytes}, std::pair{kept, project_bytes},
          std::pair{kept.parent_path() / "project",
                    std::optional<std::string>(project_path + "\n")}}) {
      if (!bytes || file_bytes(path) == bytes) continue;
      // Not a warning: without it the loader silently serves the built-in kernels. Written
      // through directories opened without following links (a planted .kernels-projects link
      // is refused, exit 11).
      auto dir = CacheDir::open_below(ctx.cache().root(), path.parent_path(), true);
      if (!dir && dir.error().code == ErrorCode::unsafe) return dir.error();
      Result<void> w = dir ? dir->write_atomic(path.filename().string(), *bytes)
                           : Result<void>(dir.error());
      if (!w) {
        Error e = w.error();
        e.what = "cannot copy kernels.lock into the cache, where the loader reads it: " + e.what;
        e.hint = "make " + path.parent_path().string() +
                 " writable and run `kernels download` again, or point the loader at the "
                 "project's lock with KERNELS_LOCKFILE";
        return e;
      }
    }
  }
  console.set_result({{"lockfile", (dir / "kernels.lock").string()},
                      {"kernels", std::move(downloaded)},
                      {"fetched_files", fetched_files},
                      {"fetched_bytes", fetched_bytes}});
  if (fetched_files > 0) {
    std::uint64_t cdn = ctx.http_requests() - std::min(ctx.http_requests(), ctx.hub_requests());
    console.info(
        "Fetched " + std::to_string(fetched_files) + " files (" + format_bytes(fetched_bytes) +
        ") in " + std::to_string(ctx.hub_requests()) + " Hub requests" +
        (cdn ? " (+" + std::to_string(cdn) + " to the CDN they redirect to)" : std::string()));
  }
  if (outcome.first_error) return outcome.result();
  return ok();
}

}  // namespace

void add_download_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<DownloadArgs>();
  CLI::App* cmd = app.add_subcommand("download", "Download locked kernels into the cache");
  cmd->add_option("project_dir", args->project_dir,
                  "Project directory with kernels.lock (default: .)");
  cmd->add_flag("--all-variants", args->all_variants, "Download every build variant");
  cmd->add_option("--variant", args->variants, "Download this variant (repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--require-signatures", args->require_signatures,
                "Refuse any variant whose metadata.json has no Sigstore signature that verifies "
                "(also [tool.kernels.signatures] require = true)");
  cmd->add_option("--trusted-root", args->trusted_root,
                  "Sigstore trusted_root.json for --require-signatures (default: "
                  "$KERNELS_SIGSTORE_TRUSTED_ROOT, else the one `kernels trust-root refresh` "
                  "stored, else the built-in public-good root)");
  add_system_options(*cmd, args->system);
  add_allow_untrusted_option(*cmd, args->allow_untrusted);
  cmd->callback([args, &chosen] {
    chosen = [args](CommandContext& ctx) { return run_download(ctx, *args); };
  });
}

}  // namespace kernels::cli
