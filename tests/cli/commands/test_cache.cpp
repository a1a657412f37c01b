// `kernels cache ls | show | verify | prune | rm | path`.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "cache_inventory.h"
#include "project_fixture.h"

using namespace kernels::test;

TEST_CASE("cache ls and show describe repos, revisions, refs, variants and completeness",
          "[cache]") {
  LockedProject p;
  REQUIRE(p.download({"--variant", "cubin-cu130-sm90a"}).exit_code == 0);
  ProcessResult ls = p.run({"cache", "ls"});
  INFO(ls.err);
  REQUIRE(ls.exit_code == 0);
  CHECK(ls.out.find("org/attn") != std::string::npos);
  CHECK(ls.out.find(" ok") != std::string::npos);

  ProcessResult json = p.run({"--json", "cache", "ls"});
  REQUIRE(json.exit_code == 0);
  auto doc = nlohmann::json::parse(json.out);
  REQUIRE(doc["repos"].size() == 1);
  CHECK(doc["repos"][0]["repo_id"] == "org/attn");
  CHECK(doc["repos"][0]["revisions"][0]["commit"] == p.commit);
  CHECK(doc["repos"][0]["revisions"][0]["refs"][0] == "v1");
  CHECK(doc["repos"][0]["revisions"][0]["complete"] == true);

  fs::remove(
      p.layout().snapshot_file("org/attn", p.commit, p.entry_of("cubin-cu130-sm90a", false).path));
  ProcessResult show = p.run({"cache", "show", "org/attn"});
  INFO(show.out);
  REQUIRE(show.exit_code == 0);
  CHECK(show.out.find(p.commit + "  [v1]") != std::string::npos);
  CHECK(show.out.find("incomplete (1 files missing)") != std::string::npos);
  CHECK(show.out.find("cubin-cu130-sm90a  3/4 files") != std::string::npos);

  ProcessResult path = p.run({"cache", "path"});
  CHECK(path.out == p.cache.string() + "\n");
}

TEST_CASE("cache verify re-hashes every file and names the corrupt ones", "[cache]") {
  LockedProject p;
  REQUIRE(p.download().exit_code == 0);
  CHECK(p.run({"cache", "verify"}).exit_code == 0);
  kernels::TreeEntry e = p.entry_of("cubin-cu130-sm80", true);
  fs::path blob = p.layout().blob_path("org/attn", e.digest().hex);
  write_file(blob, std::string(e.content_size(), 'Z'));
  ProcessResult r = p.run({"cache", "verify"});
  CHECK(r.exit_code == 6);
  CHECK(r.out.find("CORRUPT org/attn@" + p.commit + " " + e.path) != std::string::npos);
}

TEST_CASE("cache prune keeps what a lockfile references and removes the rest, dry run first",
          "[cache]") {
  LockedProject p;
  REQUIRE(p.download({"--variant", "cubin-cu130-sm80"}).exit_code == 0);
  const std::string v1_lock = read_file(p.project / "kernels.lock");
  // The project moves to v2: nothing locks v1 any more.
  std::string v2 = p.repo.publish(2, make_variant_files("cubin-cu130-sm80", 2, 500, 99));
  write_file(p.project / "pyproject.toml", "[tool.kernels.dependencies]\n\"org/attn\" = 2\n");
  REQUIRE(p.run({"lock", p.project.string()}).exit_code == 0);
  REQUIRE(p.run({"download", "--all-variants", p.project.string()}).exit_code == 0);
  auto layout = p.layout();
  fs::path v1_snapshot = layout.snapshot_dir("org/attn", p.commit);
  fs::path v2_snapshot = layout.snapshot_dir("org/attn", v2);

  ProcessResult dry = p.run({"cache", "prune", "--dry-run"});
  INFO(dry.out << dry.err);
  REQUIRE(dry.exit_code == 0);
  CHECK(dry.out.find("would remove revision " + v1_snapshot.string()) != std::string::npos);
  CHECK(fs::exists(v1_snapshot));

  // --lockfile keeps what another lock names.
  write_file(p.dir / "old.lock", v1_lock);
  ProcessResult kept = p.run({"cache", "prune", "--lockfile", (p.dir / "old.lock").string()});
  REQUIRE(kept.exit_code == 0);
  CHECK(fs::exists(v1_snapshot));
  CHECK(fs::exists(v2_snapshot));

  ProcessResult pruned = p.run({"cache", "prune"});
  INFO(pruned.out);
  REQUIRE(pruned.exit_code == 0);
  CHECK_FALSE(fs::exists(v1_snapshot));
  CHECK(fs::exists(v2_snapshot));
  CHECK_FALSE(fs::exists(layout.tree_path("org/attn", p.commit)));
  CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
}

