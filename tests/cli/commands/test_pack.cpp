// `kernels pack` / `kernels unpack` of a variant whose tree lists Python bytecode: the download
// skips bytecode (as Python does), so pack must not count the variant as incomplete for it.
#include <catch2/catch.hpp>

#include "harness.h"
#include "kernels/lockfile/cache.h"

using namespace kernels::test;

namespace {

// org/bc: one cubin variant whose tree also holds bytecode, locked and downloaded.
struct BytecodeProject {
  TempDir dir{"kernels-pack"};
  fs::path mirror = dir / "mirror";
  fs::path cache = dir / "cache";
  fs::path project = dir / "project";
  std::string endpoint = file_endpoint(mirror);
  MirrorRepo repo{mirror, "org/bc"};
  std::string commit;

  BytecodeProject() {
    std::vector<MirrorFile> files = make_variant_files("cubin-cu130-sm90a", 3, 2000, 61);
    files.push_back(
        {"build/cubin-cu130-sm90a/__pycache__/module_1.cpython-311.pyc", "bytecode", false});
    files.push_back({"build/cubin-cu130-sm90a/stray.pyc", "more bytecode", false});
    commit = repo.publish(1, files);
    write_file(project / "pyproject.toml", "[tool.kernels.dependencies]\n\"org/bc\" = 1\n");
  }
  ProcessResult run(const std::vector<std::string>& args, const fs::path& cache_dir) const {
    return run_kernels(args, cache_dir, endpoint);
  }
};

}  // namespace

TEST_CASE("pack of a downloaded variant whose tree lists bytecode round-trips", "[pack]") {
  BytecodeProject p;
  ProcessResult lock = p.run({"lock", p.project.string()}, p.cache);
  INFO(lock.err);
  REQUIRE(lock.exit_code == 0);
  ProcessResult download = p.run({"download", "--all-variants", p.project.string()}, p.cache);
  INFO(download.err);
  REQUIRE(download.exit_code == 0);
  // The download left the bytecode out; the variant is complete without it.
  const kernels::CacheLayout cache(p.cache);
  CHECK_FALSE(
      fs::exists(cache.snapshot_file("org/bc", p.commit, "build/cubin-cu130-sm90a/stray.pyc")));

  const fs::path archive = p.dir / "cache.tar.zst";
  ProcessResult pack = p.run({"pack", p.project.string(), "--out", archive.string()}, p.cache);
  INFO(pack.err);
  REQUIRE(pack.exit_code == 0);

  const fs::path site = p.dir / "site-cache";
  ProcessResult unpack = p.run({"unpack", archive.string(), p.project.string()}, site);
  INFO(unpack.err);
  REQUIRE(unpack.exit_code == 0);
  ProcessResult verify = p.run({"--offline", "verify", p.project.string()}, site);
  INFO(verify.out << verify.err);
  CHECK(verify.exit_code == 0);
}

TEST_CASE("pack --from-mirror of a mirrored variant whose tree lists bytecode round-trips",
          "[pack]") {
  BytecodeProject p;
  REQUIRE(p.run({"lock", p.project.string()}, p.cache).exit_code == 0);
  const fs::path out_mirror = p.dir / "out-mirror";
  ProcessResult mirror = p.run({"mirror", p.project.string(), "--to", out_mirror.string()},
                               p.cache);
  INFO(mirror.err);
  REQUIRE(mirror.exit_code == 0);
  const fs::path archive = p.dir / "mirror.tar.zst";
  ProcessResult pack = p.run({"pack", p.project.string(), "--from-mirror", out_mirror.string(),
                              "--out", archive.string()},
                             p.cache);
  INFO(pack.err);
  REQUIRE(pack.exit_code == 0);
  const fs::path site = p.dir / "site-mirror";
  ProcessResult unpack = p.run({"unpack", archive.string(), p.project.string(), "--to",
                                site.string()},
                               p.cache);
  INFO(unpack.err);
  CHECK(unpack.exit_code == 0);
}
