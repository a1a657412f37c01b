// `kernels verify-signature REPO VERSION`: 0.17's lines, sorted by variant, for a repo whose
// variants are signed by the test PKI (tests/cli/sigstore/make_test_pki.py), unsigned, signed over
// other bytes, or signed with files that no longer match the digest; offline as online.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/signature_record.h"
#include "python_oracle.h"
#include "support/skip.h"

using namespace kernels::test;

namespace {

std::string sigstore_python() {
  return venv_python("KERNELS_SIGSTORE_ORACLE", KERNELS_SIGSTORE_ORACLE);
}

std::string content_of(const std::vector<MirrorFile>& files, const std::string& path) {
  for (const MirrorFile& f : files)
    if (f.path == path) return f.content;
  return {};
}

}  // namespace

TEST_CASE("verify-signature prints 0.17's line per variant, sorted, and works offline",
          "[signatures]") {
  std::string python = sigstore_python();
  if (python.empty())
    KERNELS_SKIP(
        "`cryptography` for the test PKI is not installed: run "
        "scripts/setup-sigstore-oracle.sh " +
        std::string(KERNELS_SIGSTORE_ORACLE) + " (needs PyPI)");
  TempDir dir("kernels-sig");
  // Variants (sorted): torch-cpu signed, torch-cuda unsigned, torch-metal signed but one file
  // changed after signing, torch-xpu carrying torch-cpu's bundle (a signature over other bytes).
  std::vector<MirrorFile> cpu = make_variant_files_with_metadata("torch-cpu", 3, 61);
  std::vector<MirrorFile> cuda = make_variant_files_with_metadata("torch-cuda", 2, 62);
  std::vector<MirrorFile> metal = make_variant_files_with_metadata("torch-metal", 2, 63);
  std::vector<MirrorFile> xpu = make_variant_files_with_metadata("torch-xpu", 2, 64);
  fs::path pki = dir / "pki";
  fs::create_directories(pki);
  write_file(pki / "cpu.json", content_of(cpu, "build/torch-cpu/metadata.json"));
  write_file(pki / "metal.json", content_of(metal, "build/torch-metal/metadata.json"));
  ProcessSpec sign;
  sign.argv = {python,
               (source_dir() / "tests/cli/sigstore/make_test_pki.py").string(),
               pki.string(),
               "--sign",
               (pki / "cpu.json").string(),
               (pki / "metal.json").string()};
  ProcessResult signed_ = run_process(sign);
  INFO(signed_.out << signed_.err);
  REQUIRE(signed_.exit_code == 0);
  cpu.push_back({"build/torch-cpu/metadata.json.sigstore", read_file(pki / "cpu.json.sigstore")});
  metal.push_back(
      {"build/torch-metal/metadata.json.sigstore", read_file(pki / "metal.json.sigstore")});
  for (MirrorFile& f : metal)
    if (f.path.find("metadata.json") == std::string::npos) {
      f.content += "changed";
      break;
    }
  xpu.push_back({"build/torch-xpu/metadata.json.sigstore", read_file(pki / "cpu.json.sigstore")});
  std::vector<MirrorFile> files;
  for (auto* v : {&xpu, &metal, &cuda, &cpu}) files.insert(files.end(), v->begin(), v->end());
  MirrorRepo repo(dir / "mirror", "acme/demo");
  const std::string commit = repo.publish(1, files);
  MirrorRepo good(dir / "mirror", "acme/good");
  const std::string good_commit = good.publish(1, cpu);
  const std::string endpoint = file_endpoint(dir / "mirror");
  const fs::path cache = dir / "cache";
  const std::string root = "--trusted-root=" + (pki / "trusted_root.json").string();
  // No pyproject.toml in the working directory of the test: the kernels-community identity,
  // which the test PKI's certificates carry.
  std::vector<std::string> args = {"verify-signature", "acme/demo", "1",
                                   "--all-variants",   root,        "--project-dir",
                                   dir.path().string()};

  ProcessResult all = run_kernels(args, cache, endpoint);
  INFO(all.out << all.err);
  CHECK(all.exit_code == 6);
  const std::string expected =
      "\xE2\x9C\x85 torch-cpu: kernel metadata is correctly signed\n"
      "\xE2\x9D\x8C torch-cuda: cannot verify kernel integrity, signature not found\n"
      "\xE2\x9D\x8C torch-metal: kernel integrity check failed\n";
  CHECK(all.out.rfind(expected, 0) == 0);
  CHECK(all.out.find("File hash mismatch for ") != std::string::npos);
  CHECK(all.out.find("\xE2\x9D\x8C torch-xpu: metadata signature verification failed:\n"
                     "signature: ") != std::string::npos);
  CHECK(all.err.find("3 of 4 variants failed signature verification") != std::string::npos);

  std::vector<std::string> json_args = args;
  json_args.push_back("--json");
  ProcessResult js = run_kernels(json_args, cache, endpoint);
  CHECK(js.exit_code == 6);
  const nlohmann::json whole = nlohmann::json::parse(js.out, nullptr, false);
  REQUIRE(whole.is_object());  // one document (docs/JSON.md): an error, variants beside it
  CHECK(whole["ok"] == false);
  CHECK(whole["command"] == "verify-signature");
  CHECK(whole["error"]["exit"] == 6);
  const nlohmann::json& doc = whole["variants"];
  REQUIRE(doc.is_array());
  REQUIRE(doc.size() == 4);
  CHECK(doc[0]["variant"] == "torch-cpu");
  CHECK(doc[0]["verified"] == true);
  CHECK(doc[0]["signer"]["source_repository"] ==
        "https://github.com/huggingface/kernels-community");
  CHECK(doc[3]["variant"] == "torch-xpu");
  CHECK(doc[3]["check"] == "signature");

  SECTION(
      "info --variants: unsigned, or signed but not verified (verify-signature records nothing)") {
    ProcessResult info = run_kernels({"info", "acme/demo", "--version", "1", "--variants"}, cache,
                                     endpoint, {{"HF_HUB_OFFLINE", "1"}});
    INFO(info.out << info.err);
    CHECK(info.exit_code == 0);
    CHECK(info.out.find("  torch-cuda  ") != std::string::npos);
    CHECK(info.out.find("    signature: unsigned (no metadata.json.sigstore)\n") !=
          std::string::npos);
    CHECK(info.out.find("    signature: not verified: ") != std::string::npos);
    ProcessResult info_json = run_kernels({"--json", "info", "acme/demo", "--version", "1",
                                           "--variants"},
                                          cache, endpoint, {{"HF_HUB_OFFLINE", "1"}});
    const nlohmann::json described = nlohmann::json::parse(info_json.out, nullptr, false);
    REQUIRE(described.is_object());
    REQUIRE(described["variants"].size() == 4);
    CHECK(described["variants"][0]["signature"]["status"] == "not_verified");
    CHECK(described["variants"][1]["signature"] == nlohmann::json{{"status", "unsigned"}});
  }
  SECTION("--filter-unsigned skips the unsigned variant; offline gives the same answer") {
    args.push_back("--filter-unsigned");
    ProcessResult offline = run_kernels(args, cache, endpoint, {{"HF_HUB_OFFLINE", "1"}});
    INFO(offline.out << offline.err);
    CHECK(offline.exit_code == 6);
    CHECK(offline.out.find("torch-cuda") == std::string::npos);
    CHECK(offline.out.rfind("\xE2\x9C\x85 torch-cpu: kernel metadata is correctly signed\n"
                            "\xE2\x9D\x8C torch-metal: kernel integrity check failed\n",
                            0) == 0);
  }
  SECTION("another identity in pyproject.toml refuses the signed variant, saying what it found") {
    write_file(dir / "pyproject.toml",
               "[tool.kernels.signatures.\"acme/demo\"]\n"
               "issuer = \"https://token.actions.githubusercontent.com\"\n"
               "source-repository = \"https://github.com/acme/kernels\"\n"
               "workflows = [\"https://github.com/acme/kernels/.github/workflows/b.yaml@refs/"
               "heads/main\"]\n");
    ProcessResult other = run_kernels(args, cache, endpoint);
    INFO(other.out << other.err);
    CHECK(other.exit_code == 6);
    CHECK(other.out.find("\xE2\x9D\x8C torch-cpu: metadata signature verification failed:\n"
                         "identity: source repository (1.3.6.1.4.1.57264.1.12): expected "
                         "\"https://github.com/acme/kernels\", found "
                         "\"https://github.com/huggingface/kernels-community\"") !=
          std::string::npos);
  }
  SECTION("a bad trusted root is exit 5 before anything is fetched") {
    write_file(dir / "bad_root.json", "{}");
    ProcessResult bad = run_kernels({"verify-signature", "acme/demo", "1",
                                     "--trusted-root=" + (dir / "bad_root.json").string()},
                                    dir / "empty-cache", endpoint);
    CHECK(bad.exit_code == 5);
    CHECK(bad.err.find("trusted root: mediaType is missing") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "empty-cache" / "kernels--acme--demo"));
  }

  SECTION(
      "download --require-signatures: a signed repo is recorded, a repo with an unsigned or "
      "badly signed variant is refused before any of its files is visible") {
    const fs::path project = dir / "project";
    fs::create_directories(project);
    write_file(project / "pyproject.toml",
               "[tool.kernels.dependencies]\n\"acme/good\" = 1\n\"acme/demo\" = 1\n");
    auto lock_entry = [](const std::string& repo_id, const std::string& c) {
      return "{\"dependency\": {\"repo-id\": \"" + repo_id +
             "\", \"version\": 1}, \"lock\": {\"commit\": \"" + c + "\"}}";
    };
    write_file(project / "kernels.lock", "[" + lock_entry("acme/demo", commit) + ",\n " +
                                             lock_entry("acme/good", good_commit) + "]\n");
    const fs::path dl_cache = dir / "dl-cache";
    ProcessResult dl = run_kernels({"download", "--require-signatures", "--all-variants", root,
                                    project.string()},
                                   dl_cache, endpoint);
    INFO(dl.out << dl.err);
    CHECK(dl.exit_code == 6);
    CHECK(dl.err.find("variant torch-cuda is not signed") != std::string::npos);
    kernels::CacheLayout layout(dl_cache);
    // acme/good: verified, visible, recorded.
    CHECK(fs::exists(
        layout.snapshot_file("acme/good", good_commit, "build/torch-cpu/metadata.json")));
    std::string record = read_file(
        layout.signature_record_path("acme/good", good_commit, "torch-cpu"));
    CHECK(record.find("\"verified\": true") != std::string::npos);
    CHECK(record.find("\"build_signer_uri\": \"https://github.com/huggingface/kernels-community/"
                      ".github/workflows/build.yaml@refs/heads/main\"") != std::string::npos);
    // The record names the metadata.json bytes it vouches for, which the loader
    // (KERNELS_REQUIRE_SIGNED) and `info --variants` check it against (tests_loader [signed]).
    const std::string meta = read_file(
        layout.snapshot_file("acme/good", good_commit, "build/torch-cpu/metadata.json"));
    auto vouches = [&](const std::string& bytes) {
      return kernels::check_signature_record(
                 layout, "acme/good", good_commit, "torch-cpu",
                 std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()))
          .state;
    };
    CHECK(vouches(meta) == kernels::SignatureCheck::State::verified);
    CHECK(vouches(meta + " ") == kernels::SignatureCheck::State::rejected);
    // `info --variants` says who signed it, offline, from the record.
    ProcessResult info = run_kernels({"info", "acme/good", "--version", "1", "--variants"},
                                     dl_cache, endpoint, {{"HF_HUB_OFFLINE", "1"}});
    INFO(info.out << info.err);
    CHECK(info.exit_code == 0);
    CHECK(info.out.find("  torch-cpu  ") != std::string::npos);
    CHECK(info.out.find("    signature: verified, signed by https://github.com/huggingface/"
                        "kernels-community/.github/workflows/build.yaml@refs/heads/main (issuer "
                        "https://token.actions.githubusercontent.com, source "
                        "https://github.com/huggingface/kernels-community)\n") !=
          std::string::npos);
    ProcessResult info_json = run_kernels({"--json", "info", "acme/good", "--version", "1",
                                           "--variants"},
                                          dl_cache, endpoint, {{"HF_HUB_OFFLINE", "1"}});
    const nlohmann::json described = nlohmann::json::parse(info_json.out, nullptr, false);
    REQUIRE(described.is_object());
    const nlohmann::json& signature = described["variants"][0]["signature"];
    CHECK(signature["status"] == "verified");
    CHECK(signature["issuer"] == "https://token.actions.githubusercontent.com");
    CHECK(signature["source_repository"] == "https://github.com/huggingface/kernels-community");
    // acme/demo: nothing of the unsigned, tampered or mis-signed variants, no record.
    for (const char* v : {"torch-cuda", "torch-metal", "torch-xpu"})
      CHECK_FALSE(fs::exists(layout.snapshot_dir("acme/demo", commit) / "build" / v));
    CHECK_FALSE(fs::exists(layout.signature_record_path("acme/demo", commit, "torch-cpu")));

    // The same through pyproject.toml's require = true, offline from the cache just filled.
    write_file(project / "pyproject.toml",
               "[tool.kernels.dependencies]\n\"acme/good\" = 1\n"
               "[tool.kernels.signatures]\nrequire = true\n");
    write_file(project / "kernels.lock", "[" + lock_entry("acme/good", good_commit) + "]\n");
    ProcessResult again = run_kernels({"download", "--all-variants", root, project.string()},
                                      dl_cache, endpoint, {{"HF_HUB_OFFLINE", "1"}});
    INFO(again.out << again.err);
    CHECK(again.exit_code == 0);
  }
}
