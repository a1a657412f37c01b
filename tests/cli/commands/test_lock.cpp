// `kernels lock`: golden bytes against the synthetic vectors, Python's warnings, redirects,
// --locked (missing vs stale vs up to date), offline.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "support/skip.h"

using namespace kernels::test;

namespace {

// The synthetic repo of tests/fixtures/hf-kernels/synthetic, published at its own commit.
struct SyntheticMirror {
  TempDir dir{"kernels-lock"};
  fs::path mirror = dir / "mirror";
  fs::path cache = dir / "cache";
  fs::path project = dir / "project";
  std::string commit;

  SyntheticMirror() {
    auto vectors = nlohmann::json::parse(
        read_file(fixtures_dir() / "hf-kernels/synthetic/lock-hash-vectors.json"));
    commit = vectors["commit"];
    std::map<std::string, std::string> contents;
    for (auto& [path, file] : vectors["repo_files"].items()) {
      std::string b64 = file["content_b64"];
      std::string decoded(3 * b64.size() / 4 + 3, '\0');
      int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                              reinterpret_cast<const unsigned char*>(b64.data()),
                              static_cast<int>(b64.size()));
      std::size_t pad = b64.size() >= 2
                            ? (b64[b64.size() - 1] == '=') + (b64[b64.size() - 2] == '=')
                            : 0;
      decoded.resize(static_cast<std::size_t>(n) - pad);
      contents[path] = decoded;
    }
    MirrorRepo repo(mirror, "example-org/fake");
    repo.publish_exact(1, commit, vectors["hub_tree_listing_recursive"].dump(), contents);
    write_file(
        project / "pyproject.toml",
        "[project]\nname = \"demo\"\n\n[tool.kernels.dependencies]\n\"example-org/fake\" = 1\n");
  }
};

}  // namespace

TEST_CASE(
    "lock --format 1 writes the bytes Python's kernels 0.16 lock writes for the synthetic vectors",
    "[lock]") {
  SyntheticMirror m;
  ProcessResult r = run_kernels({"lock", "--format", "1", m.project.string()}, m.cache,
                                file_endpoint(m.mirror));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.empty());
  CHECK(read_file(m.project / "kernels.lock") ==
        read_file(source_dir() / "tests/cli/commands/data/synthetic.kernels.lock"));
}

TEST_CASE("lock --locked: missing is exit 3, stale is exit 4 naming the difference, fresh is 0",
          "[lock]") {
  SyntheticMirror m;
  std::string endpoint = file_endpoint(m.mirror);
  ProcessResult missing = run_kernels({"lock", "--locked", m.project.string()}, m.cache, endpoint);
  CHECK(missing.exit_code == 3);
  CHECK(missing.err.find("--locked") != std::string::npos);
  CHECK_FALSE(fs::exists(m.project / "kernels.lock"));

  // Format 1 (format 2 is test_lock_v2.cpp): the variant hashes are in the lock itself.
  REQUIRE(run_kernels({"lock", "--format", "1", m.project.string()}, m.cache, endpoint).exit_code ==
          0);
  std::string good = read_file(m.project / "kernels.lock");
  ProcessResult fresh = run_kernels({"lock", "--locked", m.project.string()}, m.cache, endpoint);
  INFO(fresh.err);
  CHECK(fresh.exit_code == 0);
  // Checking locks nothing, and says so.
  CHECK(fresh.err.find("Locked ") == std::string::npos);
  CHECK(fresh.err.find("Resolved ") != std::string::npos);

  std::string stale = good;
  auto at = stale.find("sha256-7b82");
  REQUIRE(at != std::string::npos);
  stale.replace(at + 7, 4, "0000");
  write_file(m.project / "kernels.lock", stale);
  ProcessResult r = run_kernels({"lock", "--locked", m.project.string()}, m.cache, endpoint);
  CHECK(r.exit_code == 4);
  CHECK(r.err.find("variant torch-cpu hash sha256-0000") != std::string::npos);
  CHECK(read_file(m.project / "kernels.lock") == stale);  // --locked never writes

  // Same content, other formatting: not canonical, so stale too.
  write_file(m.project / "kernels.lock", nlohmann::json::parse(good).dump());
  ProcessResult reformatted = run_kernels({"lock", "--locked", m.project.string()}, m.cache,
                                          endpoint);
  CHECK(reformatted.exit_code == 4);
  CHECK(reformatted.err.find("canonical") != std::string::npos);
}

