// Real servers for a mirror directory, started by the test on a free 127.0.0.1 port and stopped
// by the destructor: nginx (tests/support/nginx_server.h) and the fake Hub program
// (tests/cli/support, Hub headers such as ETag and X-Repo-Commit that Python's huggingface_hub
// needs).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "harness.h"
#include "support/nginx_server.h"

namespace kernels::test {

using test_support::NginxServer;

class FakeHubProcess {
 public:
  static std::unique_ptr<FakeHubProcess> start(const fs::path& mirror, std::string& why);
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  std::unique_ptr<BackgroundProcess> process_;
};

}  // namespace kernels::test
