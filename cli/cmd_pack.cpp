// `kernels pack [PROJECT_DIR] --out FILE [--from-mirror DIR]` and
// `kernels unpack ARCHIVE [PROJECT_DIR] [--to DIR]`: move a cache or a mirror into an air-gapped
// site or a Docker layer. Unpack verifies every file against PROJECT_DIR/kernels.lock before
// anything is visible (cli/pack/pack.h).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string_view>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "kernels/lockfile/text.h"
#include "pack/pack.h"
#include "project.h"

namespace kernels::cli {
namespace {

namespace fs = std::filesystem;

struct PackArgs {
  std::string project_dir = ".";
  std::string out;
  std::string from_mirror;
};

struct UnpackArgs {
  std::string archive;
  std::string project_dir = ".";
  std::string to;
  std::uint64_t max_bytes = 64ull << 30;
  std::uint64_t max_entries = 200000;
};

void report(const Console& console, std::string_view verb, const PackSummary& s,
            const fs::path& where) {
  if (console.json()) {
    console.set_result({{"action", verb},
                        {"kind", pack_kind_name(s.kind)},
                        {"path", fs::absolute(where).string()},
                        {"files", s.files},
                        {"bytes", s.bytes}});
    return;
  }
  console.info(std::string(verb) + " " + std::string(pack_kind_name(s.kind)) + ": " +
               std::to_string(s.files) + " files, " + format_bytes(s.bytes) + " -> " +
               fs::absolute(where).string());
}

// The archive is always a zstd-compressed tar: a name that says otherwise (k.tar.gz) would make
// `tar xzf` and file managers fail on it, so such a name is refused before anything is written.
Result<void> check_archive_name(const std::string& out) {
  const std::string name = ascii_lower(fs::path(out).filename().string());
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".tar.zst") || ends_with(".tzst")) return ok();
  for (std::string_view other : {".gz", ".tgz", ".xz", ".txz", ".bz2", ".tbz", ".tbz2", ".zip",
                                 ".lz4", ".lzma", ".7z", ".tar"}) {
    if (ends_with(other)) {
      return make_error(ErrorCode::usage,
                        "the archive would be a zstd-compressed tar, which this name does not say",
                        out,
                        "name it *.tar.zst (e.g. --out " +
                            (fs::path(out).parent_path() / "kernels.tar.zst").string() + ")");
    }
  }
  return ok();
}

Result<void> run_pack(CommandContext& ctx, const PackArgs& args) {
  if (Result<void> named = check_archive_name(args.out); !named) return named.error();
  Result<Lockfile> lock = read_project_lock(args.project_dir);
  if (!lock) return lock.error();
  if (Result<void> h = require_variant_hashes(*lock, args.project_dir, "pack"); !h) return h;
  Result<PackSummary> s = args.from_mirror.empty() ? pack_cache(ctx.cache().root(), *lock, args.out)
                                                   : pack_mirror(args.from_mirror, *lock, args.out);
  if (!s) return s.error();
  report(ctx.console(), "packed", *s, args.out);
  return ok();
}

Result<void> run_unpack(CommandContext& ctx, const UnpackArgs& args) {
  Result<Lockfile> lock = read_project_lock(args.project_dir);
  if (!lock) return lock.error();
  if (Result<void> h = require_variant_hashes(*lock, args.project_dir, "unpack"); !h) return h;
  Result<PackKind> kind = read_pack_kind(args.archive);
  if (!kind) return kind.error();
  fs::path destination = args.to;
  if (destination.empty()) {
    if (*kind == PackKind::mirror) {
      return make_error(ErrorCode::usage, "this archive holds a mirror", args.archive,
                        "say where it goes with --to DIR");
    }
    destination = ctx.cache().root();
  }
  PackLimits limits;
  limits.max_total_bytes = args.max_bytes;
  limits.max_entries = args.max_entries;
  Result<PackSummary> s = unpack(args.archive, destination, *lock, limits);
  if (!s) return s.error();
  report(ctx.console(), "unpacked", *s, destination);
  return ok();
}

}  // namespace

void add_pack_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<PackArgs>();
  CLI::App* cmd = app.add_subcommand(
      "pack", "Pack what kernels.lock references (from the cache, or a mirror) into a .tar.zst");
  cmd->add_option("project_dir", args->project_dir,
                  "Project directory with kernels.lock (default: .)");
  cmd->add_option("--out", args->out,
                  "Archive to write: a zstd-compressed tar, so named *.tar.zst (or *.tzst; a name "
                  "ending .tar.gz, .tgz, .tar, .zip, ... is refused)")
      ->required();
  cmd->add_option("--from-mirror", args->from_mirror,
                  "Pack this static mirror directory instead of the cache");
  cmd->callback(
      [args, &chosen] { chosen = [args](CommandContext& ctx) { return run_pack(ctx, *args); }; });
}

void add_unpack_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<UnpackArgs>();
  CLI::App* cmd = app.add_subcommand(
      "unpack", "Verify an archive from `kernels pack` against kernels.lock, then unpack it");
  cmd->add_option("archive", args->archive, "Archive made by `kernels pack`")->required();
  cmd->add_option("project_dir", args->project_dir,
                  "Project directory with kernels.lock (default: .)");
  cmd->add_option("--to", args->to,
                  "Destination: a cache root (default: the cache) or a mirror directory");
  cmd->add_option("--max-bytes", args->max_bytes, "Refuse archives holding more bytes than this")
      ->capture_default_str();
  cmd->add_option("--max-entries", args->max_entries, "Refuse archives with more entries than this")
      ->capture_default_str();
  cmd->callback(
      [args, &chosen] { chosen = [args](CommandContext& ctx) { return run_unpack(ctx, *args); }; });
}

}  // namespace kernels::cli
