// `kernels download`: the HF cache layout, verification before visibility, the warm no-op path,
// variant selection without a GPU, offline behaviour, output hygiene.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "harness.h"
#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/lockfile.h"
#include "project_fixture.h"
#include "support/skip.h"

using namespace kernels::test;

namespace {

using Project = LockedProject;

std::size_t count_files(const fs::path& dir, const std::string& suffix = "") {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!it->is_directory(ec) && (suffix.empty() || name.size() >= suffix.size() &&
                                                        name.compare(name.size() - suffix.size(),
                                                                     suffix.size(), suffix) == 0)) {
      ++n;
    }
  }
  return n;
}

}  // namespace

TEST_CASE("download --all-variants writes the Hugging Face cache layout", "[download]") {
  Project p;
  ProcessResult r = p.download();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.empty());
  // A new lock is format 2: kernels 0.17's line (0.16's for format 1: the test below).
  CHECK(r.err.find("Downloading kernel: org/attn (revision: " + p.commit + ")") !=
        std::string::npos);
  auto layout = p.layout();
  kernels::RepoTree tree = p.repo.tree(p.commit);
  std::size_t files = 0;
  for (const auto& e : tree) {
    if (!e.is_file || e.path.rfind("build/", 0) != 0) continue;
    ++files;
    fs::path snap = layout.snapshot_file("org/attn", p.commit, e.path);
    REQUIRE(fs::is_symlink(snap));
    CHECK(fs::read_symlink(snap).is_relative());
    CHECK(fs::equivalent(snap, layout.blob_path("org/attn", e.digest().hex)));
  }
  CHECK(files == 12);
  CHECK_FALSE(fs::exists(layout.snapshot_file("org/attn", p.commit, "README.md")));  // build/ only
  CHECK(layout.read_ref("org/attn", "v1").value() == p.commit);
  CHECK(fs::exists(layout.tree_path("org/attn", p.commit)));
  CHECK(read_file(layout.lockfile_path()) == read_file(p.project / "kernels.lock"));
  CHECK(count_files(layout.blobs_dir("org/attn"), ".incomplete") == 0);
}

// Its speed (the 50 ms target) is measured by scripts/bench_cli.sh, not asserted here.
TEST_CASE("a format 1 lock downloads with kernels 0.16's line", "[download]") {
  Project p;
  REQUIRE(p.run({"lock", "--format", "1", p.project.string()}).exit_code == 0);
  ProcessResult r = p.download();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("Downloading `org/attn` with SHA: " + p.commit) != std::string::npos);
  CHECK(r.err.find("Downloading kernel:") == std::string::npos);
}

