// Unpack's staging directory is used only through directory fds (issue 12, cache safety model):
// what a local user who can write the destination might do while unpack runs (swap the staging
// directory or a directory inside it for a link, plant a FIFO where a staged file is) is done
// here at a known moment through unpack's probe. The first four cases failed before staging went
// through fds: the path-based code wrote through the link, read and published the files it led
// to, or blocked on the FIFO; the last two show properties that held before and must stay.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <stdexcept>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/variant_hash.h"
#include "pack/pack.h"
#include "pack_fixture.h"

namespace fs = std::filesystem;
using namespace pack_test;
using kernels::ErrorCode;
using kernels::cli::UnpackStage;

namespace {

std::size_t count_entries(const fs::path& root) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

bool has_staging(const fs::path& dest) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dest, ec)) {
    if (e.path().filename().string().starts_with(".kernels-unpack")) return true;
  }
  return false;
}

struct Packed {
  Fixture f;
  fs::path archive = f.dir.path / "cache.tar.zst";
  fs::path dest = f.dir.path / "site" / "cache";
  fs::path outside = f.dir.path / "outside";
  std::string folder = kernels::repo_folder_name(f.repo);  // the repo's folder in the pack
  Packed() {
    REQUIRE(kernels::cli::pack_cache(f.cache, f.lock, archive).ok());
    fs::create_directories(outside);
  }
};

}  // namespace

TEST_CASE("unpack keeps using the staging directory it made when its name is swapped for a link",
          "[pack][safety]") {
  Packed p;
  fs::path moved;
  auto r = kernels::cli::unpack(p.archive, p.dest, p.f.lock, {},
                                [&](UnpackStage stage, const fs::path& staging) {
                                  if (stage != UnpackStage::staging_created) return;
                                  moved = p.f.dir.path / "site" / "moved-staging";
                                  fs::rename(staging, moved);
                                  fs::create_directory_symlink(p.outside, staging);
                                });
  INFO((r ? "" : r.error().message()));
  REQUIRE(r.ok());
  CHECK(fs::is_empty(p.outside));  // nothing extracted, read or published through the link
  const kernels::CacheLayout layout(p.dest);
  auto tree = layout.read_tree(p.f.repo, p.f.sha);
  REQUIRE(tree.ok());
  for (const auto& [variant, locked] : p.f.lock.kernels[0].variants) {
    CHECK(kernels::check_variant_on_disk(layout.snapshot_dir(p.f.repo, p.f.sha), variant, *tree,
                                         locked)
              .ok());
  }
  CHECK_FALSE(has_staging(p.dest));  // the planted link at the staging name is gone, not followed
  CHECK(fs::is_directory(p.outside));
}

TEST_CASE("a directory inside staging swapped for a link out of it is refused, never followed",
          "[pack][safety]") {
  Packed p;
  // The attacker's copy of the staged blobs, with the right bytes: the path-based code read,
  // verified and renamed these into the cache.
  std::size_t planted = 0;
  auto r = kernels::cli::unpack(p.archive, p.dest, p.f.lock, {},
                                [&](UnpackStage stage, const fs::path& staging) {
                                  if (stage != UnpackStage::extracted) return;
                                  const fs::path blobs = staging / p.folder / "blobs";
                                  fs::copy(blobs, p.outside);
                                  planted = count_entries(p.outside);
                                  fs::rename(blobs, staging / p.folder / "blobs.moved");
                                  fs::create_directory_symlink(p.outside, blobs);
                                });
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message());
  CHECK(r.error().code == ErrorCode::unsafe);
  CHECK(kernels::exit_code(r.error().code) == 11);
  CHECK_THAT(r.error().message(), Catch::Contains("symbolic link"));
  CHECK_THAT(r.error().message(), Catch::Contains("blobs"));
  REQUIRE(planted > 0);
  CHECK(count_entries(p.outside) == planted);  // nothing moved out of, or removed from, outside
  CHECK(fs::is_empty(p.dest));                 // nothing published; staging removed
}

