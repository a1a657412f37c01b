// nginx (Debian nginx-light) serving a directory as a static site on a free 127.0.0.1 port, for
// the C++ suites; the configuration is tests/support/nginx.conf.in, shared with the shell tests.
// Stopped (SIGTERM, then waited for) by the destructor.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kernels::test_support {

class NginxServer {
 public:
  // Serves `root`; config, pid, logs and temp files go under `work_dir`. nullptr with `why` set
  // when nginx is not installed or did not start (three ports tried: nginx cannot report a port
  // it picked, so another process can take the unused one first).
  static std::unique_ptr<NginxServer> start(const std::filesystem::path& root,
                                            const std::filesystem::path& work_dir,
                                            std::string& why);
  ~NginxServer();
  NginxServer(const NginxServer&) = delete;
  NginxServer& operator=(const NginxServer&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Request lines nginx logged so far, with their status ("GET /api/... 200").
  std::vector<std::string> requests() const;

 private:
  NginxServer() = default;
  void stop();

  int port_ = 0;
  pid_t pid_ = -1;
  std::filesystem::path work_;
};

}  // namespace kernels::test_support
