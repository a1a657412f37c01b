// `kernels variant [PROJECT_DIR|REPO]`: this machine's facts and, for each kernel, the
// accept/reject trace of every variant (select_variant, format_trace).
#include <filesystem>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "json_document.h"
#include "project.h"

namespace kernels::cli {
namespace {

struct VariantArgs {
  std::string target = ".";
  SystemOptions system;
};

nlohmann::json selection_json(const VariantSelection& s) {
  nlohmann::json trace = nlohmann::json::array();
  for (const auto& d : s.trace) {
    trace.push_back({{"variant", d.variant}, {"accepted", d.accepted}, {"reason", d.reason}});
  }
  return {{"chosen", s.chosen ? nlohmann::json(*s.chosen) : nlohmann::json(nullptr)},
          {"trace", trace}};
}

Result<void> run_variant(CommandContext& ctx, const VariantArgs& args) {
  const Console& console = ctx.console();
  DriverFacts driver = probe_driver();
  Result<TargetSystems> targets = describe_targets(args.system, driver);
  if (!targets) return targets.error();

  // Which repos and commits: a project's lock, or one repo's newest version (or @revision).
  std::vector<std::pair<std::string, std::string>> repos;
  std::error_code ec;
  if (std::filesystem::is_directory(args.target, ec)) {
    // Plain `kernels variant` outside a project: the machine's facts alone.
    bool default_target = args.target == ".";
    if (!(default_target &&
          !std::filesystem::exists(std::filesystem::path(args.target) / "kernels.lock", ec))) {
      Result<Lockfile> lock = read_project_lock(args.target);
      if (!lock) return lock.error();
      for (const auto& k : lock->kernels) repos.emplace_back(k.repo_id, k.sha);
    }
  } else {
    Result<RepoRef> ref = parse_repo_ref(args.target);
    if (!ref) return ref.error();
    std::string commit = ref->revision;
    if (commit.empty()) {
      Result<std::map<int, std::string>> versions = ctx.versions(ref->repo_id);
      if (!versions) return versions.error();
      if (versions->empty()) {
        return make_error(ErrorCode::usage, "Repository does not support kernel versions",
                          ref->repo_id, "name a revision: " + ref->repo_id + "@<commit>");
      }
      commit = versions->rbegin()->second;
    } else if (!is_commit_sha(commit)) {
      Result<HubClient*> hub = ctx.hub();
      if (!hub) return hub.error();
      Result<std::string> sha = (*hub)->resolve_revision(ref->repo_id, commit);
      if (!sha) return sha.error();
      commit = *sha;
    }
    repos.emplace_back(ref->repo_id, commit);
  }

  nlohmann::json doc;
  const SystemInfo& base = targets->systems.front();
  doc["machine"] = {{"driver_found", driver.driver_found},
                    {"driver_cuda", base.driver_cuda ? nlohmann::json(base.driver_cuda->str())
                                                     : nlohmann::json(nullptr)},
                    {"problem", text_or_null(driver.problem)},
                    {"cpu", base.cpu},
                    {"os", base.os},
                    {"torch",
                     base.torch ? nlohmann::json(base.torch->str()) : nlohmann::json(nullptr)},
                    {"backend", base.backend.str()}};
  doc["machine"]["gpus"] = nlohmann::json::array();
  for (const auto& gpu : driver.gpus) {
    doc["machine"]["gpus"].push_back({{"index", gpu.index},
                                      {"name", gpu.name},
                                      {"compute_capability", gpu.compute_capability.str()}});
  }
  std::string text;
  text += "Driver: " +
          (base.driver_cuda ? "CUDA " + base.driver_cuda->str() : std::string("none")) +
          (driver.problem.empty() ? "" : " (" + driver.problem + ")") + "\n";
  for (const auto& gpu : driver.gpus) {
    text += "GPU " + std::to_string(gpu.index) + ": " + gpu.name + ", compute capability " +
            gpu.compute_capability.str() + "\n";
  }
  text += "CPU: " + base.cpu + "\nOS: " + base.os + "\n";
  if (base.torch) text += "Torch: " + base.torch->str() + " (" + base.backend.str() + ")\n";

  doc["kernels"] = nlohmann::json::array();
  for (const auto& [repo_id, commit] : repos) {
    Result<RepoTree> tree = ctx.tree(repo_id, commit);
    if (!tree) return tree.error();
    std::vector<std::string> names = tree_variants(*tree);
    VariantChoice choice = choose_variants(names, *targets, driver.problem);
    nlohmann::json entry = {{"repo_id", repo_id},
                            {"sha", commit},
                            {"chosen", choice.chosen},
                            {"notes", choice.notes}};
    entry["selections"] = nlohmann::json::array();
    for (const SystemInfo& system : targets->systems) {
      entry["selections"].push_back(selection_json(select_variant(names, system)));
    }
    doc["kernels"].push_back(entry);
    text += "\n" + repo_id + "@" + commit + ":\n";
    for (const auto& note : choice.notes) text += "  " + note + "\n";
    text += choice.trace;
    // Without a target described (no GPU, no torch) nothing was traced: every variant's verdict
    // against the system description, so the reader still sees why none fits.
    if (choice.trace.empty())
      text += format_trace(select_variant(names, targets->systems.front())) + "\n";
  }
  if (console.json()) {
    console.set_result(std::move(doc));
  } else {
    console.out(text);
  }
  return ok();
}

}  // namespace

void add_system_options(CLI::App& command, SystemOptions& options) {
  command.add_option("--torch", options.torch, "Target torch version, e.g. 2.10");
  command.add_option("--cuda", options.cuda, "Target torch build's CUDA version, e.g. 12.8");
  command.add_option("--rocm", options.rocm, "Target torch build's ROCm version, e.g. 7.1");
  command.add_option("--tvm-ffi", options.tvm_ffi, "Target tvm-ffi version, e.g. 0.1");
  command.add_flag("--cxx98-abi", options.cxx98_abi, "Target torch uses the pre-C++11 ABI");
  command.add_flag(
      "--cxx11-abi", [&options](std::int64_t) { options.cxx98_abi = false; },
      "Target torch uses the C++11 ABI (the default)");
  command.add_option("--cpu", options.cpu, "Target CPU: x86_64 or aarch64 (default: this machine)");
  command.add_option("--os", options.os,
                     "Target OS: linux, darwin or windows (default: this machine)");
  command.add_option("--driver-cuda", options.driver_cuda,
                     "Target driver's CUDA version for cubin variants (default: probed)");
  command.add_option("--compute-capability", options.compute_capability,
                     "Target GPU compute capability, e.g. 9.0 (default: probed GPUs)");
}

void add_variant_command(CLI::App& app, CommandFn& chosen) {
  auto args = std::make_shared<VariantArgs>();
  CLI::App* cmd = app.add_subcommand(
      "variant",
      "Show this machine's facts and which variants fit (a project dir or org/name[@rev])");
  cmd->add_option("target", args->target, "Project directory or repo id (default: .)");
  add_system_options(*cmd, args->system);
  cmd->callback([args, &chosen] {
    chosen = [args](CommandContext& ctx) { return run_variant(ctx, *args); };
  });
}

}  // namespace kernels::cli
