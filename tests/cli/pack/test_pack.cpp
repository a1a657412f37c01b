// Pack/unpack round trips: a cache and a mirror survive the trip byte for byte, and the unpacked
// cache verifies against the lock.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <future>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/variant_hash.h"
#include "pack/pack.h"
#include "pack_fixture.h"

namespace fs = std::filesystem;
using namespace pack_test;

TEST_CASE("a packed cache unpacks into an empty cache that verifies against the lock", "[pack]") {
  Fixture f;
  const fs::path archive = f.dir.path / "cache.tar.zst";
  auto packed = kernels::cli::pack_cache(f.cache, f.lock, archive);
  REQUIRE(packed.ok());
  CHECK(packed->files == 4);  // two variants, two files each; README is not locked

  const fs::path fresh = f.dir.path / "fresh-cache";
  auto unpacked = kernels::cli::unpack(archive, fresh, f.lock);
  INFO((unpacked ? "" : unpacked.error().message()));
  REQUIRE(unpacked.ok());
  CHECK(unpacked->kind == kernels::cli::PackKind::cache);

  const kernels::CacheLayout layout(fresh);
  auto tree = layout.read_tree(f.repo, f.sha);
  REQUIRE(tree.ok());
  for (const auto& [variant, locked] : f.lock.kernels[0].variants) {
    auto check = kernels::check_variant_on_disk(layout.snapshot_dir(f.repo, f.sha), variant, *tree,
                                                locked);
    CHECK(check.ok());
  }
  CHECK(layout.read_ref(f.repo, "v1").value() == f.sha);
  CHECK(slurp(layout.snapshot_file(f.repo, f.sha, "build/cubin-cu130-sm90a/attention.cubin")) ==
        f.files["build/cubin-cu130-sm90a/attention.cubin"]);
  // Nothing of the staging directory is left behind.
  for (const auto& e : fs::directory_iterator(fresh)) {
    CHECK(e.path().filename().string().find(".kernels-unpack") == std::string::npos);
  }
}

TEST_CASE("a packed mirror unpacks into a mirror with identical files", "[pack]") {
  Fixture f;
  const fs::path archive = f.dir.path / "mirror.tar.zst";
  REQUIRE(kernels::cli::pack_mirror(f.mirror, f.lock, archive).ok());
  const fs::path out = f.dir.path / "mirror-copy";
  auto unpacked = kernels::cli::unpack(archive, out, f.lock);
  INFO((unpacked ? "" : unpacked.error().message()));
  REQUIRE(unpacked.ok());
  CHECK(unpacked->kind == kernels::cli::PackKind::mirror);
  for (const auto& e : fs::recursive_directory_iterator(f.mirror)) {
    if (!e.is_regular_file()) continue;
    const auto rel = fs::relative(e.path(), f.mirror);
    if (rel.generic_string().ends_with("README.md")) {
      CHECK_FALSE(fs::exists(out / rel));  // not referenced by the lock, so not packed
      continue;
    }
    CHECK(slurp(out / rel) == slurp(e.path()));
  }
}

TEST_CASE("unpacking the same archive twice is a no-op that still verifies", "[pack]") {
  Fixture f;
  const fs::path archive = f.dir.path / "cache.tar.zst";
  REQUIRE(kernels::cli::pack_cache(f.cache, f.lock, archive).ok());
  const fs::path fresh = f.dir.path / "fresh";
  REQUIRE(kernels::cli::unpack(archive, fresh, f.lock).ok());
  auto again = kernels::cli::unpack(archive, fresh, f.lock);
  INFO((again ? "" : again.error().message()));
  CHECK(again.ok());
}

TEST_CASE("packing refuses a cache whose blob was corrupted", "[pack]") {
  Fixture f;
  const kernels::CacheLayout layout(f.cache);
  const auto path = layout.snapshot_file(f.repo, f.sha, "build/cubin-cu130-sm80/attention.cubin");
  const auto target = fs::canonical(path);
  {
    std::fstream s(target, std::ios::in | std::ios::out | std::ios::binary);
    s.seekp(10);
    s.put('X');
  }
  auto packed = kernels::cli::pack_cache(f.cache, f.lock, f.dir.path / "bad.tar.zst");
  REQUIRE_FALSE(packed.ok());
  CHECK(packed.error().code == kernels::ErrorCode::integrity_mismatch);
  CHECK_FALSE(fs::exists(f.dir.path / "bad.tar.zst"));
}

TEST_CASE("unpack refuses an archive that does not match a different lock", "[pack]") {
  Fixture f;
  const fs::path archive = f.dir.path / "cache.tar.zst";
  REQUIRE(kernels::cli::pack_cache(f.cache, f.lock, archive).ok());
  kernels::Lockfile other = f.lock;
  other.kernels[0].variants.begin()->second.hash = "sha256-" + std::string(64, '0');
  const fs::path fresh = f.dir.path / "fresh";
  auto r = kernels::cli::unpack(archive, fresh, other);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == kernels::ErrorCode::integrity_mismatch);
  CHECK(fs::is_empty(fresh));  // nothing visible, staging removed
}

