#include "kernels/sigstore/policy.h"

#include <fstream>
#include <sstream>

#include <toml++/toml.h>

// lockfile's screen in front of toml++ (its header says why toml++ must never see a non-ASCII
// byte); the function is in kernels_lockfile, the header is internal to it.
#include "toml_screen.h"

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

// A string value; the screen turned non-ASCII characters into '?', which no identity (URLs
// Fulcio writes) contains, so such a value is refused rather than compared.
const std::string* text_of(const toml::node* node) {
  if (!node || !node->is_string()) return nullptr;
  const std::string* s = &node->as_string()->get();
  return s->find('?') == std::string::npos ? s : nullptr;
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

IdentityPolicy SignatureSettings::policy_for(const std::string& repo_id) const {
  auto it = identities.find(repo_id);
  return it == identities.end() ? kernels_community_policy() : it->second;
}

Result<SignatureSettings> parse_signature_settings(std::string_view toml_text,
                                                   std::string_view source) {
  std::string ascii;
  if (auto finding = screen_toml_for_parser(toml_text, ascii))
    return invalid(std::move(finding->what), std::string(source) + ":" +
                                                 std::to_string(finding->line) + ":" +
                                                 std::to_string(finding->column));
  toml::table root;
  try {
    root = toml::parse(ascii, source);
  } catch (const toml::parse_error& e) {
    return invalid(std::string(e.description()), at(source, e.source()));
  }
  SignatureSettings out;
  const toml::node* node = root.at_path("tool.kernels.signatures").node();
  if (!node) return out;
  if (!node->is_table())
    return invalid("[tool.kernels.signatures] must be a table", at(source, node->source()));
  for (auto&& [key, value] : *node->as_table()) {
    const std::string repo(key.str());
    const std::string where = at(source, value.source());
    if (repo == "require") {
      if (!value.is_boolean())
        return invalid("require in [tool.kernels.signatures] must be true or false", where);
      out.require = value.as_boolean()->get();
      continue;
    }
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
    out.identities.emplace(repo, std::move(policy));
  }
  return out;
}

Result<SignatureSettings> read_signature_settings(const std::filesystem::path& project_dir) {
  const std::filesystem::path file = project_dir / "pyproject.toml";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return SignatureSettings{};
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof())
    return make_error(ErrorCode::io, "cannot read pyproject.toml", file.string(),
                      "check its permissions");
  return parse_signature_settings(text.str(), file.string());
}

}  // namespace kernels::sigstore
