#include "servers.h"

namespace kernels::test {

std::unique_ptr<FakeHubProcess> FakeHubProcess::start(const fs::path& mirror, std::string& why) {
#ifdef KERNELS_FAKE_HUB_SERVER
  auto server = std::unique_ptr<FakeHubProcess>(new FakeHubProcess());
  server->process_ = std::make_unique<BackgroundProcess>(
      std::vector<std::string>{KERNELS_FAKE_HUB_SERVER, "--mirror", fs::absolute(mirror).string(),
                               "--print-port", "--max-seconds", "600"});
  std::string line = server->process_->read_line(std::chrono::seconds(10));
  try {
    server->port_ = std::stoi(line);
  } catch (...) {
    why = "fake_hub_server printed no port (got \"" + line + "\")";
    return nullptr;
  }
  if (!wait_for_port(server->port_, std::chrono::seconds(10))) {
    why = "fake_hub_server is not listening on its port";
    return nullptr;
  }
  return server;
#else
  (void)mirror;
  why = "the fake Hub program (tests/cli/support) is not built";
  return nullptr;
#endif
}

}  // namespace kernels::test
