// Who must have signed: the identity a Fulcio certificate carries (its OIDC issuer, source
// repository and build signer workflow, Fulcio's extensions 1.3.6.1.4.1.57264.1.*) against what a
// kernel repo expects.
//
// The default for the kernels-community organisation is Python kernels 0.17's
// GitHubWorkflowPolicy: issuer https://token.actions.githubusercontent.com (in both the v1 and
// the v2 extension), source repository https://github.com/huggingface/kernels-community, build
// signer one of its build, build-mac, build-windows and sign-old-builds workflows on main. As in
// 0.17, it applies to every repo unless the project names another identity for it in
// pyproject.toml:
//
//   [tool.kernels.signatures."acme/relu"]
//   issuer = "https://token.actions.githubusercontent.com"
//   source-repository = "https://github.com/acme/kernels"
//   workflows = ["https://github.com/acme/kernels/.github/workflows/build.yaml@refs/heads/main"]
//
// and `require = true` in [tool.kernels.signatures] makes `kernels download` refuse any variant
// whose signature does not verify (as --require-signatures does).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/lockfile/error.h"

namespace kernels::sigstore {

struct SignerIdentity {
  std::string issuer;             // 1.3.6.1.4.1.57264.1.8 (v2), else 1.1 (v1)
  std::string source_repository;  // 1.3.6.1.4.1.57264.1.12
  std::string build_signer_uri;   // 1.3.6.1.4.1.57264.1.9
  std::string san;                // the subject alternative name (URI or e-mail)
};

struct IdentityPolicy {
  std::string issuer;
  std::string source_repository;
  std::vector<std::string> build_signer_uris;  // any one of them
};

IdentityPolicy kernels_community_policy();

struct SignatureSettings {
  bool require = false;                              // require = true
  std::map<std::string, IdentityPolicy> identities;  // repo id -> identity

  // The repo's identity, else kernels_community_policy().
  IdentityPolicy policy_for(const std::string& repo_id) const;
};

// [tool.kernels.signatures] of a pyproject.toml; no table gives the defaults. In an identity every
// key is required; an unknown key, a wrong type or an empty list is ErrorCode::lockfile_invalid
// naming <source>:<line>:<column>.
Result<SignatureSettings> parse_signature_settings(std::string_view toml_text,
                                                   std::string_view source);
// <project_dir>/pyproject.toml's settings; the defaults when there is no such file.
Result<SignatureSettings> read_signature_settings(const std::filesystem::path& project_dir);

}  // namespace kernels::sigstore
