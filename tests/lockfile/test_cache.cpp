// The cache as huggingface_hub lays it out: root resolution, typed paths, refs, trees, snapshot
// links (relative symlinks or copies), and validation before any path join.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/lockfile.h"
#include "support.h"

using namespace kernels;
namespace fs = std::filesystem;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const std::string kRepo = "kernels-community/relu";
const std::string kCommit = "d649efb56fb249ac8f7a57fa1866728ad0c60e52";
const std::string kEtag = "95d09f2b10159347eece71399a7e2e907ea3df4f";  // git sha1 of "hello world"

}  // namespace

TEST_CASE("cache root precedence: KERNELS_CACHE, HF_HUB_CACHE, HF_HOME, XDG, HOME", "[cache]") {
  std::map<std::string, std::string> all = {{"KERNELS_CACHE", "/k"},
                                            {"HF_HUB_CACHE", "/hub"},
                                            {"HF_HOME", "/hf"},
                                            {"XDG_CACHE_HOME", "/xdg"},
                                            {"HOME", "/home/u"}};
  CHECK(resolve_cache_root(env_of(all)) == "/k");
  all.erase("KERNELS_CACHE");
  CHECK(resolve_cache_root(env_of(all)) == "/hub");
  all.erase("HF_HUB_CACHE");
  CHECK(resolve_cache_root(env_of(all)) == "/hf/hub");
  all.erase("HF_HOME");
  CHECK(resolve_cache_root(env_of(all)) == "/xdg/huggingface/hub");
  all.erase("XDG_CACHE_HOME");
  CHECK(resolve_cache_root(env_of(all)) == "/home/u/.cache/huggingface/hub");
  CHECK(resolve_cache_root(env_of({{"KERNELS_CACHE", ""}, {"HOME", "/h"}})) ==
        "/h/.cache/huggingface/hub");
  CHECK(resolve_cache_root(env_of({{"KERNELS_CACHE", "~/kc"}, {"HOME", "/home/u"}})) ==
        "/home/u/kc");
  CHECK(resolve_cache_root(env_of({{"HF_HOME", "~"}, {"HOME", "/home/u"}})) == "/home/u/hub");
}

TEST_CASE("cache paths expand $VAR and ${VAR} like os.path.expandvars", "[cache]") {
  CHECK(resolve_cache_root(env_of({{"HF_HOME", "$SCRATCH/hf"}, {"SCRATCH", "/scratch/u"}})) ==
        "/scratch/u/hf/hub");
  CHECK(resolve_cache_root(env_of({{"HF_HUB_CACHE", "${SCRATCH}x/hub"}, {"SCRATCH", "/s"}})) ==
        "/sx/hub");
  // Unset variables and a lone '$' stay as written, as Python leaves them.
  CHECK(resolve_cache_root(env_of({{"HF_HUB_CACHE", "/a/$NOPE/${NOPE}/$/b"}})) ==
        "/a/$NOPE/${NOPE}/$/b");
  CHECK(resolve_cache_root(env_of({{"XDG_CACHE_HOME", "~/$D"}, {"HOME", "/h"}, {"D", "c"}})) ==
        "/h/c/huggingface/hub");
}

TEST_CASE("resolve_lockfile_path: KERNELS_LOCKFILE, else <root>/kernels.lock", "[cache]") {
  CHECK(resolve_lockfile_path(env_of({{"KERNELS_LOCKFILE", "/srv/kernels.lock"},
                                      {"KERNELS_CACHE", "/k"}})) == "/srv/kernels.lock");
  CHECK(resolve_lockfile_path(env_of({{"KERNELS_CACHE", "/k"}})) == "/k/kernels.lock");
}

