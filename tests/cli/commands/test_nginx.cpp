// A real static web server (nginx) serving a mirror directory: lock and download against it,
// with the request count the design promises (one refs call, one tree listing, one GET per file).
#include <catch2/catch.hpp>

#include "project_fixture.h"
#include "servers.h"
#include "support/skip.h"

using namespace kernels::test;

TEST_CASE("lock and download against nginx serving a mirror: files + 3 requests at most",
          "[nginx]") {
  TempDir dir("kernels-nginx");
  MirrorRepo repo(dir / "mirror", "org/attn");
  std::vector<MirrorFile> files = make_variant_files("cubin-cu130-sm90a", 12, 5000, 41);
  auto more = make_variant_files("torch210-cxx11-cu128-x86_64-linux", 9, 700, 42);
  files.insert(files.end(), more.begin(), more.end());
  std::string commit = repo.publish(1, files);
  std::string why;
  auto nginx = NginxServer::start(dir / "mirror", dir / "nginx", why);
  if (!nginx) KERNELS_SKIP(why);

  write_file(dir / "project/pyproject.toml", "[tool.kernels.dependencies]\n\"org/attn\" = 1\n");
  ProcessResult lock = run_kernels({"lock", (dir / "project").string()}, dir / "cache",
                                   nginx->endpoint());
  INFO(lock.err);
  REQUIRE(lock.exit_code == 0);
  CHECK(read_file(dir / "project/kernels.lock").find(commit) != std::string::npos);

  // A second cache, so download lists the tree itself (cold, as on a fresh machine).
  ProcessResult dl = run_kernels({"download", "--all-variants", (dir / "project").string()},
                                 dir / "cache2", nginx->endpoint());
  INFO(dl.err);
  REQUIRE(dl.exit_code == 0);
  std::vector<std::string> requests = nginx->requests();
  std::size_t file_gets = 0, lock_requests = 0;
  for (const auto& r : requests) {
    if (r.find(" /kernels/org/attn/resolve/" + commit + "/build/") != std::string::npos) {
      ++file_gets;
      CHECK(r.rfind("GET ", 0) == 0);
      CHECK(r.substr(r.size() - 3) == "200");
    }
  }
  lock_requests = requests.size() - file_gets;
  INFO("requests: " << requests.size());
  for (const auto& r : requests) UNSCOPED_INFO(r);
  CHECK(file_gets == files.size());
  // lock: kernel-status.toml (404), refs, tree; download: tree. No HEAD, no per-file API call.
  CHECK(lock_requests <= 4);
  CHECK(requests.size() <= files.size() + 4);
  for (const auto& r : requests) CHECK(r.rfind("HEAD ", 0) != 0);

  ProcessResult verify = run_kernels({"verify", (dir / "project").string()}, dir / "cache2",
                                     nginx->endpoint());
  INFO(verify.out << verify.err);
  CHECK(verify.exit_code == 0);
}
