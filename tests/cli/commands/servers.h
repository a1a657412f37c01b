// Real servers for a mirror directory, started by the test on a free 127.0.0.1 port and stopped
// by the destructor: nginx (Debian nginx-light, own config/pid/log paths, non-daemon) and the
// fake Hub program (tests/cli/support, Hub headers such as ETag and X-Repo-Commit that Python's
// huggingface_hub needs).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "harness.h"

namespace kernels::test {

class NginxServer {
 public:
  // nullopt with `why` set when nginx is not installed or does not start.
  static std::unique_ptr<NginxServer> start(const fs::path& mirror, const fs::path& work_dir,
                                            std::string& why);
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Request lines nginx logged so far ("GET /api/... 200").
  std::vector<std::string> requests() const;

 private:
  int port_ = 0;
  fs::path work_;
  std::unique_ptr<BackgroundProcess> process_;
};

class FakeHubProcess {
 public:
  static std::unique_ptr<FakeHubProcess> start(const fs::path& mirror, std::string& why);
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  std::unique_ptr<BackgroundProcess> process_;
};

}  // namespace kernels::test