TEST_CASE("layout paths are exactly huggingface_hub's", "[cache]") {
  CacheLayout c("/c");
  CHECK(repo_folder_name(kRepo) == "kernels--kernels-community--relu");
  CHECK(c.lockfile_path() == "/c/kernels.lock");
  CHECK(c.repo_dir(kRepo) == "/c/kernels--kernels-community--relu");
  CHECK(c.blobs_dir(kRepo) == "/c/kernels--kernels-community--relu/blobs");
  CHECK(c.blob_path(kRepo, kEtag) == "/c/kernels--kernels-community--relu/blobs/" + kEtag);
  CHECK(c.snapshot_dir(kRepo, kCommit) ==
        "/c/kernels--kernels-community--relu/snapshots/" + kCommit);
  CHECK(c.snapshot_file(kRepo, kCommit, "build/torch-cuda/__init__.py") ==
        "/c/kernels--kernels-community--relu/snapshots/" + kCommit +
            "/build/torch-cuda/__init__.py");
  CHECK(c.ref_path(kRepo, "v1") == "/c/kernels--kernels-community--relu/refs/v1");
  CHECK(c.ref_path(kRepo, "refs/pr/1") == "/c/kernels--kernels-community--relu/refs/refs/pr/1");
  CHECK(c.tree_path(kRepo, kCommit) ==
        "/c/kernels--kernels-community--relu/trees/" + kCommit + ".json");
  CHECK(c.lock_path(kRepo, kEtag) ==
        "/c/.locks/kernels--kernels-community--relu/" + kEtag + ".lock");
  CHECK(c.snapshots_dir(kRepo) == "/c/kernels--kernels-community--relu/snapshots");
  CHECK(c.refs_dir(kRepo) == "/c/kernels--kernels-community--relu/refs");
  CHECK(c.trees_dir(kRepo) == "/c/kernels--kernels-community--relu/trees");
  CHECK(c.no_exist_path(kRepo, kCommit, "kernel-status.toml") ==
        "/c/kernels--kernels-community--relu/.no_exist/" + kCommit + "/kernel-status.toml");
}

TEST_CASE("path accessors accept any safe revision directory name, writers need a commit",
          "[cache]") {
  CacheLayout c("/c");
  // A cache listing walks snapshots/ and names whatever directories it finds.
  CHECK(c.snapshot_dir(kRepo, "0").parent_path() == c.snapshots_dir(kRepo));
  CHECK(c.tree_path(kRepo, "main") == c.trees_dir(kRepo) / "main.json");
  for (const char* bad : {"", ".", "..", "a/b", "../x", "a\\b"}) {
    INFO(bad);
    CHECK(c.snapshot_dir(kRepo, bad).string().rfind("/dev/null/", 0) == 0);
    CHECK(c.tree_path(kRepo, bad).string().rfind("/dev/null/", 0) == 0);
  }
  kernels::test::ScratchDir dir;
  CacheLayout real(dir.path());
  auto w = real.write_tree(kRepo, "main", {});
  REQUIRE_FALSE(w.ok());
  CHECK(w.error().code == ErrorCode::unsafe);
  CHECK_FALSE(real.link_snapshot_file(kRepo, "main", "a.txt", kEtag).ok());
}

TEST_CASE("invalid ids and traversal paths never reach a path join", "[cache]") {
  CacheLayout c("/c");
  for (const char* repo : {"../x", "a/../../b", "/etc", "a/b/c", "a--b/c", ""}) {
    INFO(repo);
    CHECK(c.repo_dir(repo).string().rfind("/dev/null/", 0) == 0);
    CHECK(c.snapshot_dir(repo, kCommit).string().rfind("/dev/null/", 0) == 0);
    auto r = CacheLayout::check_names(repo);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::unsafe);
  }
  for (const char* path : {"../../../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "a\\b"}) {
    INFO(path);
    CHECK(c.snapshot_file(kRepo, kCommit, path).string().rfind("/dev/null/", 0) == 0);
    CHECK_FALSE(CacheLayout::check_names(kRepo, kCommit, path).ok());
  }
  CHECK(c.snapshot_dir(kRepo, "../../x").string().rfind("/dev/null/", 0) == 0);
  CHECK(c.blob_path(kRepo, "../x").string().rfind("/dev/null/", 0) == 0);
  CHECK(c.ref_path(kRepo, "../x").string().rfind("/dev/null/", 0) == 0);
  kernels::test::ScratchDir dir;
  CacheLayout real(dir.path());
  auto w = real.link_snapshot_file(kRepo, kCommit, "../../../escape", kEtag);
  REQUIRE_FALSE(w.ok());
  CHECK(w.error().code == ErrorCode::unsafe);
  CHECK_FALSE(fs::exists(dir.path().parent_path() / "escape"));
  CHECK_FALSE(real.write_ref("../x", "main", kCommit).ok());
  CHECK_FALSE(real.write_ref(kRepo, "../../main", kCommit).ok());
}

