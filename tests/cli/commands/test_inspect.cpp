// `kernels versions`, `kernels info`, `kernels variant`: golden output against a mirror.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "project_fixture.h"

using namespace kernels::test;

TEST_CASE("versions prints Python's format: one block per vN with the variant trace",
          "[versions]") {
  LockedProject p;
  p.repo.publish(2, make_variant_files("cubin-cu130-sm90a", 1, 10, 21));
  ProcessResult r = p.run({"versions", "org/attn"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto v1 = r.out.find("Version 1:\n\n");
  auto v2 = r.out.find("Version 2:\n\n");
  REQUIRE(v1 != std::string::npos);
  REQUIRE(v2 != std::string::npos);
  CHECK(v1 < v2);
  CHECK(r.out.find("cubin-cu130-sm80: ") != std::string::npos);  // rejected, with its reason
  CHECK(r.err.empty());
}

TEST_CASE("versions of a repo without vN branches says so", "[versions]") {
  TempDir dir;
  write_file(
      dir / "mirror/api/kernels/org/plain/refs",
      R"({"branches":[{"name":"main","ref":"refs/heads/main","targetCommit":"0123456789abcdef0123456789abcdef01234567"}],"converts":[],"tags":[]})");
  ProcessResult r = run_kernels({"versions", "org/plain"}, dir / "cache",
                                file_endpoint(dir / "mirror"));
  CHECK(r.exit_code == 0);
  CHECK(r.out == "Repository does not support kernel versions: org/plain\n");
}

TEST_CASE("info --variants lists variants with sizes and hashes, and the bundle manifest",
          "[info]") {
  LockedProject p;
  std::vector<MirrorFile> files = make_variant_files("cubin-cu130-sm90a", 2, 100, 31);
  files.push_back(
      {"build/cubin-cu130-sm90a/manifest.json",
       R"({"format_version":1,"family":"fa3","params_abi":1,"arch":"sm90a","cuda":"13.0","kernels":[{"name":"fwd"}]})",
       false});
  std::string v2 = p.repo.publish(2, files);
  ProcessResult text = p.run({"info", "org/attn", "--variants"});
  INFO(text.err);
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.rfind("Repository: org/attn\nRevision: v2\n", 0) == 0);
  CHECK(text.out.find("Backends: cuda\nCommit: " + v2 + "\nVariants: 1\n") != std::string::npos);
  CHECK(text.out.find("manifest.json: family=fa3 arch=sm90a cuda=13.0 params_abi=1 "
                      "format_version=1 kernels=1") != std::string::npos);

  // A revision given twice, two ways, is refused instead of one of them being used silently.
  ProcessResult both = p.run({"info", "org/attn@main", "--version", "1"});
  CHECK(both.exit_code == 2);
  CHECK(both.err.find("names a revision and --version names another") != std::string::npos);
  // Offline, a version the cache does not know is "not cached" (9), not a usage error.
  ProcessResult offline = p.run({"--offline", "info", "org/attn", "--version", "7"});
  CHECK(offline.exit_code == 9);
  CHECK(offline.err.find("version 7 is not in the cache") != std::string::npos);
  ProcessResult online = p.run({"info", "org/attn", "--version", "7"});
  CHECK(online.exit_code == 2);

  // Without --variants, 0.17.2's shape only (test_info_017.cpp compares it with Python's).
  ProcessResult plain = p.run({"info", "org/attn"});
  REQUIRE(plain.exit_code == 0);
  CHECK(plain.out.find("Variants:") == std::string::npos);
  CHECK(plain.out.find("Backends: cuda\n") != std::string::npos);

  ProcessResult json = p.run({"--json", "info", "org/attn", "--version", "1", "--variants"});
  REQUIRE(json.exit_code == 0);
  auto doc = nlohmann::json::parse(json.out);
  CHECK(doc["revision"] == "v1");
  CHECK(doc["commit"] == p.commit);
  REQUIRE(doc["variants"].size() == 3);
  CHECK(doc["variants"][0]["name"] == "cubin-cu130-sm80");
  CHECK(doc["variants"][0]["files"] == 4);
  CHECK(doc["variants"][0]["bytes"] == 4 * 3000);
  CHECK(doc["variants"][0]["hash"].get<std::string>().rfind("sha256-", 0) == 0);

  CHECK(p.run({"info", "org/attn", "--version", "1", "--revision", "main"}).exit_code == 2);
}

TEST_CASE("variant shows machine facts and the accept/reject trace per target", "[variant]") {
  LockedProject p;
  ProcessResult nogpu = p.run({"variant", p.project.string()});
  INFO(nogpu.err);
  REQUIRE(nogpu.exit_code == 0);
  CHECK(nogpu.out.find("Driver: none (no CUDA driver") != std::string::npos);
  CHECK(nogpu.out.find("cubin variants: no CUDA driver") != std::string::npos);

  ProcessResult h100 = p.run(
      {"--json", "variant", "org/attn", "--driver-cuda", "13.0", "--compute-capability", "9.0"});
  INFO(h100.err);
  REQUIRE(h100.exit_code == 0);
  auto doc = nlohmann::json::parse(h100.out);
  CHECK(doc["machine"]["driver_cuda"] == "13.0");
  REQUIRE(doc["kernels"].size() == 1);
  CHECK(doc["kernels"][0]["chosen"][0] == "cubin-cu130-sm90a");

  // The text trace names each variant once per target, not twice.
  ProcessResult text = p.run(
      {"variant", "org/attn", "--driver-cuda", "13.0", "--compute-capability", "9.0"});
  INFO(text.out);
  REQUIRE(text.exit_code == 0);
  std::size_t count = 0;
  for (auto at = text.out.find("cubin-cu130-sm90a"); at != std::string::npos;
       at = text.out.find("cubin-cu130-sm90a", at + 1))
    ++count;
  CHECK(count == 1);
}

TEST_CASE("variant outside a project prints the machine's facts alone", "[variant]") {
  TempDir dir;
  ProcessSpec spec;
  spec.argv = {kernels_binary(), "variant"};
  spec.cwd = dir.path();
  spec.env = {{"KERNELS_CACHE", (dir / "cache").string()},
              {"KERNELS_DRIVER_LIBRARY", "libcuda-absent-in-tests.so.1"}};
  ProcessResult r = run_process(spec);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Driver: none") != std::string::npos);
  CHECK(r.out.find("OS: linux") != std::string::npos);
}
