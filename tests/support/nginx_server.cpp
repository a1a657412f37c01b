#include "support/nginx_server.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/local_port.h"

extern char** environ;

namespace kernels::test_support {
namespace {

namespace fs = std::filesystem;

constexpr const char* kNginx = "/usr/sbin/nginx";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

}  // namespace

std::unique_ptr<NginxServer> NginxServer::start(const fs::path& root, const fs::path& work_dir,
                                                std::string& why) {
  if (::access(kNginx, X_OK) != 0) {
    why =
        "nginx is not installed (Debian package nginx-light; scripts/install-deps.sh installs it)";
    return nullptr;
  }
  const std::string conf_in = read_text(fs::path(KERNELS_SOURCE_DIR) /
                                        "tests/support/nginx.conf.in");
  if (conf_in.empty()) {
    why = "tests/support/nginx.conf.in is missing";
    return nullptr;
  }
  const fs::path work = fs::absolute(work_dir);
  fs::create_directories(work / "tmp");
  fs::create_directories(work / "logs");
  auto server = std::unique_ptr<NginxServer>(new NginxServer());
  server->work_ = work;
  for (int attempt = 0; attempt < 3; ++attempt) {
    server->port_ = unused_port();
    std::string conf = conf_in;
    replace_all(conf, "@WORK@", work.string());
    replace_all(conf, "@PORT@", std::to_string(server->port_));
    replace_all(conf, "@ROOT@", fs::absolute(root).string());
    replace_all(conf, "@USER@", ::geteuid() == 0 ? "user root;" : "");
    std::ofstream(work / "nginx.conf", std::ios::binary | std::ios::trunc) << conf;
    std::vector<std::string> args = {kNginx,
                                     "-p",
                                     work.string(),
                                     "-c",
                                     (work / "nginx.conf").string(),
                                     "-e",
                                     (work / "logs/error.log").string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&server->pid_, kNginx, nullptr, nullptr, argv.data(), environ) != 0) {
      server->pid_ = -1;
      why = "cannot start nginx";
      return nullptr;
    }
    if (wait_for_port(server->port_, std::chrono::seconds(10))) return server;
    server->stop();
  }
  why = "nginx did not start: " + read_text(work / "logs/error.log");
  return nullptr;
}

NginxServer::~NginxServer() { stop(); }

void NginxServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 500; ++i) {  // 5 s, then SIGKILL
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::vector<std::string> NginxServer::requests() const {
  std::vector<std::string> lines;
  std::istringstream in(read_text(work_ / "logs/access.log"));
  for (std::string line; std::getline(in, line);) {
    auto q = line.find('"');
    auto end = q == std::string::npos ? q : line.find('"', q + 1);
    if (end == std::string::npos) continue;
    std::istringstream rest(line.substr(end + 1));
    std::string status;
    rest >> status;
    lines.push_back(line.substr(q + 1, end - q - 1) + " " + status);
  }
  return lines;
}

}  // namespace kernels::test_support
