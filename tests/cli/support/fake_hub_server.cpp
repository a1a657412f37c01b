// fake_hub_server: the fake Hub as a program, for scripts and the Python-compatibility test.
//
//   fake_hub_server --mirror DIR [--port N] [--print-port] [--max-seconds S] [--page-size N]
//                   [--log-requests] [--cdn URL]
//
// Serves the mirror directory (the layout in cli/hub/hub_client.h) with the full Hub protocol on
// 127.0.0.1, LFS files redirected to a second port. With --print-port it prints the Hub port on
// stdout once it is listening. It exits on SIGTERM or SIGINT, or after --max-seconds (default
// 600), so a forgotten server never outlives its test by long. --log-requests prints one line
// per answered request on stderr ("GET /api/kernels/... -> 200 (port N)"). --cdn URL redirects
// LFS files to URL/lfs/<sha256> (a static server holding those files) instead of the LFS port.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>

#include "fake_hub.h"

namespace {

int usage(const char* why) {
  std::cerr << "fake_hub_server: " << why << "\n"
            << "usage: fake_hub_server --mirror DIR [--port N] [--print-port] [--max-seconds S] "
               "[--page-size N] [--log-requests] [--cdn URL]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mirror;
  int port = 0;
  bool print_port = false;
  long max_seconds = 600;
  std::size_t page_size = 1000;
  bool log_requests = false;
  std::string cdn;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--mirror") {
      auto v = value();
      if (!v) return usage("--mirror needs a directory");
      mirror = v;
    } else if (arg == "--port") {
      auto v = value();
      if (!v) return usage("--port needs a number");
      port = std::atoi(v);
      if (port < 0 || port > 65535) return usage("--port out of range");
    } else if (arg == "--print-port") {
      print_port = true;
    } else if (arg == "--max-seconds") {
      auto v = value();
      if (!v) return usage("--max-seconds needs a number");
      max_seconds = std::atol(v);
      if (max_seconds <= 0) return usage("--max-seconds must be positive");
    } else if (arg == "--cdn") {
      auto v = value();
      if (!v || std::string(v).rfind("http", 0) != 0) return usage("--cdn needs an http(s) URL");
      cdn = v;
      while (!cdn.empty() && cdn.back() == '/') cdn.pop_back();
    } else if (arg == "--log-requests") {
      log_requests = true;
    } else if (arg == "--page-size") {
      auto v = value();
      if (!v || std::atol(v) <= 0) return usage("--page-size needs a positive number");
      page_size = static_cast<std::size_t>(std::atol(v));
    } else {
      return usage(("unknown argument " + arg).c_str());
    }
  }

  // Block the stop signals before the server threads start, so only sigtimedwait sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  kernels::testing::FakeHub::Options options;
  options.port = port;
  options.tree_page_size = page_size;
  options.lfs_base_url = cdn;
  std::mutex log_mutex;
  if (log_requests) {
    options.request_log = [&log_mutex](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mutex);
      std::cerr << line << "\n";
    };
  }
  kernels::testing::FakeHub hub(options);
  if (hub.port() <= 0 || hub.lfs_port() <= 0) {
    std::cerr << "fake_hub_server: cannot listen on 127.0.0.1:" << port << "\n";
    return 1;
  }
  if (!mirror.empty()) {
    auto loaded = hub.load_mirror(mirror);
    if (!loaded) {
      std::cerr << "fake_hub_server: " << loaded.error().message() << "\n";
      return 1;
    }
  }
  if (print_port) std::cout << hub.port() << std::endl;
  std::cerr << "fake_hub_server: serving " << (mirror.empty() ? "nothing" : mirror) << " at "
            << hub.endpoint() << " (LFS port " << hub.lfs_port() << ")\n";

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    timespec wait{1, 0};
    int sig = sigtimedwait(&stop_signals, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  return 0;
}
