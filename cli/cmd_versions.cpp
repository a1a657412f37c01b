// `kernels versions REPO`: Python's output (hf-kernels.md §1.1): per branch vN, "Version N:",
// a blank line, then every variant's accept/reject line for this machine.
#include <nlohmann/json.hpp>

#include "commands.h"
#include "project.h"

namespace kernels::cli {
namespace {

Result<void> run_versions(CommandContext& ctx, const std::string& repo_text) {
  Result<RepoRef> ref = parse_repo_ref(repo_text);
  if (!ref) return ref.error();
  Result<std::map<int, std::string>> versions = ctx.versions(ref->repo_id);
  if (!versions) return versions.error();
  const Console& console = ctx.console();
  if (versions->empty()) {
    if (console.json()) {
      console.set_result({{"repo_id", ref->repo_id}, {"versions", nlohmann::json::array()}});
    } else {
      console.out("Repository does not support kernel versions: " + ref->repo_id + "\n");
    }
    return ok();
  }
  DriverFacts driver = probe_driver();
  Result<TargetSystems> targets = describe_targets(SystemOptions{}, driver);
  if (!targets) return targets.error();
  nlohmann::json doc = nlohmann::json::array();
  for (const auto& [n, commit] : *versions) {
    Result<RepoTree> tree = ctx.tree(ref->repo_id, commit);
    if (!tree) return tree.error();
    VariantSelection s = select_variant(tree_variants(*tree), targets->systems.front());
    if (console.json()) {
      nlohmann::json variants = nlohmann::json::array();
      for (const auto& d : s.trace) {
        variants.push_back(
            {{"variant", d.variant}, {"accepted", d.accepted}, {"reason", d.reason}});
      }
      doc.push_back({{"version", n}, {"sha", commit}, {"variants", variants}});
    } else {
      std::string trace = format_trace(s);
      while (!trace.empty() && trace.back() == '\n') trace.pop_back();
      console.out("Version " + std::to_string(n) + ":\n\n" + trace + "\n");
    }
  }
  if (console.json()) console.set_result({{"repo_id", ref->repo_id}, {"versions", std::move(doc)}});
  return ok();
}

}  // namespace

void add_versions_command(CLI::App& app, CommandFn& chosen) {
  auto repo = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("versions", "Show kernel versions");
  cmd->add_option("repo_id", *repo, "The kernel repo ID")->required();
  cmd->callback([repo, &chosen] {
    chosen = [repo](CommandContext& ctx) { return run_versions(ctx, *repo); };
  });
}

}  // namespace kernels::cli
