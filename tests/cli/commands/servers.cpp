#include "servers.h"

#include <unistd.h>

#include <sstream>

namespace kernels::test {

std::unique_ptr<NginxServer> NginxServer::start(const fs::path& mirror, const fs::path& work_dir,
                                                std::string& why) {
  const char* binary = "/usr/sbin/nginx";
  if (::access(binary, X_OK) != 0) {
    why =
        "nginx is not installed (Debian package nginx-light; scripts/install-deps.sh installs it)";
    return nullptr;
  }
  auto server = std::unique_ptr<NginxServer>(new NginxServer());
  server->work_ = work_dir;
  fs::create_directories(work_dir / "tmp");
  fs::create_directories(work_dir / "logs");
  for (int attempt = 0; attempt < 3; ++attempt) {
    server->port_ = unused_port();
    std::ostringstream conf;
    fs::path w = fs::absolute(work_dir);
    conf << "daemon off;\nworker_processes 1;\npid " << (w / "nginx.pid").string() << ";\n"
         << "error_log " << (w / "logs/error.log").string() << " warn;\n"
         << (::geteuid() == 0 ? "user root;\n" : "") << "events { worker_connections 64; }\n"
         << "http {\n  access_log " << (w / "logs/access.log").string() << ";\n"
         << "  client_body_temp_path " << (w / "tmp").string() << ";\n"
         << "  proxy_temp_path " << (w / "tmp").string() << ";\n"
         << "  fastcgi_temp_path " << (w / "tmp").string() << ";\n"
         << "  uwsgi_temp_path " << (w / "tmp").string() << ";\n"
         << "  scgi_temp_path " << (w / "tmp").string() << ";\n"
         << "  default_type application/octet-stream;\n  sendfile on;\n"
         << "  server {\n    listen 127.0.0.1:" << server->port_ << ";\n"
         << "    root " << fs::absolute(mirror).string()
         << ";\n"
         // A missing file is the Hub's EntryNotFound (what huggingface_hub checks).
         << "    error_page 404 = @missing;\n"
         << "    location @missing { add_header X-Error-Code EntryNotFound always; return 404; }\n"
         << "  }\n}\n";
    write_file(work_dir / "nginx.conf", conf.str());
    server->process_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{binary, "-p", fs::absolute(work_dir).string(), "-c",
                                 fs::absolute(work_dir / "nginx.conf").string(), "-e",
                                 fs::absolute(work_dir / "logs/error.log").string()});
    if (wait_for_port(server->port_, std::chrono::seconds(10))) return server;
    server->process_.reset();
  }
  why = "nginx did not start: " + read_file(work_dir / "logs/error.log");
  return nullptr;
}

std::vector<std::string> NginxServer::requests() const {
  std::vector<std::string> lines;
  std::istringstream in(read_file(work_ / "logs/access.log"));
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
