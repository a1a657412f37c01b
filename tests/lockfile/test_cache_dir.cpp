// Every write inside the cache goes through directories opened from the root without following
// links (cache_dir.h): a symlink planted at any level is refused (ErrorCode::unsafe) and nothing
// is created where it points; a directory swapped for a link after it was opened is not
// followed either (the open descriptor keeps pointing at the real one). Issue 12.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "kernels/lockfile/cache.h"
#include "kernels/lockfile/cache_dir.h"
#include "kernels/lockfile/digest.h"
#include "support.h"

using namespace kernels;
namespace fs = std::filesystem;

namespace {

const std::string kRepo = "org/attn";
const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kPath = "build/cubin-cu130-sm80/manifest.json";

std::size_t entries_under(const fs::path& dir) {
  std::size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    ++n;
  }
  return n;
}

// A cache holding one blob, with the directory at `level` (relative to the root) replaced by a
// symlink to `outside`, which holds the same subtree, so following the link would succeed.
struct PlantedCache {
  test::ScratchDir dir;
  fs::path root = dir / "cache";
  fs::path outside = dir / "outside";
  std::string etag;
  CacheLayout layout{root, [](std::string_view) -> std::optional<std::string> { return {}; }};

  explicit PlantedCache(const fs::path& level) {
    const std::string content = "{}";
    GitBlobSha1 sha(content.size());
    sha.update(content);
    etag = *sha.finish_hex();
    fs::create_directories(layout.blobs_dir(kRepo));
    std::ofstream(layout.blob_path(kRepo, etag)) << content;
    fs::create_directories(layout.snapshot_file(kRepo, kCommit, kPath).parent_path());
    fs::create_directories(layout.refs_dir(kRepo));
    fs::create_directories(layout.trees_dir(kRepo));
    const fs::path planted = root / level;
    fs::create_directories(outside);
    fs::rename(planted, outside / "moved");
    fs::create_directory_symlink(outside / "moved", planted);
  }
};

}  // namespace

TEST_CASE("a symlink planted at any level of a snapshot path is refused, nothing made outside",
          "[cache][safety]") {
  const std::vector<std::string> levels = {"kernels--org--attn", "kernels--org--attn/snapshots",
                                           "kernels--org--attn/snapshots/" + kCommit,
                                           "kernels--org--attn/snapshots/" + kCommit + "/build",
                                           "kernels--org--attn/snapshots/" + kCommit +
                                               "/build/cubin-cu130-sm80"};
  for (const auto& level : levels) {
    INFO(level);
    PlantedCache c(level);
    const std::size_t before = entries_under(c.outside);
    auto r = c.layout.link_snapshot_file(kRepo, kCommit, kPath, c.etag);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::unsafe);
    CHECK(r.error().object == (c.root / level).string());
    CHECK_THAT(r.error().what, Catch::Contains("symbolic link"));
    CHECK(entries_under(c.outside) == before);
  }
}

TEST_CASE("a symlink planted at refs/ or trees/ is refused, nothing written outside",
          "[cache][safety]") {
  {
    PlantedCache c("kernels--org--attn/refs");
    auto r = c.layout.write_ref(kRepo, "v1", kCommit);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::unsafe);
    CHECK(fs::is_empty(c.outside / "moved"));
  }
  {
    PlantedCache c("kernels--org--attn/trees");
    auto r = c.layout.write_tree(kRepo, kCommit, RepoTree{});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::unsafe);
    CHECK(fs::is_empty(c.outside / "moved"));
  }
}

TEST_CASE("CacheDir: a directory swapped for a link after it was opened is not followed",
          "[cache][safety]") {
  test::ScratchDir dir;
  const fs::path root = dir / "cache";
  fs::create_directories(root / "a" / "b");
  auto opened = CacheDir::open(root, "a/b", false);
  REQUIRE(opened.ok());
  // Between the check and the use: a/ becomes a link to a look-alike tree elsewhere.
  fs::rename(root / "a", dir / "a.real");
  fs::create_directories(dir / "outside" / "b");
  fs::create_directory_symlink(dir / "outside", root / "a");
  REQUIRE(opened->write_atomic("f", "data").ok());
  REQUIRE(opened->replace_symlink("l", "target").ok());
  CHECK(fs::is_regular_file(dir / "a.real" / "b" / "f"));
  CHECK(fs::is_symlink(dir / "a.real" / "b" / "l"));
  CHECK(fs::is_empty(dir / "outside" / "b"));
  // A new walk refuses the link.
  auto again = CacheDir::open(root, "a/b", false);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == ErrorCode::unsafe);
}

