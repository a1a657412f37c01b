// Many processes downloading into one cache at once, with working locks and with locks that do
// nothing (NFS/Lustre); a held blob lock times out with exit 10; a read-only cache serves every
// read-only command.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <thread>

#include "project_fixture.h"
#include "support/skip.h"

using namespace kernels::test;

namespace {

void race(const LockedProject& p, int processes,
          const std::map<std::string, std::optional<std::string>>& env) {
  std::vector<ProcessResult> results(static_cast<std::size_t>(processes));
  std::vector<std::thread> threads;
  for (int i = 0; i < processes; ++i) {
    threads.emplace_back(
        [&, i] { results[static_cast<std::size_t>(i)] = p.download({"--all-variants"}, env); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    INFO(r.err);
    CHECK(r.exit_code == 0);
  }
  ProcessResult v = p.run({"verify", p.project.string()});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
  std::size_t temps = 0;
  for (const auto& e : fs::directory_iterator(p.layout().blobs_dir("org/attn"))) {
    if (e.path().extension() == ".incomplete") ++temps;
  }
  CHECK(temps == 0);
}

}  // namespace

TEST_CASE("6 kernels download processes racing on one cache all succeed and the cache verifies",
          "[concurrency]") {
  LockedProject p(30, 20000);
  race(p, 6, {});
}

TEST_CASE("the race stays correct when flock is a no-op (KERNELS_DISABLE_FLOCK=1)",
          "[concurrency]") {
  LockedProject p(30, 20000);
  race(p, 6, {{"KERNELS_DISABLE_FLOCK", "1"}});
}

TEST_CASE("a blob lock held by another process times out with exit 10 naming the lock file",
          "[concurrency][lock]") {
  LockedProject p(2, 100);
  kernels::TreeEntry e = p.entry_of("cubin-cu130-sm80", true);
  fs::path lock = p.layout().lock_path("org/attn", e.digest().hex);
  fs::create_directories(lock.parent_path());
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0664);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  ProcessResult r = p.download({"--all-variants"}, {{"KERNELS_LOCK_TIMEOUT", "1"}});
  ::close(fd);
  CHECK(r.exit_code == 10);
  CHECK(r.err.find(lock.string()) != std::string::npos);
  CHECK(r.err.find("KERNELS_LOCK_TIMEOUT") != std::string::npos);
  CHECK(r.seconds < 10);
  // With the holder gone, the same command completes.
  CHECK(p.download().exit_code == 0);
}

// Regressions (issue 15): waiting for another process's lock printed nothing for up to 600 s,
// and the timeout said "2.0000 s".
TEST_CASE(
    "waiting for a lock another process holds says so once, naming the holder, and -q silences it",
    "[concurrency][lock]") {
  LockedProject p(2, 100);
  std::vector<int> held;
  for (const char* variant : {"cubin-cu130-sm80", "cubin-cu130-sm90a"}) {
    fs::path lock = p.layout().lock_path("org/attn", p.entry_of(variant, true).digest().hex);
    fs::create_directories(lock.parent_path());
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0664);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX) == 0);
    const std::string pid = std::to_string(::getpid()) + "\n";  // as the CLI records its own
    REQUIRE(::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size()));
    held.push_back(fd);
  }
  ProcessResult r = p.download({"--all-variants"}, {{"KERNELS_LOCK_TIMEOUT", "1"}});
  INFO(r.err);
  CHECK(r.exit_code == 10);
  const std::string blocking = "Blocking: waiting for the cache lock held by process " +
                               std::to_string(::getpid());
  const auto first = r.err.find(blocking);
  CHECK(first != std::string::npos);
  CHECK(r.err.find("Blocking:", first + 1) == std::string::npos);  // once, though two locks wait
  CHECK(r.err.find("at most 1 s (KERNELS_LOCK_TIMEOUT)") != std::string::npos);
  CHECK(r.err.find("for longer than 1 s") != std::string::npos);
  CHECK(r.err.find("1.0000") == std::string::npos);

  ProcessResult quiet = p.download({"--all-variants", "-q"}, {{"KERNELS_LOCK_TIMEOUT", "0.5"}});
  INFO(quiet.err);
  CHECK(quiet.exit_code == 10);
  CHECK(quiet.err.find("Blocking") == std::string::npos);
  CHECK(quiet.err.find("for longer than 0.5 s") != std::string::npos);
  for (int fd : held) ::close(fd);
  CHECK(p.download().exit_code == 0);
}