TEST_CASE("warm download is a no-op: no network, no writes", "[download][warm]") {
  Project p;
  REQUIRE(p.download().exit_code == 0);
  auto before = fs::last_write_time(p.layout().lockfile_path());
  // An endpoint that cannot answer: any request would fail the command.
  p.endpoint = "http://127.0.0.1:9/unreachable";
  for (int i = 0; i < 3; ++i) {
    ProcessResult r = p.download();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  CHECK(fs::last_write_time(p.layout().lockfile_path()) == before);
  CHECK(count_files(p.layout().blobs_dir("org/attn"), ".incomplete") == 0);
}

TEST_CASE("a file whose bytes differ from the tree never becomes visible (exit 6)",
          "[download][integrity]") {
  Project p;
  kernels::RepoTree tree = p.repo.tree(p.commit);
  const kernels::TreeEntry* victim = nullptr;
  for (const auto& e : tree) {
    if (e.is_file && e.path.rfind("build/cubin-cu130-sm90a/", 0) == 0 && e.lfs) victim = &e;
  }
  REQUIRE(victim);
  std::string bad(victim->content_size(), 'X');  // same size, other bytes
  p.repo.tamper_file(p.commit, victim->path, bad);
  ProcessResult r = p.download();
  CHECK(r.exit_code == 6);
  CHECK(r.err.find(victim->path) != std::string::npos);
  auto layout = p.layout();
  CHECK_FALSE(fs::exists(layout.blob_path("org/attn", victim->digest().hex)));
  CHECK_FALSE(
      fs::exists(fs::symlink_status(layout.snapshot_file("org/attn", p.commit, victim->path))));
  CHECK(count_files(layout.blobs_dir("org/attn"), ".incomplete") == 0);
}

TEST_CASE("a tree that no longer matches the lock's variant hash stops before any fetch (exit 6)",
          "[download][integrity]") {
  Project p;
  // The mirror now lists one file with another oid for the locked commit.
  std::string listing = read_file(p.mirror / "api/kernels/org/attn/tree" / p.commit);
  kernels::RepoTree tree = p.repo.tree(p.commit);
  std::string oid;
  for (const auto& e : tree) {
    if (e.is_file && e.path.rfind("build/cubin-cu130-sm80/", 0) == 0 && !e.lfs) oid = e.oid;
  }
  REQUIRE_FALSE(oid.empty());
  listing.replace(listing.find(oid), 40, std::string(40, 'e'));
  p.repo.set_tree(p.commit, listing);
  // Another machine: its cache has no tree from the lock run, so it lists the mirror's.
  fs::remove_all(p.cache);
  ProcessResult r = p.download();
  CHECK(r.exit_code == 6);
  CHECK(r.err.find("Lock file specifies kernel with hash") != std::string::npos);
  CHECK_FALSE(fs::exists(p.layout().blobs_dir("org/attn")));
}

TEST_CASE("download without a GPU selects no cubin variant and says why (exit 12)",
          "[download][variant]") {
  Project p;
  ProcessResult r = p.download({});
  CHECK(r.exit_code == 12);
  CHECK(r.err.find("no CUDA driver") != std::string::npos);
  CHECK(r.err.find("Cannot find a build variant for this system in org/attn") != std::string::npos);
}

TEST_CASE(
    "download picks the cubin variant for a stated GPU and the torch variant for a stated torch",
    "[download][variant]") {
  Project p;
  ProcessResult r = p.download({"--driver-cuda", "13.0", "--compute-capability", "9.0", "--torch",
                                "2.10", "--cuda", "12.9"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  fs::path build = p.layout().snapshot_dir("org/attn", p.commit) / "build";
  CHECK(fs::exists(build / "cubin-cu130-sm90a"));
  CHECK(fs::exists(build / "torch210-cxx11-cu128-x86_64-linux"));
  CHECK_FALSE(fs::exists(build / "cubin-cu130-sm80"));

  ProcessResult ampere = p.download({"--driver-cuda", "13.0", "--compute-capability", "8.6"});
  INFO(ampere.err);
  REQUIRE(ampere.exit_code == 0);
  CHECK(fs::exists(build / "cubin-cu130-sm80"));
}

TEST_CASE("download --variant fetches exactly the named variants", "[download][variant]") {
  Project p;
  ProcessResult r = p.download(
      {"--variant", "cubin-cu130-sm80", "--variant", "torch210-cxx11-cu128-x86_64-linux"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  fs::path build = p.layout().snapshot_dir("org/attn", p.commit) / "build";
  CHECK(fs::exists(build / "cubin-cu130-sm80"));
  CHECK(fs::exists(build / "torch210-cxx11-cu128-x86_64-linux"));
  CHECK_FALSE(fs::exists(build / "cubin-cu130-sm90a"));
  CHECK(p.download({"--variant", "cubin-cu999-sm1"}).exit_code == 12);
}

TEST_CASE("offline download of what is not cached is exit 9, of what is cached 0",
          "[download][offline]") {
  Project p;
  ProcessResult cold = p.download({"--all-variants"}, {{"HF_HUB_OFFLINE", "1"}});
  CHECK(cold.exit_code == 9);
  CHECK(cold.err.find("offline") != std::string::npos);
  REQUIRE(p.download().exit_code == 0);
  ProcessResult warm = run_kernels({"--offline", "download", "--all-variants", p.project.string()},
                                   p.cache, "file:///nonexistent");
  INFO(warm.err);
  CHECK(warm.exit_code == 0);
}

TEST_CASE("a missing kernels.lock is exit 3 with Python's message", "[download]") {
  TempDir dir;
  ProcessResult r = run_kernels({"download", dir.path().string()}, dir / "cache",
                                "file:///nonexistent");
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("No kernels.lock file found in: " + dir.path().string()) != std::string::npos);
}

TEST_CASE(
    "quiet mode prints nothing on success, and non-TTY output has no escapes or carriage returns",
    "[download][output]") {
  Project p;
  ProcessResult quiet = run_kernels({"--quiet", "download", "--all-variants", p.project.string()},
                                    p.cache, p.endpoint);
  REQUIRE(quiet.exit_code == 0);
  CHECK(quiet.err.empty());
  CHECK(quiet.out.empty());
  TempDir other;
  ProcessResult loud = run_kernels({"-v", "download", "--all-variants", p.project.string()},
                                   other / "cache", p.endpoint, {{"FORCE_COLOR", "1"}});
  REQUIRE(loud.exit_code == 0);
  CHECK(loud.err.find('\r') == std::string::npos);
  CHECK(loud.err.find('\x1b') == std::string::npos);
  CHECK(loud.err.find("fetched org/attn/build/") != std::string::npos);
}

TEST_CASE("copy mode (HF_HUB_DISABLE_SYMLINKS=1) stores regular files that verify",
          "[download][cache]") {
  Project p;
  ProcessResult r = p.download({"--all-variants"}, {{"HF_HUB_DISABLE_SYMLINKS", "1"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  kernels::RepoTree tree = p.repo.tree(p.commit);
  for (const auto& e : tree) {
    if (!e.is_file || e.path.rfind("build/", 0) != 0) continue;
    fs::path snap = p.layout().snapshot_file("org/attn", p.commit, e.path);
    CHECK(fs::is_regular_file(fs::symlink_status(snap)));
  }
  ProcessResult v = run_kernels({"verify", p.project.string()}, p.cache, p.endpoint,
                                {{"HF_HUB_DISABLE_SYMLINKS", "1"}});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
}

TEST_CASE("help lists every exit code", "[output]") {
  TempDir dir;
  ProcessResult r = run_kernels({"--help"}, dir / "cache", "file:///x");
  CHECK(r.exit_code == 0);
  for (const char* line :
       {"2   usage", "3   lockfile_missing", "4   lockfile_stale", "6   integrity_mismatch",
        "9   offline_not_cached", "10  lock_timeout", "12  no_variant", "70  internal"}) {
    CHECK(r.out.find(line) != std::string::npos);
  }
  ProcessResult bad = run_kernels({"download", "--no-such-flag"}, dir / "cache", "file:///x");
  CHECK(bad.exit_code == 2);
}

TEST_CASE("an exception escaping a command is exit 70 with a message, never a crash", "[output]") {
  TempDir dir;
  ProcessResult r = run_kernels({"cache", "path"}, dir / "cache", "file:///x",
                                {{"KERNELS_TEST_THROW", "1"}});
  CHECK(r.exit_code == 70);
  CHECK(r.err.find("error: internal error: test hook KERNELS_TEST_THROW=1") != std::string::npos);
}

TEST_CASE("KERNELS_FSYNC=1 (durable blobs) downloads the same verified bytes",
          "[download][cache]") {
  Project p;
  ProcessResult r = p.download({"--all-variants"}, {{"KERNELS_FSYNC", "1"}});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  ProcessResult v = p.run({"verify", p.project.string()});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
  CHECK(count_files(p.layout().blobs_dir("org/attn"), ".incomplete") == 0);
}

TEST_CASE("parallel transfers from --jobs or KERNELS_JOBS, and a bad value is exit 2",
          "[download][jobs]") {
  for (const char* jobs : {"1", "3"}) {
    Project p;
    ProcessResult r = p.download({"--all-variants", "--jobs", jobs});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
  }
  {
    Project p;
    ProcessResult r = p.download({"--all-variants"}, {{"KERNELS_JOBS", "2"}});
    INFO(r.err);
    CHECK(r.exit_code == 0);
  }
  for (const char* bad : {"0", "257", "x"}) {
    Project p;
    ProcessResult r = p.download({"--all-variants", "--jobs", bad});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--jobs") != std::string::npos);
  }
  for (const char* bad : {"0", "many", "-4", "1000"}) {
    Project p;
    ProcessResult r = p.download({"--all-variants"}, {{"KERNELS_JOBS", bad}});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("KERNELS_JOBS must be a number from 1 to 256") != std::string::npos);
    CHECK(count_files(p.layout().blobs_dir("org/attn")) == 0);  // stopped before any fetch
  }
}

// Regression (issue 12, defect 15): download exited 0 when it could not copy the lock into the
// cache, and the loader then silently served the built-in kernels.
TEST_CASE("download fails (exit 13) when it cannot copy kernels.lock into the cache",
          "[download]") {
  Project p;
  fs::create_directories(p.layout().lockfile_path() / "in-the-way");
  ProcessResult r = p.download();
  INFO(r.err);
  CHECK(r.exit_code == 13);
  CHECK(r.err.find("kernels.lock") != std::string::npos);
  CHECK(r.err.find("KERNELS_LOCKFILE") != std::string::npos);
}