TEST_CASE("CacheDir: creates missing directories, refuses files and links in the way",
          "[cache][safety]") {
  test::ScratchDir dir;
  const fs::path root = dir / "cache";
  auto made = CacheDir::open(root, "x/y/z", true);
  REQUIRE(made.ok());
  CHECK(fs::is_directory(root / "x" / "y" / "z"));
  CHECK(made->path() == root / "x" / "y" / "z");
  const int fd = made->open_file("f", O_WRONLY | O_CREAT);
  REQUIRE(fd >= 0);
  ::close(fd);
  fs::create_symlink(dir / "victim", root / "x" / "y" / "z" / "link");
  CHECK(made->open_file("link", O_WRONLY | O_CREAT) < 0);  // O_NOFOLLOW at the last component
  CHECK_FALSE(fs::exists(dir / "victim"));
  std::ofstream(root / "file") << "x";
  auto through_file = CacheDir::open(root, "file/sub", true);
  REQUIRE_FALSE(through_file.ok());
  CHECK(through_file.error().code == ErrorCode::unsafe);
  CHECK_THAT(through_file.error().what, Catch::Contains("not a directory"));
  auto outside = CacheDir::open_below(root, dir / "elsewhere", true);
  REQUIRE_FALSE(outside.ok());
  CHECK_FALSE(fs::exists(dir / "elsewhere"));
  // The root itself may be a link the user made.
  fs::create_directory_symlink(root, dir / "root-link");
  CHECK(CacheDir::open(dir / "root-link", "x/y", false).ok());
}

TEST_CASE("CacheDir: subdir walks from an open directory, refusing links in the way",
          "[cache][safety]") {
  test::ScratchDir dir;
  const fs::path root = dir / "cache";
  auto top = CacheDir::open(root, "a", true);
  REQUIRE(top.ok());
  auto made = top->subdir("b/c", true);
  REQUIRE(made.ok());
  CHECK(made->path() == root / "a" / "b" / "c");
  CHECK(fs::is_directory(root / "a" / "b" / "c"));
  // a/ swapped for a link after it was opened: the walk continues in the real one.
  fs::rename(root / "a", dir / "a.real");
  fs::create_directories(dir / "outside");
  fs::create_directory_symlink(dir / "outside", root / "a");
  auto again = top->subdir("b/d", true);
  REQUIRE(again.ok());
  CHECK(fs::is_directory(dir / "a.real" / "b" / "d"));
  CHECK(fs::is_empty(dir / "outside"));
  fs::create_directory_symlink(dir / "outside", dir / "a.real" / "b" / "link");
  auto through_link = top->subdir("b/link/x", true);
  REQUIRE_FALSE(through_link.ok());
  CHECK(through_link.error().code == ErrorCode::unsafe);
  CHECK(fs::is_empty(dir / "outside"));
}

TEST_CASE("CacheDir: remove_all removes a tree by fds and never follows a link inside it",
          "[cache][safety]") {
  test::ScratchDir dir;
  const fs::path root = dir / "cache";
  fs::create_directories(root / "t" / "d" / "e");
  std::ofstream(root / "t" / "f") << "x";
  std::ofstream(root / "t" / "d" / "e" / "g") << "y";
  fs::create_directories(dir / "outside" / "sub");
  std::ofstream(dir / "outside" / "victim") << "keep";
  fs::create_directory_symlink(dir / "outside", root / "t" / "d" / "link");
  fs::create_symlink(dir / "outside" / "victim", root / "t" / "file-link");
  REQUIRE(::mkfifo((root / "t" / "fifo").c_str(), 0644) == 0);
  auto top = CacheDir::open(root, {}, false);
  REQUIRE(top.ok());
  REQUIRE(top->remove_all("t").ok());
  CHECK_FALSE(fs::exists(fs::symlink_status(root / "t")));
  CHECK(entries_under(dir / "outside") == 2);  // victim and sub/ untouched
  CHECK(top->remove_all("missing").ok());
  // A link at the name itself goes, its target stays.
  fs::create_directory_symlink(dir / "outside", root / "l");
  REQUIRE(top->remove_all("l").ok());
  CHECK_FALSE(fs::exists(fs::symlink_status(root / "l")));
  CHECK(entries_under(dir / "outside") == 2);
}

TEST_CASE("CacheDir: publish_from renames between two open directories, refusing a FIFO",
          "[cache][safety]") {
  test::ScratchDir dir;
  const fs::path root = dir / "cache";
  auto from = CacheDir::open(root, "staging", true);
  auto to = CacheDir::open(root, "blobs", true);
  REQUIRE(from.ok());
  REQUIRE(to.ok());
  REQUIRE(from->write_atomic("t", "bytes").ok());
  REQUIRE(to->publish_from(*from, "t", "final").ok());
  CHECK_FALSE(fs::exists(root / "staging" / "t"));
  std::ifstream in(root / "blobs" / "final");
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "bytes");
  REQUIRE(::mkfifo((root / "staging" / "p").c_str(), 0644) == 0);
  auto fifo = to->publish_from(*from, "p", "other");  // would block in open() without O_NONBLOCK
  REQUIRE_FALSE(fifo.ok());
  CHECK(fifo.error().code == ErrorCode::unsafe);
  CHECK_FALSE(fs::exists(root / "blobs" / "other"));
}
