// The real binary against the fake Hub (tests/cli/support): the Hub protocol with LFS redirects
// to a CDN port, request counts, and faults on the wire.
#include <catch2/catch.hpp>

#include "harness.h"
#include "kernels/lockfile/cache.h"
#include "support/skip.h"

#ifdef KERNELS_HAVE_FAKE_HUB
#include "fake_hub.h"

using namespace kernels::test;
using kernels::testing::FakeFile;
using kernels::testing::FakeHub;
using kernels::testing::Fault;

namespace {

std::vector<FakeFile> bundle_files() {
  std::vector<FakeFile> files;
  for (int i = 0; i < 6; ++i) {
    files.push_back({"build/cubin-cu130-sm90a/part" + std::to_string(i) + ".cubin",
                     std::string(40000 + i, static_cast<char>('a' + i)), true});
    files.push_back({"build/cubin-cu130-sm90a/meta" + std::to_string(i) + ".json",
                     "{\"i\":" + std::to_string(i) + "}", false});
  }
  files.push_back({"README.md", "# demo\n", false});
  return files;
}

struct HubProject {
  FakeHub hub;
  TempDir dir{"kernels-fakehub"};
  std::string commit;
  HubProject() {
    hub.add_repo("org/attn").branch("v1", bundle_files()).branch("main", bundle_files());
    commit = hub.repo("org/attn").commit("v1");
    write_file(dir / "project/pyproject.toml", "[tool.kernels.dependencies]\n\"org/attn\" = 1\n");
  }
  ProcessResult run(std::vector<std::string> args, const std::string& cache = "cache") {
    return run_kernels(args, dir / cache, hub.endpoint());
  }
};

}  // namespace

TEST_CASE("fake Hub: lock is 3 requests, download is 1 tree + 1 GET per file, no HEAD",
          "[fakehub]") {
  HubProject p;
  ProcessResult lock = p.run({"lock", (p.dir / "project").string()});
  INFO(lock.err);
  REQUIRE(lock.exit_code == 0);
  CHECK(p.hub.request_count(FakeHub::refs_path("org/attn")) == 1);
  CHECK(p.hub.request_count(FakeHub::tree_path("org/attn", p.commit)) == 1);
  std::size_t lock_requests = p.hub.request_count();
  CHECK(lock_requests <= 3);
  p.hub.reset_counts();

  ProcessResult dl = p.run({"download", "--all-variants", (p.dir / "project").string()}, "cache2");
  INFO(dl.err);
  REQUIRE(dl.exit_code == 0);
  std::size_t hub_port = 0, head = 0;
  for (const auto& r : p.hub.requests()) {
    if (r.port == p.hub.port()) ++hub_port;
    if (r.method == "HEAD") ++head;
  }
  CHECK(head == 0);
  CHECK(hub_port == 1 + 12);  // the tree, then one GET per file (LFS ones then go to the CDN port)
  CHECK(p.run({"verify", (p.dir / "project").string()}, "cache2").exit_code == 0);
}

TEST_CASE("fake Hub: a flipped byte on the wire is exit 6 and leaves nothing visible",
          "[fakehub][integrity]") {
  HubProject p;
  REQUIRE(p.run({"lock", (p.dir / "project").string()}).exit_code == 0);
  std::string victim = "build/cubin-cu130-sm90a/meta2.json";
  p.hub.fault(FakeHub::resolve_path("org/attn", p.commit, victim),
              Fault::body(Fault::Kind::flip_byte, -1));
  ProcessResult dl = p.run({"download", "--all-variants", (p.dir / "project").string()}, "cache2");
  CHECK(dl.exit_code == 6);
  CHECK(dl.err.find(victim) != std::string::npos);
  kernels::CacheLayout cache(p.dir / "cache2");
  CHECK_FALSE(fs::exists(fs::symlink_status(cache.snapshot_file("org/attn", p.commit, victim))));
  // The other files made it, and a clean retry completes the set.
  CHECK(
      fs::exists(cache.snapshot_file("org/attn", p.commit, "build/cubin-cu130-sm90a/meta1.json")));
}

TEST_CASE("fake Hub: a transient 503 is retried, a gated repo is exit 8 with a hint",
          "[fakehub][network]") {
  HubProject p;
  REQUIRE(p.run({"lock", (p.dir / "project").string()}).exit_code == 0);
  p.hub.fault(FakeHub::resolve_path("org/attn", p.commit, "build/cubin-cu130-sm90a/meta0.json"),
              Fault::http(503, 1, "0"));
  ProcessResult dl = p.run({"download", "--all-variants", (p.dir / "project").string()}, "cache2");
  INFO(dl.err);
  CHECK(dl.exit_code == 0);

  p.hub.repo("org/attn").gated();
  ProcessResult gated = p.run({"download", "--all-variants", (p.dir / "project").string()},
                              "cache3");
  CHECK(gated.exit_code == 8);
  CHECK(gated.err.find("hint:") != std::string::npos);
}
#endif
