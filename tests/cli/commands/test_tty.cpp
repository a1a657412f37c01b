// Progress bars appear only on a terminal: stderr on a pseudo-terminal gets the bar (bytes, rate,
// ETA, redrawn with \r), --quiet silences it, and a pipe never sees it (test_download.cpp).
#include <catch2/catch.hpp>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "project_fixture.h"

using namespace kernels::test;

namespace {

// Runs the binary with stdin/stdout/stderr on a new pseudo-terminal; returns what it printed.
std::pair<int, std::string> run_on_tty(const LockedProject& p, std::vector<std::string> args,
                                       bool no_color = false) {
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    ::setenv("KERNELS_CACHE", p.cache.c_str(), 1);
    ::setenv("HF_ENDPOINT", p.endpoint.c_str(), 1);
    ::setenv("KERNELS_DRIVER_LIBRARY", "libcuda-absent-in-tests.so.1", 1);
    ::unsetenv("HF_HUB_OFFLINE");
    if (no_color) {
      ::setenv("NO_COLOR", "1", 1);
    } else {
      ::unsetenv("NO_COLOR");
    }
    std::vector<std::string> argv = {kernels_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    ::execv(raw[0], raw.data());
    ::_exit(127);
  }
  std::string out;
  char buffer[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd fd{master, POLLIN, 0};
    if (::poll(&fd, 1, 200) <= 0) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        ::close(master);
        return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
      }
      continue;
    }
    ssize_t n = ::read(master, buffer, sizeof buffer);
    if (n <= 0) break;  // EIO once the child closed the terminal
    out.append(buffer, static_cast<std::size_t>(n));
  }
  int status = 0;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  ::close(master);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("on a terminal, download draws a progress bar with bytes, rate and ETA", "[output][tty]") {
  LockedProject p(6, 20000);
  auto [code, out] = run_on_tty(p, {"download", "--all-variants", p.project.string()});
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find("\r\x1b[2KDownloading org/attn [") != std::string::npos);
  CHECK(out.find("ETA") != std::string::npos);
  CHECK(out.find("/s") != std::string::npos);

  LockedProject q(2, 100);
  auto [quiet_code, quiet_out] = run_on_tty(q, {"--quiet", "download", "--all-variants", q.project.string()});
  CHECK(quiet_code == 0);
  CHECK(quiet_out.empty());
}

TEST_CASE("on a terminal warnings are coloured unless NO_COLOR is set", "[output][tty]") {
  LockedProject p(1, 10);
  p.repo.publish(2, make_variant_files("cubin-cu130-sm90a", 1, 10, 77));  // lock now warns
  auto [code, out] = run_on_tty(p, {"lock", p.project.string()});
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find("\x1b[33mwarning\x1b[0m: You are using version 1") != std::string::npos);
  auto [plain_code, plain] = run_on_tty(p, {"lock", p.project.string()}, /*no_color=*/true);
  INFO(plain);
  CHECK(plain_code == 0);
  CHECK(plain.find("warning: You are using version 1") != std::string::npos);
  CHECK(plain.find("\x1b[") == std::string::npos);
}
