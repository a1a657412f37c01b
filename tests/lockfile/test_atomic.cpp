// write_atomic / publish_file: never a half-written file under its final name.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "kernels/lockfile/atomic.h"
#include "kernels/lockfile/lockfile.h"
#include "support.h"

using namespace kernels;
namespace fs = std::filesystem;

TEST_CASE("write_atomic creates and replaces a file, leaving no temp file", "[atomic]") {
  kernels::test::ScratchDir dir;
  const auto p = dir / "kernels.lock";
  REQUIRE(write_atomic(p, "first").ok());
  CHECK(kernels::test::slurp(p) == "first");
  REQUIRE(write_atomic(p, "second, longer").ok());
  CHECK(kernels::test::slurp(p) == "second, longer");
  REQUIRE(write_atomic(p, "").ok());
  CHECK(fs::file_size(p) == 0);
  CHECK(kernels::test::count_files_containing(dir.path(), ".incomplete") == 0);
}

TEST_CASE("write_atomic applies the mode through the umask", "[atomic]") {
  kernels::test::ScratchDir dir;
  const mode_t old = ::umask(022);
  REQUIRE(write_atomic(dir / "a", "x", 0666).ok());
  REQUIRE(write_atomic(dir / "b", "x", 0600).ok());
  ::umask(old);
  struct stat a {
  }, b{};
  REQUIRE(::stat((dir / "a").c_str(), &a) == 0);
  REQUIRE(::stat((dir / "b").c_str(), &b) == 0);
  CHECK((a.st_mode & 0777) == 0644);
  CHECK((b.st_mode & 0777) == 0600);
}

TEST_CASE("a path that is a directory fails cleanly: no temp file left behind", "[atomic]") {
  kernels::test::ScratchDir dir;
  fs::create_directories(dir / "kernels.lock" / "inside");
  auto r = write_atomic(dir / "kernels.lock", "data");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::io);
  CHECK(r.error().object == (dir / "kernels.lock").string());
  CHECK(fs::is_directory(dir / "kernels.lock" / "inside"));
  CHECK(kernels::test::count_files_containing(dir.path(), ".incomplete") == 0);
}

TEST_CASE("a missing directory fails with an io error naming the temp file", "[atomic]") {
  kernels::test::ScratchDir dir;
  auto r = write_atomic(dir / "no" / "such" / "kernels.lock", "data");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::io);
  CHECK(r.error().what.find("cannot create temp file") == 0);
}

TEST_CASE("a read-only directory keeps the old lockfile intact", "[atomic]") {
  // The write runs in a child process: as root it first drops to uid/gid 65534 (nobody), for whom
  // a root-owned 0755 directory is read-only; otherwise the directory is made 0555.
  kernels::test::ScratchDir dir;
  const auto p = dir / "kernels.lock";
  REQUIRE(write_atomic(p, "old").ok());
  const bool root = ::geteuid() == 0;
  fs::permissions(dir.path(), root ? fs::perms(0755) : fs::perms(0555));
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (root && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    auto r = write_lockfile(p, Lockfile{});
    if (r.ok()) ::_exit(0);
    ::_exit(r.error().code == ErrorCode::io && r.error().hint.find("writable") != std::string::npos
                ? 42
                : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  fs::permissions(dir.path(), fs::perms::owner_all);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);  // 0: the write succeeded; 1: wrong error; 3: setuid failed
  CHECK(kernels::test::slurp(p) == "old");
  CHECK(kernels::test::count_files_containing(dir.path(), ".incomplete") == 0);
}

TEST_CASE("a write that fails midway (file size limit) keeps the old file and no temp",
          "[atomic]") {
  // RLIMIT_FSIZE makes write(2) fail with EFBIG even for root; done in a child process so the
  // limit does not leak into the test runner.
  kernels::test::ScratchDir dir;
  const auto p = dir / "kernels.lock";
  REQUIRE(write_atomic(p, "old contents").ok());
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim {
      4096, 4096
    };
    ::setrlimit(RLIMIT_FSIZE, &lim);
    auto r = write_atomic(p, std::string(1 << 20, 'x'));
    ::_exit(r.ok() ? 0 : (r.error().what.find("write failed") == 0 ? 42 : 1));
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);
  CHECK(kernels::test::slurp(p) == "old contents");
  CHECK(kernels::test::count_files_containing(dir.path(), ".incomplete") == 0);
}

TEST_CASE("unique_temp_path sits next to the final path and differs each call", "[atomic]") {
  const fs::path final_path = "/c/blobs/abc";
  const auto a = unique_temp_path(final_path);
  const auto b = unique_temp_path(final_path);
  CHECK(a.parent_path() == final_path.parent_path());
  CHECK(a.filename().string().rfind("abc.", 0) == 0);
  CHECK(a.filename().string().size() == std::string("abc.12345678.incomplete").size());
  CHECK(a.extension() == ".incomplete");
  CHECK(a != b);
}

TEST_CASE("publish_file renames a finished temp file into place", "[atomic]") {
  kernels::test::ScratchDir dir;
  const auto final_path = dir / "blob";
  const auto temp = unique_temp_path(final_path);
  kernels::test::spit(temp, "content");
  REQUIRE(publish_file(temp, final_path).ok());
  CHECK(kernels::test::slurp(final_path) == "content");
  CHECK_FALSE(fs::exists(temp));
  auto missing = publish_file(dir / "nope.incomplete", final_path);
  REQUIRE_FALSE(missing.ok());
  CHECK(kernels::test::slurp(final_path) == "content");
  CHECK(fsync_directory(dir.path()).ok());
  CHECK_FALSE(fsync_directory(dir / "none").ok());
}