TEST_CASE("read_pack_kind names the kind without extracting anything", "[pack]") {
  Fixture f;
  REQUIRE(kernels::cli::pack_mirror(f.mirror, f.lock, f.dir.path / "m.tar.zst").ok());
  REQUIRE(kernels::cli::pack_cache(f.cache, f.lock, f.dir.path / "c.tar.zst").ok());
  CHECK(kernels::cli::read_pack_kind(f.dir.path / "m.tar.zst").value() ==
        kernels::cli::PackKind::mirror);
  CHECK(kernels::cli::read_pack_kind(f.dir.path / "c.tar.zst").value() ==
        kernels::cli::PackKind::cache);
  std::ofstream(f.dir.path / "junk.tar.zst") << "not an archive";
  auto junk = kernels::cli::read_pack_kind(f.dir.path / "junk.tar.zst");
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.error().code == kernels::ErrorCode::unsafe);
}

// Regression (issue 12, defect 1): two locked files with the same bytes share one blob; the pack
// wrote it twice and unpack refused the archive ("appears twice").
TEST_CASE("a cache whose variants share a file packs the shared blob once and unpacks", "[pack]") {
  const std::string init = "from .ops import attention\n";
  Fixture f({
      {"build/cubin-cu130-sm90a/__init__.py", init},
      {"build/cubin-cu130-sm90a/attention.cubin", std::string(2000, 'h')},
      {"build/cubin-cu130-sm80/__init__.py", init},
      {"build/cubin-cu130-sm80/attention.cubin", std::string(1000, 'a')},
  });
  const fs::path archive = f.dir.path / "cache.tar.zst";
  auto packed = kernels::cli::pack_cache(f.cache, f.lock, archive);
  INFO((packed ? "" : packed.error().message()));
  REQUIRE(packed.ok());
  CHECK(packed->files == 3);  // two cubins and one shared __init__.py blob

  const fs::path fresh = f.dir.path / "fresh-cache";
  auto unpacked = kernels::cli::unpack(archive, fresh, f.lock);
  INFO((unpacked ? "" : unpacked.error().message()));
  REQUIRE(unpacked.ok());
  const kernels::CacheLayout layout(fresh);
  CHECK(slurp(layout.snapshot_file(f.repo, f.sha, "build/cubin-cu130-sm80/__init__.py")) == init);
  CHECK(slurp(layout.snapshot_file(f.repo, f.sha, "build/cubin-cu130-sm90a/__init__.py")) == init);
}

// Regression (issue 12, defect 4): a FIFO in the cache in place of a blob hung `kernels pack` in
// open().
TEST_CASE("pack refuses a FIFO in the cache at once instead of blocking on it", "[pack]") {
  Fixture f;
  const auto e = std::find_if(f.tree.begin(), f.tree.end(), [](const kernels::TreeEntry& t) {
    return t.path == "build/cubin-cu130-sm80/manifest.json";
  });
  REQUIRE(e != f.tree.end());
  const fs::path blob = kernels::CacheLayout(f.cache).blob_path(f.repo, e->digest().hex);
  fs::remove(blob);
  REQUIRE(::mkfifo(blob.c_str(), 0644) == 0);
  const fs::path archive = f.dir.path / "cache.tar.zst";
  auto packed = std::async(std::launch::async,
                           [&] { return kernels::cli::pack_cache(f.cache, f.lock, archive); });
  if (packed.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    const int fd = ::open(blob.c_str(), O_WRONLY | O_NONBLOCK);  // let the stuck open() return
    if (fd >= 0) ::close(fd);
    packed.wait();
    FAIL("pack blocked on a FIFO in the cache");
  }
  auto r = packed.get();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == kernels::ErrorCode::unsafe);
  CHECK(r.error().message().find("not a regular file") != std::string::npos);
  CHECK_FALSE(fs::exists(archive));
}

// Regression (issue 12, defect 15): unpack onto a full disk said only "cannot write to the
// staging directory", with no cause and no hint. RLIMIT_FSIZE makes write() fail with EFBIG
// here the way a full disk fails it with ENOSPC.
TEST_CASE("unpack that cannot write says why and what to do", "[pack]") {
  Fixture f;
  const fs::path archive = f.dir.path / "cache.tar.zst";
  REQUIRE(kernels::cli::pack_cache(f.cache, f.lock, archive).ok());
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 100000;  // below the 300 kB cubin
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  auto unpacked = kernels::cli::unpack(archive, f.dir.path / "fresh-cache", f.lock);
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  REQUIRE_FALSE(unpacked.ok());
  INFO(unpacked.error().message());
  CHECK(unpacked.error().code == kernels::ErrorCode::io);
  CHECK(unpacked.error().what.find(std::strerror(EFBIG)) != std::string::npos);
  CHECK(unpacked.error().hint.find("free disk space") != std::string::npos);
}