TEST_CASE("two projects sharing a cache: each lock is kept, prune keeps both projects' kernels",
          "[cache]") {
  LockedProject p;
  REQUIRE(p.download({"--variant", "cubin-cu130-sm80"}).exit_code == 0);
  std::string v2 = p.repo.publish(2, make_variant_files("cubin-cu130-sm80", 2, 500, 99));
  fs::path other = p.dir / "other";
  write_file(other / "pyproject.toml", "[tool.kernels.dependencies]\n\"org/attn\" = 2\n");
  REQUIRE(p.run({"lock", other.string()}).exit_code == 0);
  REQUIRE(p.run({"download", "--all-variants", other.string()}).exit_code == 0);
  // <cache>/kernels.lock is the last project's; both are kept under .kernels-projects.
  auto layout = p.layout();
  CHECK(read_file(layout.lockfile_path()) == read_file(other / "kernels.lock"));
  CHECK(read_file(layout.project_lock_path(p.project)) == read_file(p.project / "kernels.lock"));
  CHECK(read_file(layout.project_lock_path(other)) == read_file(other / "kernels.lock"));
  CHECK(layout.project_lockfiles().size() == 2);

  ProcessResult dry = p.run({"cache", "prune", "--dry-run"});
  INFO(dry.out << dry.err);
  REQUIRE(dry.exit_code == 0);
  CHECK(dry.out.find("would remove") == std::string::npos);
  REQUIRE(p.run({"cache", "prune"}).exit_code == 0);
  CHECK(fs::exists(layout.snapshot_dir("org/attn", p.commit)));
  CHECK(fs::exists(layout.snapshot_dir("org/attn", v2)));
  CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
  CHECK(p.run({"verify", other.string()}).exit_code == 0);
}

TEST_CASE("cache prune refuses to run with no lockfile to keep", "[cache]") {
  TempDir dir;
  ProcessResult r = run_kernels({"cache", "prune"}, dir / "cache", "file:///x");
  CHECK(r.exit_code == 3);
}

TEST_CASE("cache rm removes one revision or a whole repo", "[cache]") {
  LockedProject p;
  REQUIRE(p.download().exit_code == 0);
  ProcessResult bad = p.run({"cache", "rm", "org/none"});
  CHECK(bad.exit_code == 2);
  ProcessResult by_ref = p.run({"cache", "rm", "org/attn@v1"});
  INFO(by_ref.out << by_ref.err);
  REQUIRE(by_ref.exit_code == 0);
  CHECK_FALSE(fs::exists(p.layout().snapshot_dir("org/attn", p.commit)));
  CHECK(fs::is_empty(p.layout().blobs_dir("org/attn")));
  REQUIRE(p.download().exit_code == 0);
  REQUIRE(p.run({"cache", "rm", "org/attn"}).exit_code == 0);
  CHECK_FALSE(fs::exists(p.layout().repo_dir("org/attn")));
}

// Regression (issue 15): removing a whole repo reported "freed 0 B".
TEST_CASE("cache rm reports the bytes it freed", "[cache]") {
  LockedProject p;
  REQUIRE(p.download().exit_code == 0);
  auto blob_bytes = [&] {
    std::uint64_t total = 0;
    for (const auto& e : fs::directory_iterator(p.layout().blobs_dir("org/attn")))
      total += e.file_size();
    return total;
  };
  const std::uint64_t whole = blob_bytes();
  REQUIRE(whole > 0);
  ProcessResult repo = p.run({"cache", "rm", "org/attn"});
  INFO(repo.out << repo.err);
  REQUIRE(repo.exit_code == 0);
  // At least the blobs (the tree listing and the refs add a little).
  const std::string freed = "freed ";
  const auto at = repo.out.rfind(freed);
  REQUIRE(at != std::string::npos);
  CHECK(repo.out.find("freed 0 B") == std::string::npos);
  CHECK(repo.out.substr(at + freed.size()).find("KiB") != std::string::npos);

  REQUIRE(p.download().exit_code == 0);
  ProcessResult revision = p.run({"cache", "rm", "org/attn@v1", "--json"});
  INFO(revision.out << revision.err);
  REQUIRE(revision.exit_code == 0);
  std::uint64_t listed = 0;
  const auto doc = nlohmann::json::parse(revision.out);
  for (const auto& action : doc["actions"]) listed += action["bytes"].get<std::uint64_t>();
  CHECK(listed >= whole);
  CHECK(doc["bytes"] == listed);
}