TEST_CASE(
    "a read-only cache serves download (warm), verify, cache ls/show/verify, variant and lock "
    "--offline",
    "[concurrency][readonly]") {
  LockedProject p(3, 500);
  REQUIRE(p.download().exit_code == 0);
  // Root ignores permission bits, so the check runs as an unprivileged user (nobody).
  if (::geteuid() == 0 && ::access("/usr/bin/setpriv", X_OK) != 0) {
    KERNELS_SKIP("running as root and setpriv is not installed: cannot test a read-only cache");
  }
  // nobody must reach the binary: every parent directory needs o+x.
  for (fs::path dir = fs::path(kernels_binary()).parent_path(); dir != dir.root_path();
       dir = dir.parent_path()) {
    if ((fs::status(dir).permissions() & fs::perms::others_exec) == fs::perms::none) {
      KERNELS_SKIP("the kernels binary is not reachable by an unprivileged user (" + dir.string() +
                   " lacks o+x): cannot test a read-only cache");
    }
  }
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(p.cache);
       it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_symlink()) {
      fs::permissions(it->path(),
                      fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                      fs::perm_options::remove, ec);
    }
  }
  fs::permissions(p.cache,
                  fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove, ec);
  std::vector<std::string> prefix;
  if (::geteuid() == 0) prefix = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  auto as_nobody = [&](std::vector<std::string> args) {
    ProcessSpec spec;
    spec.prefix = prefix;
    spec.argv = {kernels_binary()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {{"KERNELS_CACHE", p.cache.string()},
                {"HF_ENDPOINT", "http://127.0.0.1:9/unreachable"},
                {"HF_HOME", "/nonexistent-hf-home"},
                {"HF_HUB_OFFLINE", std::nullopt},
                {"KERNELS_DRIVER_LIBRARY", "libcuda-absent-in-tests.so.1"}};
    return run_process(spec);
  };
  // The project dir is only read.
  for (auto& args :
       std::vector<std::vector<std::string>>{{"download", "--all-variants", p.project.string()},
                                             {"verify", p.project.string()},
                                             {"cache", "ls"},
                                             {"cache", "show", "org/attn"},
                                             {"cache", "verify"},
                                             {"variant", p.project.string()},
                                             {"--offline", "lock", "--locked",
                                              p.project.string()}}) {
    ProcessResult r = as_nobody(args);
    INFO(args[0] << " " << args[1] << ": " << r.out << r.err);
    CHECK(r.exit_code == 0);
  }
  // And writing is refused cleanly, not with a crash.
  ProcessResult rm = as_nobody({"cache", "rm", "org/attn"});
  CHECK(rm.exit_code == 13);
}

// Regression (issue 12, defect 2): download held one lock file per distinct blob at once, so a
// repo with more files than `ulimit -n` failed every file with "Too many open files".
TEST_CASE("download of more blobs than `ulimit -n` allows succeeds (bounded open blob locks)",
          "[concurrency][lock]") {
  LockedProject p(250, 200);  // 750 distinct blobs
  ProcessResult r = run_kernels({"download", "--all-variants", p.project.string()}, p.cache,
                                p.endpoint, {}, {"prlimit", "--nofile=200:200"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  ProcessResult v = p.run({"verify", p.project.string()});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
}

// Regression (issue 12, defect 9): inf or 1e308 overflowed the float-to-integer conversion
// (undefined behaviour; "held ... for longer than -92233 s"); nan, -1 and abc were ignored.
TEST_CASE("KERNELS_LOCK_TIMEOUT that is not a number of seconds is a usage error naming it",
          "[concurrency][lock]") {
  LockedProject p(1, 100);
  for (const char* bad : {"inf", "1e308", "nan", "-1", "abc", "10s", "-inf"}) {
    ProcessResult r = p.download({"--all-variants"}, {{"KERNELS_LOCK_TIMEOUT", bad}});
    INFO(bad << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("KERNELS_LOCK_TIMEOUT") != std::string::npos);
  }
  ProcessResult good = p.download({"--all-variants"}, {{"KERNELS_LOCK_TIMEOUT", "0.5"}});
  INFO(good.err);
  CHECK(good.exit_code == 0);
}
