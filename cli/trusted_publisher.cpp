#include "trusted_publisher.h"

#include <cstdint>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "hub/interrupt.h"
#include "kernels/lockfile/pyproject.h"

namespace kernels::cli {

Result<bool> parse_trusted_kernel_publisher(std::string_view body, std::string_view source) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return make_error(ErrorCode::lockfile_invalid, "the organisation overview is not a JSON object",
                      std::string(source));
  }
  auto it = doc.find("trustedKernelPublisher");
  if (it == doc.end()) return false;
  const nlohmann::json& v = *it;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_unsigned()) return v.get<std::uint64_t>() != 0;
  if (v.is_number_integer()) return v.get<std::int64_t>() != 0;
  if (v.is_number_float()) return v.get<double>() != 0.0;
  if (v.is_string()) return !v.get<std::string>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  return false;  // null
}

std::optional<TrustedPublishers::Allowed> TrustedPublishers::allowed_for(
    const std::string& repo_id) const {
  const std::string org = repo_id.substr(0, repo_id.find('/'));
  for (const Allowed& a : allowed_) {
    if (a.entry == repo_id || a.entry == org) return a;
  }
  return std::nullopt;
}

Result<void> TrustedPublishers::check(CommandContext& ctx, const std::string& repo_id) {
  const Console& console = ctx.console();
  if (ctx.offline()) {
    console.warn("Skipping publisher trust check for '" + repo_id +
                 "' because Hugging Face Hub is in offline mode.");
    return ok();
  }
  const std::string org = repo_id.substr(0, repo_id.find('/'));
  auto known = answers_.find(org);
  if (known == answers_.end()) {
    Result<bool> trusted = [&]() -> Result<bool> {
      Result<HubClient*> hub = ctx.hub("the trust status of publisher " + org);
      if (!hub) return hub.error();
      Result<std::string> body = (*hub)->organization_overview(org);
      if (!body) return body.error();
      return parse_trusted_kernel_publisher(*body, "organization " + org + " overview");
    }();
    if (!trusted && hub::interrupted()) return trusted.error();
    known = answers_.emplace(org, std::move(trusted)).first;
  }
  const Result<bool>& answer = known->second;
  if (answer && *answer) {
    console.debug("'" + org + "' is a trusted kernel publisher (" + repo_id + ")");
    return ok();
  }
  const std::string why = answer ? "the Hub says '" + org + "' is not a trusted kernel publisher"
                                 : "its trust status could not be verified: " +
                                       answer.error().message();
  if (std::optional<Allowed> allowed = allowed_for(repo_id)) {
    console.warn("allowing untrusted kernel repository '" + repo_id + "' (" + why + ") because " +
                 allowed->source + " names '" + allowed->entry + "'");
    return ok();
  }
  const std::string how = "if you trust it, pass --allow-untrusted " + org + " (or add \"" + org +
                          "\" to [tool.kernels] allow-untrusted in pyproject.toml)";
  if (answer) {
    return make_error(ErrorCode::untrusted,
                      "Kernel repository '" + repo_id + "' is not from a trusted publisher.",
                      repo_id,
                      "the Hub's /api/organizations/" + org +
                          "/overview does not set trustedKernelPublisher; " + how);
  }
  const Error& e = answer.error();
  return make_error(e.code == ErrorCode::network ? ErrorCode::network : ErrorCode::untrusted,
                    "Kernel repository '" + repo_id +
                        "' could not verify publisher trust status (" + e.message() + ")",
                    repo_id,
                    "the Hub (or the mirror HF_ENDPOINT names) must answer /api/organizations/" +
                        org +
                        "/overview; a mirror written by an older `kernels mirror` lacks "
                        "it (run `kernels mirror` again); " +
                        how);
}

void add_allow_untrusted_option(CLI::App& command, std::vector<std::string>& out) {
  command
      .add_option("--allow-untrusted", out,
                  "Allow kernels of this organisation (ORG) or repo (ORG/NAME) although the Hub "
                  "does not call its publisher trusted (repeatable; logged; also [tool.kernels] "
                  "allow-untrusted in pyproject.toml)")
      ->type_name("ORG")
      ->allow_extra_args(false)
      ->check([](const std::string& v) {
        return is_allow_untrusted_entry(v)
                   ? std::string()
                   : "expected an organisation (ORG) or a repo id (ORG/NAME), got \"" + v + "\"";
      });
}

Result<std::vector<TrustedPublishers::Allowed>> allowed_untrusted(
    const std::vector<std::string>& command_line, const std::string& project_dir) {
  std::vector<TrustedPublishers::Allowed> out;
  for (const std::string& e : command_line) out.push_back({e, "--allow-untrusted"});
  const std::filesystem::path pyproject = std::filesystem::path(project_dir) / "pyproject.toml";
  std::error_code ec;
  if (!std::filesystem::exists(pyproject, ec)) return out;
  Result<PyprojectKernels> project = read_pyproject_kernels(pyproject);
  if (!project) return project.error();
  for (const std::string& e : project->allow_untrusted) {
    out.push_back({e, pyproject.string() + " [tool.kernels] allow-untrusted"});
  }
  return out;
}

}  // namespace kernels::cli