namespace {

void age(const fs::path& p, std::chrono::hours by) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(p, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    fs::last_write_time(it->path(), fs::file_time_type::clock::now() - by, ec);
  }
  fs::last_write_time(p, fs::file_time_type::clock::now() - by, ec);
}

}  // namespace

// Regression (issue 12, defect 6): prune removed the folder of a repo whose download was in
// flight (no snapshot yet, seconds-old *.incomplete files), which then failed with exit 13.
TEST_CASE("cache prune leaves a repo with a download in flight alone", "[cache]") {
  LockedProject p;
  REQUIRE(p.download().exit_code == 0);
  const kernels::CacheLayout layout = p.layout();
  // Another repo, mid-download: its tree is cached, a temp file is being written, no snapshot.
  const fs::path temp = layout.blobs_dir("org/inflight") / "0123.abcd1234.incomplete";
  write_file(temp, "partial");
  write_file(layout.tree_path("org/inflight", std::string(40, 'a')), "{}");
  ProcessResult fresh = p.run({"cache", "prune"});
  INFO(fresh.out << fresh.err);
  REQUIRE(fresh.exit_code == 0);
  CHECK(fs::exists(temp));
  CHECK(fresh.out.find("org--inflight") == std::string::npos);

  // Without the temp file, a repo with no snapshot and fresh files is still in flight.
  fs::remove(temp);
  REQUIRE(p.run({"cache", "prune"}).exit_code == 0);
  CHECK(fs::exists(layout.tree_path("org/inflight", std::string(40, 'a'))));

  // An hour later the same folder is debris and goes.
  age(layout.repo_dir("org/inflight"), std::chrono::hours(2));
  ProcessResult old = p.run({"cache", "prune"});
  INFO(old.out << old.err);
  REQUIRE(old.exit_code == 0);
  CHECK_FALSE(fs::exists(layout.repo_dir("org/inflight")));
  CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
}

