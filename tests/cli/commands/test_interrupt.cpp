// Ctrl-C (SIGINT) and SIGTERM during a real download from the fake Hub: the transfers stop, the
// process removes its own partial files, exits 128 + the signal, and a rerun downloads everything.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

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

// The binary in the background, stderr to a file, with the harness's environment.
Spawned spawn_kernels(const std::vector<std::string>& args, const fs::path& cache,
                      const std::string& endpoint, const fs::path& err) {
  Spawned s{-1, err};
  s.pid = ::fork();
  if (s.pid == 0) {
    int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
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

}  // namespace

TEST_CASE(
    "SIGINT or SIGTERM during download: exit 130/143, no partial file left, a rerun completes",
    "[download][interrupt][fakehub]") {
  for (int signal : {SIGINT, SIGTERM}) {
    INFO("signal " << signal);
    FakeHub hub;
    std::vector<FakeFile> files;
    for (int i = 0; i < 4; ++i) {
      files.push_back({"build/cubin-cu130-sm90a/part" + std::to_string(i) + ".cubin",
                       std::string(300000, static_cast<char>('a' + i)), false});
    }
    hub.add_repo("org/attn").branch("v1", files);
    const std::string commit = hub.repo("org/attn").commit("v1");
    TempDir dir{"kernels-interrupt"};
    write_file(dir / "project/pyproject.toml", "[tool.kernels.dependencies]\n\"org/attn\" = 1\n");
    ProcessResult lock = run_kernels({"lock", (dir / "project").string()}, dir / "cache",
                                     hub.endpoint());
    INFO(lock.err);
    REQUIRE(lock.exit_code == 0);
    // Every file sends its first 50 kB, then nothing for 10 s: the download is mid-transfer.
    for (const auto& f : files) {
      hub.fault(FakeHub::resolve_path("org/attn", commit, f.path),
                Fault::stalled(50000, std::chrono::seconds(10)));
    }

    const kernels::CacheLayout cache(dir / "cache");
    Spawned run = spawn_kernels({"download", "--all-variants", (dir / "project").string()},
                                dir / "cache", hub.endpoint(), dir / "stderr.txt");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    bool partial = false;
    while (!partial && std::chrono::steady_clock::now() < deadline) {
      for (const fs::path& temp : files_named(cache.blobs_dir("org/attn"), ".incomplete")) {
        std::error_code ec;
        if (fs::file_size(temp, ec) > 0 && !ec) partial = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(partial);  // bytes were on disk, half-written, when the signal came
    const auto sent = std::chrono::steady_clock::now();
    ::kill(run.pid, signal);
    const int code = wait_for(run.pid, std::chrono::seconds(10));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent)
                               .count();
    const std::string err = read_file(run.err);
    INFO(err);
    CHECK(code == 128 + signal);
    CHECK(seconds < 3);  // not the 10 s the server stalls for
    CHECK(err.find(signal == SIGINT ? "interrupted (SIGINT)" : "interrupted (SIGTERM)") !=
          std::string::npos);
    CHECK(err.find("error:") == std::string::npos);  // stopping is not reported as failures
    CHECK(files_named(dir / "cache", ".incomplete").empty());
    // Nothing half-written became visible: no blob, no snapshot entry.
    CHECK(files_named(cache.blobs_dir("org/attn"), "").empty());
    CHECK_FALSE(fs::exists(cache.snapshot_dir("org/attn", commit)));

    ProcessResult again = run_kernels({"download", "--all-variants", (dir / "project").string()},
                                      dir / "cache", hub.endpoint());
    INFO(again.err);
    CHECK(again.exit_code == 0);
    CHECK(run_kernels({"verify", (dir / "project").string()}, dir / "cache", hub.endpoint())
              .exit_code == 0);
  }
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