TEST_CASE("refs are written without a trailing newline and read back stripped", "[cache]") {
  kernels::test::ScratchDir dir;
  CacheLayout c(dir.path());
  REQUIRE(c.write_ref(kRepo, "v1", kCommit).ok());
  CHECK(kernels::test::slurp(c.ref_path(kRepo, "v1")) == kCommit);
  CHECK(*c.read_ref(kRepo, "v1") == kCommit);
  kernels::test::spit(c.ref_path(kRepo, "main"), kCommit + "\n");  // as some writers do
  CHECK(*c.read_ref(kRepo, "main") == kCommit);
  REQUIRE(c.write_ref(kRepo, "refs/pr/1", kCommit).ok());
  CHECK(*c.read_ref(kRepo, "refs/pr/1") == kCommit);
  CHECK_FALSE(c.write_ref(kRepo, "v2", "not-a-commit").ok());
  kernels::test::spit(c.ref_path(kRepo, "bad"), "garbage");
  auto bad = c.read_ref(kRepo, "bad");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::lockfile_invalid);
  auto none = c.read_ref(kRepo, "v9");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::offline_not_cached);
}

TEST_CASE("trees/<commit>.json is written and read back", "[cache]") {
  kernels::test::ScratchDir dir;
  CacheLayout c(dir.path());
  const RepoTree tree = {{"build/torch-cuda/__init__.py", true, kEtag, 11, std::nullopt, {}}};
  REQUIRE(c.write_tree(kRepo, kCommit, tree).ok());
  auto back = c.read_tree(kRepo, kCommit);
  REQUIRE(back.ok());
  CHECK(*back == tree);
  CHECK(kernels::test::slurp(c.tree_path(kRepo, kCommit)) == serialize_tree_cache(tree));
  auto none = c.read_tree(kRepo, std::string(40, 'e'));
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::offline_not_cached);
}

TEST_CASE("snapshot links are relative with one ../ per directory level", "[cache]") {
  CHECK(snapshot_link_target("README.md", kEtag) == "../../blobs/" + kEtag);
  CHECK(snapshot_link_target("build/torch-cuda/__init__.py", kEtag) ==
        "../../../../blobs/" + kEtag);
  kernels::test::ScratchDir dir;
  CacheLayout c(dir.path(), [](std::string_view) { return std::nullopt; });
  kernels::test::spit(c.blob_path(kRepo, kEtag), "hello world");
  const std::string path = "build/torch-cuda/sub/x.py";
  REQUIRE(c.link_snapshot_file(kRepo, kCommit, path, kEtag).ok());
  const auto link = c.snapshot_file(kRepo, kCommit, path);
  REQUIRE(fs::is_symlink(link));
  CHECK(fs::read_symlink(link) == "../../../../../blobs/" + kEtag);
  CHECK(fs::equivalent(link, c.blob_path(kRepo, kEtag)));
  CHECK(kernels::test::slurp(link) == "hello world");
  CHECK(kernels::test::count_files_containing(link.parent_path(), ".incomplete") == 0);
}