// Issue 15: a killed download's temp files stayed for an hour although nobody owned them.
TEST_CASE("cache prune removes at once a temp file whose download died (its blob lock is free)",
          "[cache]") {
  LockedProject p;
  REQUIRE(p.download().exit_code == 0);
  const kernels::CacheLayout layout = p.layout();
  const std::string etag = p.entry_of("cubin-cu130-sm80", true).digest().hex;
  const fs::path lock = layout.lock_path("org/attn", etag);
  REQUIRE(fs::exists(lock));  // the download took it
  const fs::path orphan = layout.blobs_dir("org/attn") / (etag + ".0badc0de.incomplete");
  const fs::path owned = layout.blobs_dir("org/attn") / (etag + ".1badc0de.incomplete");
  const fs::path resumable = layout.blobs_dir("org/attn") / (etag + ".incomplete");
  write_file(orphan, "left by a killed download");

  ProcessResult pruned = p.run({"cache", "prune"});
  INFO(pruned.out << pruned.err);
  REQUIRE(pruned.exit_code == 0);
  CHECK_FALSE(fs::exists(orphan));
  CHECK(pruned.out.find("removed temp file " + orphan.string()) != std::string::npos);

  // The same file while a process holds its blob lock is a download in flight.
  write_file(owned, "being written");
  const int fd = ::open(lock.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  ProcessResult held = p.run({"cache", "prune"});
  ::close(fd);
  INFO(held.out << held.err);
  REQUIRE(held.exit_code == 0);
  CHECK(fs::exists(owned));
  // ... and with flock turned off, nothing tells, so only age counts.
  ProcessResult no_flock = p.run({"cache", "prune"}, {{"KERNELS_DISABLE_FLOCK", "1"}});
  REQUIRE(no_flock.exit_code == 0);
  CHECK(fs::exists(owned));
  CHECK(p.run({"cache", "prune"}).exit_code == 0);
  CHECK_FALSE(fs::exists(owned));

  // <etag>.incomplete, an interrupted download's bytes (or huggingface_hub's, written under the
  // same lock): kept while a process holds the lock, removed at once when none does.
  write_file(resumable, "an interrupted download's bytes");
  const int held_fd = ::open(lock.c_str(), O_RDWR);
  REQUIRE(held_fd >= 0);
  REQUIRE(::flock(held_fd, LOCK_EX) == 0);
  CHECK(p.run({"cache", "prune"}).exit_code == 0);
  ::close(held_fd);
  CHECK(fs::exists(resumable));
  CHECK(p.run({"cache", "prune"}).exit_code == 0);
  CHECK_FALSE(fs::exists(resumable));
  CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
}

// Regression (issue 12, defect 12): a killed unpack's staging directory was never shown by
// `cache ls` and never removed by `cache prune`.
TEST_CASE("cache ls shows unpack staging directories and prune removes old ones", "[cache]") {
  LockedProject p;
  REQUIRE(p.download().exit_code == 0);
  const fs::path old_staging = p.cache / ".kernels-unpack.0badc0de.incomplete";
  const fs::path new_staging = p.cache / ".kernels-unpack.1badc0de.incomplete";
  write_file(old_staging / "kernels--org--attn" / "blobs" / "x", "left by a killed unpack");
  write_file(new_staging / "kernels-pack.json", "{}");
  age(old_staging, std::chrono::hours(2));

  ProcessResult ls = p.run({"cache", "ls"});
  INFO(ls.out << ls.err);
  REQUIRE(ls.exit_code == 0);
  CHECK(ls.err.find("2 unpack staging directories") != std::string::npos);
  ProcessResult json = p.run({"--json", "cache", "ls"});
  REQUIRE(json.exit_code == 0);
  CHECK(nlohmann::json::parse(json.out)["unpack_staging"].size() == 2);

  ProcessResult pruned = p.run({"cache", "prune"});
  INFO(pruned.out << pruned.err);
  REQUIRE(pruned.exit_code == 0);
  CHECK_FALSE(fs::exists(old_staging));
  CHECK(fs::exists(new_staging));  // may be an unpack in flight
  CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
}

// Regression (issue 12, defect 3): a cache other users can write was used silently, a symlink
// planted at a blob lock made a (root) download create a file anywhere, and one planted at
// snapshots/<sha>/build made it create directories and links outside the cache.
TEST_CASE("a cache writable by others is refused with exit 11 naming the path and the fix",
          "[cache][safety]") {
  LockedProject p;
  REQUIRE(p.download().exit_code == 0);
  const kernels::CacheLayout layout = p.layout();
  for (const fs::path& dir : {p.cache, layout.blobs_dir("org/attn"),
                              layout.snapshot_dir("org/attn", p.commit), p.cache / ".locks"}) {
    INFO(dir);
    fs::permissions(dir, fs::perms::others_write, fs::perm_options::add);
    ProcessResult r = p.run({"cache", "ls"});
    CHECK(r.exit_code == 11);
    CHECK(r.err.find(dir.string()) != std::string::npos);
    CHECK(r.err.find("chmod go-w") != std::string::npos);
    CHECK(r.err.find("KERNELS_ALLOW_SHARED_CACHE") != std::string::npos);
    CHECK(p.download().exit_code == 11);
    // The explicit opt-out for a cache shared on purpose.
    CHECK(p.run({"cache", "ls"}, {{"KERNELS_ALLOW_SHARED_CACHE", "1"}}).exit_code == 0);
    fs::permissions(dir, fs::perms::others_write, fs::perm_options::remove);
    CHECK(p.run({"cache", "ls"}).exit_code == 0);
  }
  // A symlink where the cache has one of its directories.
  const fs::path elsewhere = p.dir / "elsewhere";
  fs::create_directories(elsewhere);
  const fs::path refs = layout.repo_dir("org/attn") / "refs";
  fs::rename(refs, elsewhere / "refs");
  fs::create_directory_symlink(elsewhere / "refs", refs);
  ProcessResult linked = p.run({"cache", "ls"});
  CHECK(linked.exit_code == 11);
  CHECK(linked.err.find("symbolic link") != std::string::npos);
}

TEST_CASE("a symlink planted at a blob lock is not followed", "[cache][safety]") {
  LockedProject p(1, 100);
  const kernels::TreeEntry e = p.entry_of("cubin-cu130-sm80", true);
  const fs::path lock = p.layout().lock_path("org/attn", e.digest().hex);
  const fs::path victim = p.dir / "victim-file";
  fs::create_directories(lock.parent_path());
  fs::create_symlink(victim, lock);
  ProcessResult r = p.download();
  INFO(r.err);
  CHECK(r.exit_code == 0);  // the lock is only an optimisation: the download goes on without it
  CHECK_FALSE(fs::exists(victim));
  CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
}

TEST_CASE("a symlink planted inside a snapshot is refused, nothing is made outside the cache",
          "[cache][safety]") {
  LockedProject p(1, 100);
  const fs::path outside = p.dir / "outside";
  fs::create_directories(outside);
  const fs::path snapshot = p.layout().snapshot_dir("org/attn", p.commit);
  fs::create_directories(snapshot);
  fs::create_directory_symlink(outside, snapshot / "build");
  ProcessResult r = p.download();
  INFO(r.err);
  CHECK(r.exit_code == 11);
  CHECK(r.err.find("symbolic link") != std::string::npos);
  CHECK(fs::is_empty(outside));
}

// Found by the crash storm (issue 12): a process killed inside an atomic write (tree, ref, kept
// lock, snapshot link) left "<name>.<8 hex>.incomplete", which prune never removed.
TEST_CASE("prune removes temp files of killed atomic writes once untouched for an hour",
          "[cache]") {
  LockedProject p;
  REQUIRE(p.download().exit_code == 0);
  const kernels::CacheLayout layout = p.layout();
  const fs::path trees = layout.trees_dir("org/attn");
  const std::vector<fs::path> old_temps = {trees / (p.commit + ".json.0badc0de.incomplete"),
                                           layout.refs_dir("org/attn") / "v1.0badc0de.incomplete",
                                           p.cache / "kernels.lock.0badc0de.incomplete",
                                           layout.snapshot_dir("org/attn", p.commit) /
                                               "README.md.0badc0de.incomplete"};
  for (const fs::path& t : old_temps) {
    write_file(t, "left by a killed write");
    age(t, std::chrono::hours(2));
  }
  const fs::path young = trees / (p.commit + ".json.1badc0de.incomplete");  // maybe in flight
  write_file(young, "a write in flight");
  const fs::path not_ours = trees / "notes.incomplete";  // not our temp name: left alone
  write_file(not_ours, "x");
  age(not_ours, std::chrono::hours(2));
  ProcessResult pruned = p.run({"cache", "prune"});
  INFO(pruned.out << pruned.err);
  REQUIRE(pruned.exit_code == 0);
  for (const fs::path& t : old_temps) {
    INFO(t);
    CHECK_FALSE(fs::exists(t));
  }
  CHECK(fs::exists(young));
  CHECK(fs::exists(not_ours));
  CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
}

TEST_CASE(
    "a symlink planted at any cache directory a download writes is refused (exit 11), nothing made "
    "outside",
    "[cache][safety]") {
  // Issue 12: every write goes through directories opened from the root without following links
  // (lockfile/cache_dir.h); .kernels-projects (each project's kept lock) was followed before.
  for (const std::string level :
       {".locks", ".locks/kernels--org--attn", ".kernels-projects", "kernels--org--attn",
        "kernels--org--attn/blobs", "kernels--org--attn/snapshots", "kernels--org--attn/refs",
        "kernels--org--attn/trees"}) {
    INFO(level);
    LockedProject p(1, 100);
    const fs::path outside = p.dir / "outside";
    fs::create_directories(outside);
    fs::create_directories((p.cache / level).parent_path());
    fs::remove_all(p.cache / level);  // what the fixture made there, if anything
    fs::create_directory_symlink(outside, p.cache / level);
    ProcessResult r = p.download();
    INFO(r.err);
    CHECK(r.exit_code == 11);
    CHECK(r.err.find("symbolic link") != std::string::npos);
    CHECK(fs::is_empty(outside));
  }
}

TEST_CASE("a link at a resumable partial file's name is neither resumed from nor written through",
          "[cache][safety]") {
  // Issue 12: the download's temp file and the kept partial files are used by name relative to
  // the verified blobs/ descriptor (O_NOFOLLOW), never by path.
  LockedProject p(1, 100);
  const auto e = p.entry_of("cubin-cu130-sm90a", true);
  const fs::path blob = p.layout().blob_path("org/attn", e.digest().hex);
  fs::create_directories(blob.parent_path());
  const fs::path outside = p.dir / "outside-partial";
  write_file(outside, "kept bytes of nothing");
  fs::create_symlink(outside, blob.string() + ".incomplete");
  ProcessResult r = p.download();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(read_file(outside) == "kept bytes of nothing");
  CHECK(fs::is_regular_file(fs::symlink_status(blob)));
  CHECK(p.run({"verify", p.project.string()}).exit_code == 0);
}

// Regression (issue 12, cache safety model): prune and rm removed by path
// (std::filesystem::remove_all of paths joined from the cache root), so a directory of the cache
// replaced by a link to one outside led the removal there. The permission check before every
// command refuses such a link (exit 11) unless KERNELS_ALLOW_SHARED_CACHE is set; with it set,
// only the removal's own walk from the root (CacheDir) stands in the way.
TEST_CASE("cache prune and cache rm never remove through a link planted in the cache",
          "[cache][safety]") {
  const std::map<std::string, std::optional<std::string>> shared = {
      {"KERNELS_ALLOW_SHARED_CACHE", "1"}};
  LockedProject p(1, 100);
  REQUIRE(p.download().exit_code == 0);
  const kernels::CacheLayout layout = p.layout();
  const fs::path outside = p.dir / "outside";

  SECTION("a repo folder that is a link: prune refuses, nothing where it points is removed") {
    // Looks like a repo no lock references, so prune would remove its revision and blobs.
    const fs::path sentinel = outside / "snapshots" / std::string(40, 'b') / "sentinel";
    write_file(sentinel, "not the cache's");
    write_file(outside / "blobs" / "sentinel-blob", "not the cache's");
    const fs::path planted = layout.repo_dir("org/planted");
    fs::create_directory_symlink(outside, planted);
    ProcessResult r = p.run({"cache", "prune"}, shared);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 11);
    CHECK(r.err.find("symbolic link") != std::string::npos);
    CHECK(r.err.find(planted.string()) != std::string::npos);
    CHECK(fs::exists(sentinel));
    CHECK(fs::exists(outside / "blobs" / "sentinel-blob"));
    // Refused before anything was removed.
    CHECK(p.run({"verify", p.project.string()}, shared).exit_code == 0);
    // `cache rm` of that repo removes the link itself, never what it points to, and frees
    // nothing.
    ProcessResult rm = p.run({"cache", "rm", "org/planted"}, shared);
    INFO(rm.out << rm.err);
    CHECK(rm.exit_code == 0);
    CHECK_FALSE(fs::exists(fs::symlink_status(planted)));
    CHECK(fs::exists(sentinel));
    CHECK(rm.out.find("freed 0 B") != std::string::npos);
  }

  SECTION("blobs/ that is a link: prune refuses, the stray file behind it stays") {
    const fs::path blobs = layout.blobs_dir("org/attn");
    fs::create_directories(outside);
    fs::rename(blobs, outside / "blobs");
    fs::create_directory_symlink(outside / "blobs", blobs);
    const fs::path stray = outside / "blobs" / "stray";  // no snapshot uses it: prune's to remove
    write_file(stray, "not the cache's");
    ProcessResult r = p.run({"cache", "prune"}, shared);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 11);
    CHECK(r.err.find("symbolic link") != std::string::npos);
    CHECK(r.err.find(blobs.string()) != std::string::npos);
    CHECK(fs::exists(stray));
    ProcessResult dry = p.run({"cache", "prune", "--dry-run"}, shared);
    CHECK(dry.exit_code == 11);  // the dry run says what the real one would meet
  }

  SECTION("snapshots/ that is a link: `cache rm REPO@REV` refuses, the snapshot behind it stays") {
    const fs::path snapshots = layout.snapshot_dir("org/attn", p.commit).parent_path();
    fs::create_directories(outside);
    fs::rename(snapshots, outside / "snapshots");
    fs::create_directory_symlink(outside / "snapshots", snapshots);
    ProcessResult r = p.run({"cache", "rm", "org/attn@v1"}, shared);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 11);
    CHECK(r.err.find(snapshots.string()) != std::string::npos);
    CHECK(fs::is_directory(outside / "snapshots" / p.commit));
    CHECK_FALSE(fs::is_empty(outside / "snapshots" / p.commit));
  }
}