TEST_CASE("lock warns in Python's words when a newer version exists", "[lock]") {
  TempDir dir;
  MirrorRepo repo(dir / "mirror", "org/attn");
  repo.publish(1, make_variant_files("cubin-cu130-sm90a", 3, 100, 1));
  repo.publish(2, make_variant_files("cubin-cu130-sm90a", 3, 100, 2));
  write_file(dir / "project/pyproject.toml", "[tool.kernels.dependencies]\n\"org/attn\" = 1\n");
  ProcessResult r = run_kernels({"lock", (dir / "project").string()}, dir / "cache",
                                file_endpoint(dir / "mirror"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("You are using version 1 of 'org/attn', but version 2 is available.") !=
        std::string::npos);
}

TEST_CASE(
    "lock --format 1 follows a kernel-status.toml redirect as 0.16 does, format 2 does not, as "
    "0.17",
    "[lock]") {
  TempDir dir;
  MirrorRepo old_repo(dir / "mirror", "org/old");
  old_repo.publish(1, make_variant_files("cubin-cu130-sm90a", 2, 50, 3));
  old_repo.add_status_redirect("org/new");
  MirrorRepo new_repo(dir / "mirror", "org/new");
  std::string commit = new_repo.publish(1, make_variant_files("cubin-cu130-sm90a", 2, 50, 4));
  write_file(dir / "project/pyproject.toml", "[tool.kernels.dependencies]\n\"org/old\" = 1\n");
  ProcessResult v2 = run_kernels({"lock", (dir / "project").string()}, dir / "cache",
                                 file_endpoint(dir / "mirror"));
  INFO(v2.err);
  REQUIRE(v2.exit_code == 0);
  CHECK(v2.err.find("redirected") == std::string::npos);
  CHECK(read_file(dir / "project/kernels.lock").find("\"repo-id\": \"org/old\"") !=
        std::string::npos);
  ProcessResult r = run_kernels({"lock", "--format", "1", (dir / "project").string()},
                                dir / "cache", file_endpoint(dir / "mirror"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("'org/old' redirected to 'org/new'") != std::string::npos);
  CHECK(r.err.find("(1 variant)") != std::string::npos);  // one variant: singular
  std::string lock = read_file(dir / "project/kernels.lock");
  CHECK(lock.find("\"repo_id\": \"org/new\"") != std::string::npos);
  CHECK(lock.find(commit) != std::string::npos);
}

TEST_CASE("lock of a version the Hub lacks lists the available ones", "[lock]") {
  TempDir dir;
  MirrorRepo repo(dir / "mirror", "org/attn");
  repo.publish(1, make_variant_files("cubin-cu130-sm90a", 1, 10, 5));
  write_file(dir / "project/pyproject.toml", "[tool.kernels.dependencies]\n\"org/attn\" = 7\n");
  ProcessResult r = run_kernels({"lock", (dir / "project").string()}, dir / "cache",
                                file_endpoint(dir / "mirror"));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("Version 7 not found, available versions: 1") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "project/kernels.lock"));
}

TEST_CASE("lock with a malformed pyproject.toml is exit 5 naming file:line:column", "[lock]") {
  TempDir dir;
  write_file(dir / "project/pyproject.toml",
             "[tool.kernels.dependencies]\n\"org/attn\" = \">=0.1\"\n");
  ProcessResult r = run_kernels({"lock", (dir / "project").string()}, dir / "cache",
                                file_endpoint(dir / "mirror"));
  CHECK(r.exit_code == 5);
  CHECK(r.err.find("pyproject.toml:2:") != std::string::npos);
}

TEST_CASE("lock --offline works from refs/vN and trees/<commit>.json a download left",
          "[lock][offline]") {
  SyntheticMirror m;
  std::string endpoint = file_endpoint(m.mirror);
  REQUIRE(run_kernels({"lock", m.project.string()}, m.cache, endpoint).exit_code == 0);
  std::string online = read_file(m.project / "kernels.lock");
  ProcessResult dl = run_kernels({"download", "--all-variants", m.project.string()}, m.cache,
                                 endpoint);
  INFO(dl.err);
  REQUIRE(dl.exit_code == 0);
  fs::remove(m.project / "kernels.lock");
  ProcessResult r = run_kernels({"lock", m.project.string()}, m.cache,
                                "file:///nonexistent-endpoint", {{"HF_HUB_OFFLINE", "1"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(read_file(m.project / "kernels.lock") == online);
}
