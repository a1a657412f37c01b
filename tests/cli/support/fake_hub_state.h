// Internals of the fake Hub shared by its source files: the repo model and the server state.
// Tests use fake_hub.h only.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fake_hub.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels::testing {
namespace detail {

constexpr std::size_t kMaxLoggedRequests = 100000;
constexpr auto kMaxStall = std::chrono::seconds(10);

struct StoredFile {
  std::string path;
  std::shared_ptr<const std::string> content;
  bool lfs = false;
  std::string oid;  // git sha1 of the content, or of the LFS pointer
  std::string sha256;
  std::uint64_t pointer_size = 0;
};

struct Commit {
  std::string sha;
  std::vector<StoredFile> files;  // sorted by path
};

struct RepoState {
  std::map<std::string, Commit> commits;
  std::vector<std::pair<std::string, std::string>> branches;  // name -> commit, in creation order
  std::vector<std::pair<std::string, std::string>> tags;
  bool gated = false;
  int counter = 0;
};

std::string git_sha1(std::string_view bytes);
std::string sha256(std::string_view bytes);
// Computes the oids a Hub would list for `file` (LFS: the pointer's git oid, and the sha256).
StoredFile store(FakeFile file);
// The recursive listing of a commit: files and their directories, sorted by path.
RepoTree tree_of(const Commit& commit);
// {"branches":[...],"converts":[],"tags":[...]} as the Hub answers /refs.
std::string refs_json(const RepoState& repo);

}  // namespace detail

struct FakeHub::State {
  mutable std::mutex mu;
  std::map<std::string, detail::RepoState> repos;
  std::map<std::string, std::shared_ptr<const std::string>> blobs;  // sha256 -> LFS content
  std::map<std::string, std::deque<Fault>> faults;
  std::optional<std::string> token;
  std::size_t page_size = 1000;
  bool trusted = true;
  std::map<std::string, std::optional<bool>> org_trust;  // per organisation; nullopt: 404
  // Under mu: the overview answer, "" for a 404.
  std::string overview_of(const std::string& org) const {
    auto it = org_trust.find(org);
    bool t = trusted;
    if (it != org_trust.end()) {
      if (!it->second) return "";
      t = *it->second;
    }
    return nlohmann::json{{"name", org}, {"fullname", org}, {"trustedKernelPublisher", t}}.dump();
  }
  std::vector<RequestRecord> log;
  std::atomic<bool> stopping{false};
  std::atomic<int> in_flight{0};      // requests being answered now
  std::atomic<int> max_in_flight{0};  // the most at once since the last reset_counts()

  std::unique_ptr<httplib::Server> hub;
  std::unique_ptr<httplib::Server> lfs;
  std::thread hub_thread;
  std::thread lfs_thread;
  int port = 0;
  int lfs_port = 0;
  std::string lfs_base_url;  // empty: http://127.0.0.1:<lfs_port>

  // Under mu.
  std::optional<std::string> commit_of(const detail::RepoState& repo, std::string rev) const {
    // Full ref names, as huggingface_hub sends them: refs/heads/<branch>, refs/tags/<tag>.
    for (const char* prefix : {"refs/heads/", "refs/tags/"}) {
      if (rev.rfind(prefix, 0) == 0) rev = rev.substr(std::string(prefix).size());
    }
    for (auto it = repo.branches.rbegin(); it != repo.branches.rend(); ++it)
      if (it->first == rev) return it->second;
    for (auto it = repo.tags.rbegin(); it != repo.tags.rend(); ++it)
      if (it->first == rev) return it->second;
    if (repo.commits.count(rev)) return rev;
    return std::nullopt;
  }

  std::optional<Fault> take_fault(const std::string& path) {
    auto it = faults.find(path);
    if (it == faults.end() || it->second.empty()) return std::nullopt;
    Fault f = it->second.front();
    if (f.times > 0 && --it->second.front().times == 0) it->second.pop_front();
    return f;
  }

  void sleep_bounded(std::chrono::milliseconds total) const {
    auto until = std::chrono::steady_clock::now() +
                 std::min<std::chrono::milliseconds>(total, detail::kMaxStall);
    while (!stopping && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void handle(int server_port, const httplib::Request& req, httplib::Response& res);
  void serve_bytes(const httplib::Request& req, httplib::Response& res,
                   std::shared_ptr<const std::string> content, const std::string& etag,
                   const std::optional<Fault>& fault);
  void route_hub(const httplib::Request& req, httplib::Response& res,
                 const std::optional<Fault>& fault);
};

}  // namespace kernels::testing