// The same with the link swapped in after prune listed what to remove (no check before the
// command can see it): each removal opens its directory from the root anew.
TEST_CASE(
    "a cache directory swapped for a link between prune's listing and its removals is "
    "not followed",
    "[cache][safety]") {
  LockedProject p(1, 100);
  REQUIRE(p.download().exit_code == 0);
  const kernels::CacheLayout layout = p.layout();
  const fs::path outside = p.dir / "outside";
  fs::create_directories(outside);

  SECTION("the repo folder") {
    // Nothing is kept: the revision, its tree and refs, the folder and its blobs are listed.
    auto listed = kernels::cli::prune_cache(layout, {}, true);
    REQUIRE(listed.ok());
    REQUIRE_FALSE(listed->empty());
    const fs::path repo = layout.repo_dir("org/attn");
    fs::rename(repo, outside / "repo");
    fs::create_directory_symlink(outside / "repo", repo);
    auto applied = kernels::cli::remove_listed(layout, *listed, false);
    REQUIRE_FALSE(applied.ok());
    CHECK(applied.error().code == kernels::ErrorCode::unsafe);
    CHECK(applied.error().object == repo.string());
    CHECK_FALSE(fs::is_empty(outside / "repo" / "snapshots" / p.commit));
    CHECK_FALSE(fs::is_empty(outside / "repo" / "blobs"));
  }

  SECTION("blobs/") {
    const fs::path blobs = layout.blobs_dir("org/attn");
    write_file(blobs / "stray", "no snapshot uses it");
    const kernels::cli::LockedRevisions keep = {{"org/attn", p.commit}};
    auto listed = kernels::cli::prune_cache(layout, keep, true);
    REQUIRE(listed.ok());
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().path == (blobs / "stray").string());
    fs::rename(blobs, outside / "blobs");
    fs::create_directory_symlink(outside / "blobs", blobs);
    auto applied = kernels::cli::remove_listed(layout, *listed, false);
    REQUIRE_FALSE(applied.ok());
    CHECK(applied.error().code == kernels::ErrorCode::unsafe);
    CHECK(fs::exists(outside / "blobs" / "stray"));
  }
}

