#include "kernels/sigstore/policy.h"

#include <fstream>
#include <sstream>

#include <toml++/toml.h>

namespace kernels::sigstore {
namespace {

std::string at(std::string_view source, const toml::source_region& region) {
  return std::string(source) + ":" + std::to_string(region.begin.line) + ":" +
         std::to_string(region.begin.column);
}

Error invalid(std::string what, std::string where) {
  return make_error(ErrorCode::lockfile_invalid, std::move(what), std::move(where),
                    "write [tool.kernels.signatures.\"org/name\"] with issuer = \"...\", "
                    "source-repository = \"...\" and workflows = [\"...\"] (docs/SIGNATURES.md)");
}

const std::string* text_of(const toml::node* node) {
  return node && node->is_string() ? &node->as_string()->get() : nullptr;
}

}  // namespace

IdentityPolicy kernels_community_policy() {
  const std::string repo = "https://github.com/huggingface/kernels-community";
  IdentityPolicy policy{"https://token.actions.githubusercontent.com", repo, {}};
  for (const char* workflow : {"build", "build-mac", "build-windows", "sign-old-builds"})
    policy.build_signer_uris.push_back(repo + "/.github/workflows/" + workflow +
                                       ".yaml@refs/heads/main");
  return policy;
}

Result<std::map<std::string, IdentityPolicy>> parse_signature_policies(std::string_view toml_text,
                                                                       std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    return invalid(std::string(e.description()), at(source, e.source()));
  }
  std::map<std::string, IdentityPolicy> out;
  const toml::node* node = root.at_path("tool.kernels.signatures").node();
  if (!node) return out;
  if (!node->is_table())
    return invalid("[tool.kernels.signatures] must be a table", at(source, node->source()));
  for (auto&& [key, value] : *node->as_table()) {
    const std::string repo(key.str());
    const std::string where = at(source, value.source());
    const toml::table* t = value.as_table();
    if (!t) return invalid("[tool.kernels.signatures.\"" + repo + "\"] must be a table", where);
    for (auto&& [k, v] : *t) {
      if (k.str() != "issuer" && k.str() != "source-repository" && k.str() != "workflows")
        return invalid("unknown key \"" + std::string(k.str()) + "\" in the signing identity of " +
                           repo,
                       at(source, k.source()));
    }
    IdentityPolicy policy;
    const std::string* issuer = text_of(t->get("issuer"));
    const std::string* repository = text_of(t->get("source-repository"));
    const toml::array* workflows = t->get("workflows") ? t->get("workflows")->as_array() : nullptr;
    if (!issuer || issuer->empty() || !repository || repository->empty() || !workflows ||
        workflows->empty())
      return invalid("the signing identity of " + repo +
                         " needs issuer, source-repository (strings) and workflows (a non-empty "
                         "list of strings)",
                     where);
    policy.issuer = *issuer;
    policy.source_repository = *repository;
    for (const toml::node& w : *workflows) {
      const std::string* uri = text_of(&w);
      if (!uri || uri->empty())
        return invalid("workflows of " + repo + " must be non-empty strings",
                       at(source, w.source()));
      policy.build_signer_uris.push_back(*uri);
    }
    out.emplace(repo, std::move(policy));
  }
  return out;
}

Result<IdentityPolicy> policy_for(const std::string& repo_id,
                                  const std::filesystem::path& project_dir) {
  const std::filesystem::path file = project_dir / "pyproject.toml";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return kernels_community_policy();
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof())
    return make_error(ErrorCode::io, "cannot read pyproject.toml", file.string(),
                      "check its permissions");
  Result<std::map<std::string, IdentityPolicy>> policies = parse_signature_policies(text.str(),
                                                                                    file.string());
  if (!policies) return policies.error();
  auto it = policies->find(repo_id);
  if (it == policies->end()) return kernels_community_policy();
  return it->second;
}

}  // namespace kernels::sigstore