TEST_CASE("a link planted where staging will make a directory is refused, nothing written through",
          "[pack][safety]") {
  Packed p;
  auto r = kernels::cli::unpack(p.archive, p.dest, p.f.lock, {},
                                [&](UnpackStage stage, const fs::path& staging) {
                                  if (stage != UnpackStage::staging_created) return;
                                  fs::create_directory_symlink(p.outside, staging / p.folder);
                                });
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message());
  CHECK(r.error().code == ErrorCode::unsafe);
  CHECK_THAT(r.error().message(), Catch::Contains("symbolic link"));
  CHECK(fs::is_empty(p.outside));
  CHECK(fs::is_empty(p.dest));
}

TEST_CASE("a FIFO planted where a staged file is read or hashed is refused without blocking",
          "[pack][safety]") {
  Packed p;
  // The tree is read as text, a blob is hashed: both readers of staged files.
  const std::string tree = p.folder + "/trees/" + p.f.sha + ".json";
  const auto cubin = std::find_if(p.f.tree.begin(), p.f.tree.end(), [](const auto& e) {
    return e.path == "build/cubin-cu130-sm90a/attention.cubin";
  });
  REQUIRE(cubin != p.f.tree.end());
  const std::string blob = p.folder + "/blobs/" + cubin->digest().hex;
  for (const std::string& name : {tree, blob}) {
    INFO(name);
    fs::path fifo;
    auto run = std::async(std::launch::async, [&] {
      return kernels::cli::unpack(p.archive, p.dest, p.f.lock, {},
                                  [&](UnpackStage stage, const fs::path& staging) {
                                    if (stage != UnpackStage::extracted) return;
                                    fifo = staging / name;
                                    fs::remove(fifo);
                                    if (::mkfifo(fifo.c_str(), 0644) != 0) {
                                      throw std::runtime_error("mkfifo failed");
                                    }
                                  });
    });
    if (run.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // let the stuck open() return
      if (fd >= 0) ::close(fd);
      run.wait();
      FAIL("unpack blocked on a FIFO in its staging directory");
    }
    auto r = run.get();
    REQUIRE_FALSE(r.ok());
    INFO(r.error().message());
    CHECK(r.error().code == ErrorCode::unsafe);
    CHECK_THAT(r.error().message(), Catch::Contains("a FIFO"));
    CHECK(fs::is_empty(p.dest));
  }
}

TEST_CASE("a FIFO planted where a file is about to be extracted is refused without blocking",
          "[pack][safety]") {
  Packed p;
  auto r = kernels::cli::unpack(p.archive, p.dest, p.f.lock, {},
                                [&](UnpackStage stage, const fs::path& staging) {
                                  if (stage != UnpackStage::staging_created) return;
                                  const fs::path fifo = staging / "kernels-pack.json";
                                  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
                                });
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message());
  CHECK(r.error().code == ErrorCode::unsafe);
  CHECK_THAT(r.error().message(), Catch::Contains("a FIFO"));
  CHECK(fs::is_empty(p.dest));
}

TEST_CASE("removing the staging directory never follows a link planted inside it",
          "[pack][safety]") {
  Packed p;
  const fs::path victim = p.outside / "victim";
  { std::ofstream(victim) << "keep me"; }
  auto r = kernels::cli::unpack(p.archive, p.dest, p.f.lock, {},
                                [&](UnpackStage stage, const fs::path& staging) {
                                  if (stage != UnpackStage::extracted) return;
                                  fs::create_directory_symlink(p.outside, staging / "escape");
                                  fs::create_directory_symlink(p.outside,
                                                               staging / p.folder / "escape");
                                });
  INFO((r ? "" : r.error().message()));
  REQUIRE(r.ok());  // the links are not entries of the archive: unpack does not look at them
  CHECK(slurp(victim) == "keep me");
  CHECK_FALSE(has_staging(p.dest));
}