// What prune reports is what it removed: an entry another process removed since the listing is
// left out; the blobs of a repo folder removed whole are counted with their bytes.
TEST_CASE("prune reports only what it removed, with the bytes it freed", "[cache]") {
  LockedProject p(1, 100);
  REQUIRE(p.download().exit_code == 0);
  const kernels::CacheLayout layout = p.layout();
  const fs::path blobs = layout.blobs_dir("org/attn");
  std::uint64_t blob_bytes = 0;
  for (const auto& e : fs::directory_iterator(blobs)) blob_bytes += e.file_size();
  write_file(blobs / "stray", "12345");
  auto listed = kernels::cli::prune_cache(layout, {}, true);
  REQUIRE(listed.ok());
  fs::remove(blobs / "stray");  // by someone else, after the listing
  auto applied = kernels::cli::remove_listed(layout, *listed, false);
  REQUIRE(applied.ok());
  CHECK_FALSE(fs::exists(layout.repo_dir("org/attn")));
  std::uint64_t reported_blobs = 0;
  for (const auto& a : *applied) {
    INFO(a.path);
    CHECK(a.path != (blobs / "stray").string());
    if (a.what == "blob") reported_blobs += a.bytes;
  }
  CHECK(reported_blobs == blob_bytes);
  CHECK(applied->size() + 1 == listed->size());
}
