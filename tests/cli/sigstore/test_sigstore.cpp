// The offline Sigstore verifier: the shipped trusted root, one real public-good bundle, and a
// test PKI made fresh on every run whose every case our verifier and sigstore-python must judge
// alike (accepted by both, or refused by both; ours at the check the case names).
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <catch2/catch.hpp>

#include "kernels/sigstore/tuf.h"
#include "kernels/sigstore/verify.h"
#include "support/skip.h"

namespace fs = std::filesystem;
using namespace kernels;
using namespace kernels::sigstore;

namespace {

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string oracle_python() {
  const char* env = std::getenv("KERNELS_SIGSTORE_ORACLE");
  fs::path venv = env && *env ? fs::path(env) : fs::path(KERNELS_SIGSTORE_ORACLE);
  fs::path python = venv / "bin/python";
  return ::access(python.c_str(), X_OK) == 0 ? python.string() : std::string();
}

// Runs a command (arguments are paths this test made: no quoting needed beyond single quotes).
std::pair<int, std::string> run(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::array<char, 4096> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kernels-sigstore-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const Refusal* refusal(const Verdict& v) { return std::get_if<Refusal>(&v); }

IdentityPolicy rfc8785_release_policy() {
  return {"https://token.actions.githubusercontent.com",
          "https://github.com/trailofbits/rfc8785.py",
          {"https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/"
           "v0.1.2"}};
}

}  // namespace

TEST_CASE("the built-in public-good trusted root names Rekor, the CT logs and Fulcio") {
  Result<TrustedRoot> root = builtin_trusted_root();
  REQUIRE(root.ok());
  CHECK(root->tlogs.size() == 2);
  CHECK(root->ctlogs.size() == 2);
  CHECK(root->certificate_authorities.size() == 2);
  CHECK(root->tlogs[0].base_url == "https://rekor.sigstore.dev");
  CHECK(root->certificate_authorities[1].chain_der.size() == 2);
  REQUIRE(root->timestamp_authorities.size() == 1);
  CHECK(root->timestamp_authorities[0].chain_der.size() == 2);
}

TEST_CASE("the shipped TUF root.json (Sigstore's real keys) verifies under its own threshold") {
  // Real public-good metadata: canonical JSON and ECDSA P-256 as Sigstore signs them. The test
  // TUF repositories (tests/cli/commands/test_trust_root.cpp) cover ed25519 and the workflow.
  const std::string root(kernels::sigstore::builtin_tuf_root());
  REQUIRE(kernels::sigstore::tuf_check_root(root, "shipped").ok());
  // One byte of the signed part changed (the expiry year): fewer than 3 valid signatures.
  std::string changed = root;
  const std::size_t at = changed.find("\"expires\": \"2026");
  REQUIRE(at != std::string::npos);
  changed[at + 15] = '7';
  auto refused = kernels::sigstore::tuf_check_root(changed, "changed");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().what.rfind("TUF signature: 0 valid signature(s) of the root role", 0) == 0);
}

TEST_CASE("a trusted root that is not one is refused, naming what is wrong") {
  auto bad = [](const std::string& json) {
    Result<TrustedRoot> r = parse_trusted_root(json, "root.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::lockfile_invalid);
    CHECK(r.error().object == "root.json");
    return r.error().what;
  };
  CHECK(bad("[").find("not valid JSON") != std::string::npos);
  CHECK(bad(R"({"mediaType":"x"})").find("mediaType") != std::string::npos);
  CHECK(bad(R"({"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"})")
            .find("tlogs") != std::string::npos);
  std::string deep(100, '[');
  CHECK(bad(deep).find("nested deeper") != std::string::npos);
}

TEST_CASE("RFC 3339 times of trusted roots") {
  CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_rfc3339("2021-03-07T03:20:29Z") == 1615087229);
  CHECK(parse_rfc3339("2022-12-31T23:59:59.999Z") == 1672531199);
  CHECK_FALSE(parse_rfc3339("2022-12-31 23:59:59Z"));
  CHECK_FALSE(parse_rfc3339("2022-12-31T23:59:59+01:00"));
  CHECK_FALSE(parse_rfc3339("2022-13-31T23:59:59Z"));
  CHECK_FALSE(parse_rfc3339("2022-12-31T23:59:59.Z"));
}

TEST_CASE("a real public-good bundle verifies against the shipped trusted root, offline") {
  // tests/fixtures/README.md: sigstore-python's test asset and the PyPI wheel it signs.
  fs::path dir = fs::path(KERNELS_FIXTURES_DIR) / "sigstore";
  std::string artifact = read(dir / "rfc8785-0.1.2-py3-none-any.whl");
  std::string bundle = read(dir / "bundle_v3_github.whl.sigstore");
  REQUIRE(artifact.size() == 9172);
  Result<TrustedRoot> root = builtin_trusted_root();
  REQUIRE(root.ok());

  Verdict v = verify_bundle(artifact, bundle, *root, rfc8785_release_policy());
  const auto* ok = std::get_if<Verified>(&v);
  INFO((refusal(v) ? refusal(v)->message : std::string()));
  REQUIRE(ok);
  CHECK(ok->integrated_time == 1710888076);
  CHECK(ok->log_index == 79605083);
  CHECK(ok->log_url == "https://rekor.sigstore.dev");
  CHECK(ok->signer.issuer == "https://token.actions.githubusercontent.com");
  CHECK(ok->signer.source_repository == "https://github.com/trailofbits/rfc8785.py");

  SECTION("the kernels-community policy refuses it, saying what it expected and found") {
    Verdict w = verify_bundle(artifact, bundle, *root, kernels_community_policy());
    REQUIRE(refusal(w));
    CHECK(refusal(w)->check == Check::identity);
    CHECK(refusal(w)->message ==
          "source repository (1.3.6.1.4.1.57264.1.12): expected "
          "\"https://github.com/huggingface/kernels-community\", found "
          "\"https://github.com/trailofbits/rfc8785.py\"");
  }
  SECTION("one byte of the artifact changed") {
    artifact[100] ^= 1;
    Verdict w = verify_bundle(artifact, bundle, *root, rfc8785_release_policy());
    REQUIRE(refusal(w));
    CHECK(refusal(w)->check == Check::signature);
  }
}