TEST_CASE("an existing correct link is left alone (read-only snapshot works)", "[cache]") {
  kernels::test::ScratchDir dir;
  CacheLayout c(dir.path(), [](std::string_view) { return std::nullopt; });
  kernels::test::spit(c.blob_path(kRepo, kEtag), "hello world");
  REQUIRE(c.link_snapshot_file(kRepo, kCommit, "a.txt", kEtag).ok());
  const auto link = c.snapshot_file(kRepo, kCommit, "a.txt");
  struct stat before {};
  REQUIRE(::lstat(link.c_str(), &before) == 0);
  // Remove the blob: if the call tried to relink or copy, it would now fail.
  const auto snap = c.snapshot_dir(kRepo, kCommit);
  fs::permissions(snap, fs::perms::owner_read | fs::perms::owner_exec);
  REQUIRE(c.link_snapshot_file(kRepo, kCommit, "a.txt", kEtag).ok());
  fs::permissions(snap, fs::perms::owner_all);
  struct stat after {};
  REQUIRE(::lstat(link.c_str(), &after) == 0);
  CHECK(before.st_ino == after.st_ino);
}

TEST_CASE("a stale link is replaced atomically", "[cache]") {
  kernels::test::ScratchDir dir;
  CacheLayout c(dir.path(), [](std::string_view) { return std::nullopt; });
  kernels::test::spit(c.blob_path(kRepo, kEtag), "hello world");
  const auto link = c.snapshot_file(kRepo, kCommit, "a.txt");
  fs::create_directories(link.parent_path());
  fs::create_symlink("../../blobs/elsewhere", link);
  REQUIRE(c.link_snapshot_file(kRepo, kCommit, "a.txt", kEtag).ok());
  CHECK(fs::read_symlink(link) == "../../blobs/" + kEtag);
}

TEST_CASE("copy mode (HF_HUB_DISABLE_SYMLINKS=1) writes verified regular files", "[cache]") {
  kernels::test::ScratchDir dir;
  CacheLayout c(dir.path(), env_of({{"HF_HUB_DISABLE_SYMLINKS", "1"}}));
  CHECK_FALSE(symlinks_supported(dir.path(), env_of({{"HF_HUB_DISABLE_SYMLINKS", "true"}})));
  CHECK(symlinks_supported(dir.path(), env_of({})));
  kernels::test::spit(c.blob_path(kRepo, kEtag), "hello world");
  REQUIRE(c.link_snapshot_file(kRepo, kCommit, "build/torch-cuda/x.py", kEtag).ok());
  const auto file = c.snapshot_file(kRepo, kCommit, "build/torch-cuda/x.py");
  CHECK(fs::is_regular_file(fs::symlink_status(file)));
  CHECK(kernels::test::slurp(file) == "hello world");
  kernels::test::spit(file, "tampered");  // a wrong copy is replaced
  REQUIRE(c.link_snapshot_file(kRepo, kCommit, "build/torch-cuda/x.py", kEtag).ok());
  CHECK(kernels::test::slurp(file) == "hello world");
}

TEST_CASE("linking a blob that is not in the cache is an io error", "[cache]") {
  kernels::test::ScratchDir dir;
  CacheLayout c(dir.path(), [](std::string_view) { return std::nullopt; });
  auto r = c.link_snapshot_file(kRepo, kCommit, "a.txt", kEtag);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::io);
  CHECK(r.error().what == "blob is not in the cache");
}

TEST_CASE("list_repos decodes kernels--org--name folders", "[cache]") {
  kernels::test::ScratchDir dir;
  CacheLayout c(dir.path());
  fs::create_directories(dir / "kernels--kernels-community--relu");
  fs::create_directories(dir / "kernels--org--name");
  fs::create_directories(dir / "models--org--model");
  fs::create_directories(dir / ".locks");
  fs::create_directories(dir / "kernels--broken");
  CHECK(c.list_repos() == std::vector<std::string>{"kernels-community/relu", "org/name"});
}
