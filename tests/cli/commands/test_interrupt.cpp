// Ctrl-C (SIGINT) and SIGTERM during a real download from the fake Hub: the transfers stop, the
// process keeps what it received as resumable blobs/<etag>.incomplete files, exits 128 + the
// signal, and a rerun asks only for the rest (Range + If-Range); `cache prune` removes such files
// once no process holds their blob lock.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "kernels/lockfile/cache.h"
#include "project_fixture.h"

#ifdef KERNELS_HAVE_FAKE_HUB
#include "fake_hub.h"

using namespace kernels::test;
using kernels::testing::FakeFile;
using kernels::testing::FakeHub;
using kernels::testing::Fault;

namespace {

struct Spawned {
  pid_t pid = -1;
  fs::path err;
};

// The binary in the background, stderr to a file and stdout to the same name + ".out", with the
// harness's environment.
Spawned spawn_kernels(const std::vector<std::string>& args, const fs::path& cache,
                      const std::string& endpoint, const fs::path& err) {
  Spawned s{-1, err};
  s.pid = ::fork();
  if (s.pid == 0) {
    int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    int out = ::open((err.string() + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::setenv("KERNELS_CACHE", cache.c_str(), 1);
    ::setenv("HF_ENDPOINT", endpoint.c_str(), 1);
    ::setenv("HF_HOME", (cache.parent_path() / "hf-home").c_str(), 1);
    ::setenv("KERNELS_DRIVER_LIBRARY", "libcuda-absent-in-tests.so.1", 1);
    for (const char* name : {"HF_HUB_OFFLINE", "HF_TOKEN", "HF_HUB_CACHE", "KERNELS_JOBS",
                             "KERNELS_RETRIES", "KERNELS_LOCK_TIMEOUT", "KERNELS_DISABLE_FLOCK"}) {
      ::unsetenv(name);
    }
    std::vector<std::string> argv = {kernels_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    ::execv(raw[0], raw.data());
    ::_exit(127);
  }
  return s;
}

// Exit status; 256 + the signal when a signal killed it (a default handler, not our exit), or -1
// if it did not end within `limit`.
int wait_for(pid_t pid, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 256 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

std::vector<fs::path> files_named(const fs::path& root, const std::string& suffix) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(it->path());
    }
  }
  return out;
}

// blobs/<etag>.incomplete (one dot): an interrupted download's resumable bytes; the other
// *.incomplete names (<etag>.<8 hex>.incomplete) are one process's temp files.
bool resumable_name(const fs::path& p) {
  const std::string name = p.filename().string();
  return std::count(name.begin(), name.end(), '.') == 1;
}

// A project locked against a fake Hub whose one variant (4 files of 300 kB) stalls after 50 kB of
// each file, for 10 s, once: a download of it is mid-transfer for a while.
struct StallingProject {
  FakeHub hub;
  TempDir dir{"kernels-interrupt"};
  std::vector<FakeFile> files;
  std::string commit;
  fs::path project = dir / "project";
  fs::path cache_root = dir / "cache";
  kernels::CacheLayout cache{cache_root};

  StallingProject() {
    for (int i = 0; i < 4; ++i) {
      files.push_back({"build/cubin-cu130-sm90a/part" + std::to_string(i) + ".cubin",
                       std::string(300000, static_cast<char>('a' + i)), false});
    }
    hub.add_repo("org/attn").branch("v1", files);
    commit = hub.repo("org/attn").commit("v1");
    write_file(project / "pyproject.toml", "[tool.kernels.dependencies]\n\"org/attn\" = 1\n");
    ProcessResult lock = run_kernels({"lock", project.string()}, cache_root, hub.endpoint());
    if (lock.exit_code != 0) throw std::runtime_error("lock failed: " + lock.err);
    for (const auto& f : files) {
      hub.fault(FakeHub::resolve_path("org/attn", commit, f.path),
                Fault::stalled(50000, std::chrono::seconds(10)));
    }
  }

  // Starts `download` (after `global` options), waits until bytes are on disk, sends `signal`;
  // the exit status, or -1.
  int interrupted_download(int signal, std::string& err, double& seconds,
                           const std::vector<std::string>& global = {}) {
    std::vector<std::string> args = global;
    args.insert(args.end(), {"download", "--all-variants", project.string()});
    Spawned run = spawn_kernels(args, cache_root, hub.endpoint(), dir / "stderr.txt");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    bool partial = false;
    while (!partial && std::chrono::steady_clock::now() < deadline) {
      for (const fs::path& temp : files_named(cache.blobs_dir("org/attn"), ".incomplete")) {
        std::error_code ec;
        if (fs::file_size(temp, ec) > 0 && !ec) partial = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!partial) return -1;
    // Every transfer has its first bytes (each file sends 50 kB at once, then stalls).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto sent = std::chrono::steady_clock::now();
    ::kill(run.pid, signal);
    const int code = wait_for(run.pid, std::chrono::seconds(10));
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
    err = read_file(run.err);
    return code;
  }
};

}  // namespace

TEST_CASE(
    "SIGINT or SIGTERM during download: exit 130/143, partial files kept and resumed by the rerun",
    "[download][interrupt][fakehub]") {
  for (int signal : {SIGINT, SIGTERM}) {
    INFO("signal " << signal);
    StallingProject s;
    std::string err;
    double seconds = 0;
    const int code = s.interrupted_download(signal, err, seconds);
    INFO(err);
    CHECK(code == 128 + signal);
    CHECK(seconds < 3);  // not the 10 s the server stalls for
    CHECK(err.find(signal == SIGINT ? "interrupted (SIGINT)" : "interrupted (SIGTERM)") !=
          std::string::npos);
    CHECK(err.find("error:") == std::string::npos);  // stopping is not reported as failures
    // What arrived is kept under the resumable name only; nothing half-written became visible.
    std::vector<fs::path> left = files_named(s.cache_root, ".incomplete");
    CHECK(left.size() == s.files.size());
    std::uint64_t kept = 0;
    for (const fs::path& f : left) {
      INFO(f);
      CHECK(resumable_name(f));
      kept += fs::file_size(f);
    }
    CHECK(kept >= 50000 * s.files.size());
    for (const fs::path& f : files_named(s.cache.blobs_dir("org/attn"), ""))
      CHECK(f.extension() == ".incomplete");
    CHECK_FALSE(fs::exists(s.cache.snapshot_dir("org/attn", s.commit)));

    // After SIGTERM, one kept file is damaged (as a power loss could leave it): its resumed
    // transfer fails the whole file's digest, and that file alone is fetched again from zero.
    const bool damage = signal == SIGTERM;
    if (damage) {
      const int fd = ::open(left.front().c_str(), O_WRONLY);
      REQUIRE(fd >= 0);
      REQUIRE(::pwrite(fd, "damaged!", 8, 100) == 8);
      ::close(fd);
    }
    s.hub.reset_counts();
    ProcessResult again = run_kernels({"download", "--all-variants", s.project.string()},
                                      s.cache_root, s.hub.endpoint());
    INFO(again.err);
    CHECK(again.exit_code == 0);
    CHECK(again.err.find("Resuming 4 partial downloads") != std::string::npos);
    // Each file was asked for from where the kept bytes end, on the condition that it is still
    // the same file; the damaged one once more, whole.
    std::size_t resumed = 0, whole = 0;
    for (const auto& r : s.hub.requests()) {
      if (r.method != "GET" || r.path.find("/resolve/") == std::string::npos) continue;
      INFO(r.path << " Range: " << r.range << " If-Range: " << r.if_range);
      if (r.range.empty()) {
        ++whole;
        continue;
      }
      CHECK(r.range.rfind("bytes=", 0) == 0);
      CHECK(r.range != "bytes=0-");
      CHECK_FALSE(r.if_range.empty());
      ++resumed;
    }
    CHECK(resumed == s.files.size());
    CHECK(whole == (damage ? 1u : 0u));
    CHECK(files_named(s.cache_root, ".incomplete").empty());
    CHECK(run_kernels({"verify", s.project.string()}, s.cache_root, s.hub.endpoint()).exit_code ==
          0);
  }
}

TEST_CASE("cache prune removes an interrupted download's partial files unless their lock is held",
          "[cache][interrupt][fakehub]") {
  StallingProject s;
  std::string err;
  double seconds = 0;
  const int code = s.interrupted_download(SIGINT, err, seconds, {"--json"});
  INFO(err);
  REQUIRE(code == 130);
  // With --json, the one document says so too.
  const std::string out = read_file(s.dir / "stderr.txt.out");
  INFO(out);
  nlohmann::json doc;
  REQUIRE_NOTHROW(doc = nlohmann::json::parse(out));
  CHECK(doc["ok"] == false);
  CHECK(doc["error"]["code"] == "interrupted");
  CHECK(doc["error"]["exit"] == 130);
  std::vector<fs::path> left = files_named(s.cache_root, ".incomplete");
  REQUIRE(left.size() == s.files.size());
  // Another process (a download resuming it) holds the first one's blob lock.
  const std::string etag = left.front().stem().string();
  const fs::path lock = s.cache.lock_path("org/attn", etag);
  const int fd = ::open(lock.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  ProcessResult pruned = run_kernels({"cache", "prune", "--lockfile",
                                      (s.project / "kernels.lock").string()},
                                     s.cache_root, s.hub.endpoint());
  ::close(fd);
  INFO(pruned.out << pruned.err);
  REQUIRE(pruned.exit_code == 0);
  // Minutes old, not an hour: the lock tells.
  CHECK(files_named(s.cache_root, ".incomplete") == std::vector<fs::path>{left.front()});
  CHECK(pruned.out.find("removed temp file") != std::string::npos);
}

// Commands that never check for a stop request keep the signals' default action: Ctrl-C ends them
// at once instead of being noted and ignored until they finish.
TEST_CASE("SIGINT ends a command that does not fetch at once, by the default action",
          "[interrupt]") {
  LockedProject p(1, 10);
  // `unpack` of an archive that is a FIFO nobody writes blocks in open(): a command busy in a
  // system call, as a long hash or copy would be.
  const fs::path archive = p.dir / "archive.tar.zst";
  REQUIRE(::mkfifo(archive.c_str(), 0600) == 0);
  Spawned run = spawn_kernels({"unpack", archive.string(), p.project.string()}, p.cache, p.endpoint,
                              p.dir / "stderr.txt");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ::kill(run.pid, SIGINT);
  const int code = wait_for(run.pid, std::chrono::seconds(5));
  INFO(read_file(run.err));
  CHECK(code == 256 + SIGINT);  // killed by the signal, not "interrupted" and exit 130 later
}

#endif
