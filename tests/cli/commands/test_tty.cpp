// Progress bars appear only on a terminal: stderr on a pseudo-terminal gets the bar (bytes, rate,
// ETA, redrawn with \r), --quiet silences it, and a pipe never sees it (test_download.cpp).
#include <catch2/catch.hpp>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <optional>

#include "project_fixture.h"

using namespace kernels::test;

namespace {

// Runs the binary with stdin/stdout/stderr on a new pseudo-terminal; returns what it printed.
// `columns` 0: a terminal that reports no size (as forkpty makes it without one). `env`: set or
// (nullopt) unset in the child.
std::pair<int, std::string> run_on_tty(
    const LockedProject& p, std::vector<std::string> args, bool no_color = false,
    unsigned short columns = 0, const std::map<std::string, std::optional<std::string>>& env = {}) {
  int master = -1;
  winsize size{};
  size.ws_row = 24;
  size.ws_col = columns;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, columns ? &size : nullptr);
  if (pid == 0) {
    ::unsetenv("COLUMNS");
    ::setenv("TERM", "xterm", 1);
    for (const auto& [name, value] : env) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
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

TEST_CASE("on a terminal, download draws a progress bar with bytes, rate and ETA",
          "[output][tty]") {
  LockedProject p(6, 20000);
  auto [code, out] = run_on_tty(p, {"download", "--all-variants", p.project.string()});
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find("\r\x1b[2KDownloading org/attn [") != std::string::npos);
  CHECK(out.find("ETA") != std::string::npos);
  CHECK(out.find("/s") != std::string::npos);

  LockedProject q(2, 100);
  auto [quiet_code,
        quiet_out] = run_on_tty(q, {"--quiet", "download", "--all-variants", q.project.string()});
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

namespace {

// The progress lines drawn ("\r\x1b[2KDownloading ..."), each as the terminal shows it.
std::vector<std::string> progress_lines(const std::string& out) {
  std::vector<std::string> lines;
  const std::string start = "\r\x1b[2KDownloading ";
  for (auto at = out.find(start); at != std::string::npos; at = out.find(start, at + 1)) {
    const std::size_t begin = at + 5;
    const std::size_t end = out.find_first_of("\r\n", begin);
    lines.push_back(out.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
  }
  return lines;
}

}  // namespace

// Regression (issue 15): a ~100-column line at 80 columns wrapped, and "\r" + erase-line cleared
// only its last row, so the screen filled with stacked bars.
TEST_CASE("the progress line never reaches the terminal's last column", "[output][tty]") {
  struct Case {
    unsigned short columns;
    std::optional<std::string> env_columns;
    std::size_t width;
  };
  for (const Case& c : {Case{60, std::nullopt, 60}, Case{40, "200", 40}, Case{0, "50", 50},
                        Case{0, std::nullopt, 80}, Case{120, std::nullopt, 120}}) {
    INFO("tty columns " << c.columns << ", COLUMNS " << c.env_columns.value_or("unset"));
    LockedProject p(6, 20000);
    auto [code, out] = run_on_tty(p, {"download", "--all-variants", p.project.string()}, true,
                                  c.columns, {{"COLUMNS", c.env_columns}});
    CHECK(code == 0);
    const std::vector<std::string> lines = progress_lines(out);
    REQUIRE_FALSE(lines.empty());
    for (const std::string& line : lines) {
      INFO(line);
      CHECK(line.size() < c.width);
      CHECK(line.rfind("Downloading org/attn ", 0) == 0);
    }
    if (c.width >= 80) CHECK(lines.front().find(" [") != std::string::npos);  // room for the bar
  }
}

TEST_CASE("no progress line on TERM=dumb", "[output][tty]") {
  LockedProject p(6, 20000);
  auto [code, out] = run_on_tty(p, {"download", "--all-variants", p.project.string()}, true, 80,
                                {{"TERM", "dumb"}});
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find("\x1b[") == std::string::npos);
  CHECK(out.find("Downloading kernel: org/attn") !=
        std::string::npos);  // the log lines stay (format-2 lock: 0.17's wording)
}

TEST_CASE("progress never draws nothing on a terminal, progress always draws into a pipe",
          "[output][tty]") {
  LockedProject p(6, 20000);
  auto [code,
        out] = run_on_tty(p, {"--progress=never", "download", "--all-variants", p.project.string()},
                          true, 80);
  INFO(out);
  CHECK(code == 0);
  CHECK(progress_lines(out).empty());
  CHECK(out.find("Downloading kernel: org/attn") != std::string::npos);

  LockedProject q(6, 20000);
  ProcessResult piped = q.run({"download", "--all-variants", "--progress", "always",
                               q.project.string()},
                              {{"COLUMNS", "70"}});
  INFO(piped.err);
  CHECK(piped.exit_code == 0);
  const std::vector<std::string> lines = progress_lines(piped.err);
  REQUIRE_FALSE(lines.empty());
  for (const std::string& line : lines) CHECK(line.size() < 70);  // no terminal: COLUMNS says

  ProcessResult quiet = q.run(
      {"-q", "--progress=always", "download", "--all-variants", q.project.string()});
  CHECK(quiet.exit_code == 0);
  CHECK(quiet.err.empty());
  ProcessResult bad = q.run({"--progress=sometimes", "download", q.project.string()});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--progress") != std::string::npos);
}