TEST_CASE("test PKI: every case is judged alike by our verifier and by sigstore-python",
          "[python]") {
  std::string python = oracle_python();
  if (python.empty())
    KERNELS_SKIP(
        "the Python sigstore package (the oracle, and `cryptography` for the test PKI) is not "
        "installed: run scripts/setup-sigstore-oracle.sh " +
        std::string(KERNELS_SIGSTORE_ORACLE) + " (needs PyPI)");
  TempDir tmp;
  fs::path scripts = KERNELS_SIGSTORE_TEST_DIR;
  auto [made, made_out] = run("'" + python + "' '" + (scripts / "make_test_pki.py").string() +
                              "' '" + tmp.path.string() + "'");
  INFO(made_out);
  REQUIRE(made == 0);
  auto [judged, oracle_out] = run("'" + python + "' '" + (scripts / "oracle_verify.py").string() +
                                  "' '" + tmp.path.string() + "'");
  INFO(oracle_out);
  REQUIRE(judged == 0);
  std::map<std::string, std::string> oracle;  // case -> "ok" or "fail ..."
  std::istringstream lines(oracle_out);
  for (std::string line; std::getline(lines, line);) {
    std::size_t space = line.find(' ');
    if (space != std::string::npos) oracle[line.substr(0, space)] = line.substr(space + 1);
  }

  Result<TrustedRoot> root = parse_trusted_root(read(tmp.path / "trusted_root.json"), "test root");
  REQUIRE(root.ok());
  int cases = 0, refused = 0;
  for (const auto& entry : fs::directory_iterator(tmp.path / "cases")) {
    std::string name = entry.path().filename().string();
    std::string expect = read(entry.path() / "expect");
    expect.erase(expect.find_last_not_of('\n') + 1);
    Verdict v = verify_bundle(read(entry.path() / "metadata.json"),
                              read(entry.path() / "metadata.json.sigstore"), *root,
                              kernels_community_policy());
    std::string ours = refusal(v) ? std::string(check_name(refusal(v)->check)) : "ok";
    INFO("case " << name << ": ours " << ours << (refusal(v) ? ": " + refusal(v)->message : "")
                 << "; sigstore-python " << oracle[name]);
    REQUIRE(oracle.count(name) == 1);
    CHECK(ours == expect);
    CHECK((oracle[name] == "ok") == (expect == "ok"));
    ++cases;
    refused += expect != "ok";
  }
  CHECK(cases >= 34);
  CHECK(refused >= 27);
}

TEST_CASE("[tool.kernels.signatures]: per-repo identities and require, strictly read") {
  Result<SignatureSettings> none = parse_signature_settings("[project]\nname = \"x\"\n", "p.toml");
  REQUIRE(none.ok());
  CHECK_FALSE(none->require);
  CHECK(none->policy_for("acme/relu").source_repository ==
        "https://github.com/huggingface/kernels-community");

  Result<SignatureSettings> some = parse_signature_settings(
      "[tool.kernels.signatures]\nrequire = true\n"
      "[tool.kernels.signatures.\"acme/relu\"]\n"
      "issuer = \"https://token.actions.githubusercontent.com\"\n"
      "source-repository = \"https://github.com/acme/kernels\"\n"
      "workflows = "
      "[\"https://github.com/acme/kernels/.github/workflows/b.yaml@refs/heads/main\"]\n",
      "p.toml");
  REQUIRE(some.ok());
  CHECK(some->require);
  CHECK(some->policy_for("acme/relu").source_repository == "https://github.com/acme/kernels");
  CHECK(some->policy_for("acme/relu").build_signer_uris.size() == 1);
  CHECK(some->policy_for("other/x").source_repository ==
        "https://github.com/huggingface/kernels-community");

  auto refused = [](const std::string& toml) {
    Result<SignatureSettings> r = parse_signature_settings(toml, "p.toml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::lockfile_invalid);
    return r.error().what;
  };
  CHECK(refused("[tool.kernels.signatures]\nrequire = \"yes\"\n").find("true or false") !=
        std::string::npos);
  CHECK(refused("[tool.kernels.signatures.\"a/b\"]\nissuer = \"i\"\nsource-repository = \"r\"\n"
                "workflow = [\"w\"]\n")
            .find("unknown key \"workflow\"") != std::string::npos);
  CHECK(refused("[tool.kernels.signatures.\"a/b\"]\nissuer = \"i\"\nsource-repository = \"r\"\n"
                "workflows = []\n")
            .find("non-empty list") != std::string::npos);
  // toml++ never sees a non-ASCII byte (lockfile's screen); an identity with one is refused.
  CHECK_FALSE(parse_signature_settings("[tool.kernels.signatures.\"a/b\"]\nissuer = \"\xC3\xA9\"\n"
                                       "source-repository = \"r\"\nworkflows = [\"w\"]\n",
                                       "p.toml")
                  .ok());
}
