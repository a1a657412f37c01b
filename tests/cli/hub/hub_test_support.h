// Shared pieces of the Hub client tests: fast options, temp dirs, env overrides, request builders.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fake_hub.h"
#include "hub_client.h"

namespace kernels::hub_test {

namespace fs = std::filesystem;
using kernels::cli::DownloadRequest;
using kernels::cli::HubClient;
using kernels::cli::HubOptions;
using kernels::testing::FakeFile;
using kernels::testing::FakeHub;
using kernels::testing::Fault;

// Backoffs of milliseconds so retry tests stay fast; a one-second stall window.
inline HubOptions fast_options(const std::string& endpoint) {
  HubOptions o;
  o.endpoint = endpoint;
  o.max_retries = 3;
  o.backoff_initial = std::chrono::milliseconds(10);
  o.backoff_max = std::chrono::milliseconds(40);
  o.retry_after_cap = std::chrono::milliseconds(5000);
  o.connect_timeout = std::chrono::seconds(2);
  o.stall_timeout = std::chrono::seconds(1);
  o.user_agent = "kernels-cpp-test";
  return o;
}

inline std::unique_ptr<HubClient> make_client(HubOptions options) {
  auto client = HubClient::create(std::move(options));
  if (!client) throw std::runtime_error(client.error().message());
  return std::move(*client);
}

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "kernels-hub-test-XXXXXX").string();
    if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Sets (or, with nullopt, unsets) environment variables for one test and restores them after.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, std::optional<std::string>>> values) {
    for (const auto& [name, value] : values) set(name, value);
  }
  void set(const char* name, const std::optional<std::string>& value) {
    if (!saved_.count(name)) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// Every variable hub_options_from_env reads, unset; a test sets what it needs on top.
inline ScopedEnv clean_hub_env() {
  return ScopedEnv{{"HF_ENDPOINT", std::nullopt},
                   {"HF_TOKEN", std::nullopt},
                   {"HUGGING_FACE_HUB_TOKEN", std::nullopt},
                   {"HF_TOKEN_PATH", std::nullopt},
                   {"HF_HOME", std::nullopt},
                   {"HF_HUB_OFFLINE", std::nullopt},
                   {"TRANSFORMERS_OFFLINE", std::nullopt},
                   {"HF_HUB_DISABLE_IMPLICIT_TOKEN", std::nullopt},
                   {"HUGGINGFACE_CO_STAGING", std::nullopt},
                   {"CURL_CA_BUNDLE", std::nullopt},
                   {"SSL_CERT_FILE", std::nullopt},
                   {"SSL_CERT_DIR", std::nullopt},
                   {"REQUESTS_CA_BUNDLE", std::nullopt},
                   {"http_proxy", std::nullopt},
                   {"https_proxy", std::nullopt},
                   {"HTTPS_PROXY", std::nullopt},
                   {"all_proxy", std::nullopt},
                   {"ALL_PROXY", std::nullopt},
                   {"no_proxy", std::nullopt},
                   {"NO_PROXY", std::nullopt},
                   {"HF_HUB_DOWNLOAD_TIMEOUT", std::nullopt}};
}

inline std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const fs::path& path, std::string_view bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// One download request per file of the tree (directories skipped), temp files under `dir`.
inline std::vector<DownloadRequest> requests_for(const RepoTree& tree, const std::string& repo_id,
                                                 const std::string& commit, const fs::path& dir) {
  std::vector<DownloadRequest> out;
  for (const auto& e : tree) {
    if (!e.is_file) continue;
    DownloadRequest r;
    r.repo_id = repo_id;
    r.revision = commit;
    r.path = e.path;
    r.digest = e.digest();
    r.size = e.content_size();
    r.temp_path = dir / (std::to_string(out.size()) + ".incomplete");
    out.push_back(std::move(r));
  }
  return out;
}

// The tree of `repo_id` at `commit`, fetched through `client`; throws on failure.
inline RepoTree fetch_tree(HubClient& client, const std::string& repo_id,
                           const std::string& commit) {
  auto tree = client.list_tree(repo_id, commit);
  if (!tree) throw std::runtime_error(tree.error().message());
  return *tree;
}

// The single file request for `path`.
inline DownloadRequest request_for(HubClient& client, const std::string& repo_id,
                                   const std::string& commit, const std::string& path,
                                   const fs::path& dir) {
  for (auto& r : requests_for(fetch_tree(client, repo_id, commit), repo_id, commit, dir)) {
    if (r.path == path) return r;
  }
  throw std::runtime_error("no such file in the tree: " + path);
}

}  // namespace kernels::hub_test
