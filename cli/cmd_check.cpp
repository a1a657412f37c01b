// `kernels check DIR`: the checks kernels 0.17.2 makes of a kernel's build variants, run on a
// local kernel directory (a repo checkout with build/, its build/, or one variant directory):
// each variant directory's name parses; its metadata.json exists and parses with 0.17.2's schema
// (what `kernels lock` needs of every variant); its kernels-minver is not above 0.17.2 (the
// loader's MinverValidator); and its files match the metadata.json digest (Digest::validate, what
// `verify-signature` checks after the signature). The Python `kernels check` itself only says it
// moved to `kernel-builder check-abi`; this one does not check ABIs either (docs/LOCKFILE.md).
// `kernels benchmark` is not provided by this tool: it says so, exit 2.
#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "kernel_checks.h"
#include "kernels/lockfile/variant.h"
#include "kernels/lockfile/variant_metadata.h"

namespace kernels::cli {
namespace {

namespace fs = std::filesystem;

struct CheckArgs {
  std::string path;
};

// The variant directories to check, sorted by name.
std::vector<fs::path> variant_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::path build = fs::is_directory(dir / "build", ec) ? dir / "build" : dir;
  if (!fs::is_directory(dir / "build", ec) && fs::exists(dir / "metadata.json", ec)) return {dir};
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(build, ec)) {
    if (e.is_directory(ec)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<void> run_check(CommandContext& ctx, const CheckArgs& args) {
  const Console& console = ctx.console();
  std::error_code ec;
  if (!fs::is_directory(args.path, ec)) {
    return make_error(ErrorCode::usage, "`kernels check` has moved to `kernel-builder check-abi`",
                      args.path,
                      "this tool's `kernels check DIR` checks a local kernel directory (its build "
                      "variants' names, metadata.json and digests); give one");
  }
  std::vector<fs::path> dirs = variant_dirs(args.path);
  nlohmann::ordered_json report = nlohmann::ordered_json::array();
  std::optional<ErrorCode> worst;
  std::size_t checked = 0;
  auto fail = [&](ErrorCode code) {
    if (!worst ||
        (*worst != ErrorCode::integrity_mismatch && code == ErrorCode::integrity_mismatch))
      worst = code;
  };
  for (const fs::path& dir : dirs) {
    const std::string name = dir.filename().string();
    nlohmann::ordered_json entry{{"variant", name}, {"problems", nlohmann::ordered_json::array()}};
    auto problem = [&](ErrorCode code, const std::string& text) {
      entry["problems"].push_back(text);
      console.out(ctx.console().json() ? "" : "❌ " + name + ": " + text + "\n");
      fail(code);
    };
    const bool single = dirs.size() == 1 && dir == fs::path(args.path);
    if (!single && !parse_variant_name(name)) {
      console.warn("Repository " + args.path + " contains invalid build variant variant: '" + name +
                   "' (skipped)");
      continue;
    }
    ++checked;
    const fs::path meta = dir / "metadata.json";
    if (!fs::exists(meta, ec)) {
      problem(ErrorCode::lockfile_invalid,
              "no metadata.json (kernels 0.17 cannot lock a kernel with such a variant)");
    } else if (Result<VariantMetadata> m = read_variant_metadata(meta); !m) {
      problem(ErrorCode::lockfile_invalid, "invalid metadata: " + m.error().message());
    } else {
      if (std::optional<std::string> too_new = minver_problem(*m, name)) {
        problem(ErrorCode::no_variant, *too_new);
      }
      if (!m->digest) {
        problem(ErrorCode::integrity_mismatch, "metadata does not have a digest");
      } else {
        std::vector<DigestViolation> wrong = check_variant_digest(dir, *m->digest);
        for (const DigestViolation& w : wrong) {
          problem(ErrorCode::integrity_mismatch, "kernel integrity check failed: " + w.message());
        }
      }
    }
    if (entry["problems"].empty() && !ctx.console().json()) {
      console.out("✅ " + name + ": metadata and digest are valid\n");
    }
    report.push_back(entry);
  }
  if (ctx.console().json())
    console.set_result(
        nlohmann::json{{"path", args.path}, {"variants", nlohmann::json::parse(report.dump())}});
  if (checked == 0) {
    return make_error(ErrorCode::no_variant, "No build variants found in: " + args.path, args.path,
                      "give a kernel directory (with build/<variant>/metadata.json)");
  }
  if (worst) {
    return make_error(*worst, "the kernel directory fails kernels 0.17.2's checks (above)",
                      args.path, "");
  }
  return ok();
}

}  // namespace

void add_check_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "check",
      "Check a local kernel directory: variant names, metadata.json, kernels-minver, digests");
  cmd->add_option("path", args->path, "Kernel directory (with build/), its build/, or a variant")
      ->required();
  cmd->callback(
      [args, &chosen] { chosen = [args](CommandContext& ctx) { return run_check(ctx, *args); }; });

  CLI::App* bench = app.add_subcommand(
      "benchmark", "Not provided by this tool (the Python kernels package has it): exit 2");
  // Whatever follows (the Python command's REPO_ID and options) is taken and ignored: the answer
  // is the same.
  bench->allow_extras();
  bench->prefix_command();
  bench->fallthrough(false);
  bench->callback([&chosen] {
    chosen = [](CommandContext&) -> Result<void> {
      return make_error(ErrorCode::usage,
                        "`kernels benchmark` is not provided by this tool (the C++ kernels CLI)",
                        "benchmark",
                        "run the Python package's: pip install kernels, then `kernels benchmark "
                        "REPO_ID` (it needs torch and a GPU)");
    };
  });
}

}  // namespace kernels::cli
