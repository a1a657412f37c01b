// The fake Hub's repo model, its faults, and the handles tests use (FakeHub, FakeRepo).
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "fake_hub_state.h"
#include "kernels/lockfile/digest.h"

namespace kernels::testing {
namespace detail {

using json = nlohmann::json;

std::string git_sha1(std::string_view bytes) {
  GitBlobSha1 h(bytes.size());
  h.update(bytes);
  return h.finish_hex().value();
}

std::string sha256(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.finish_hex();
}

StoredFile store(FakeFile file) {
  StoredFile f;
  f.path = std::move(file.path);
  f.sha256 = sha256(file.content);
  f.lfs = file.lfs;
  if (f.lfs) {
    std::string pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + f.sha256 +
                          "\nsize " + std::to_string(file.content.size()) + "\n";
    f.pointer_size = pointer.size();
    f.oid = git_sha1(pointer);
  } else {
    f.oid = git_sha1(file.content);
  }
  f.content = std::make_shared<const std::string>(std::move(file.content));
  return f;
}

RepoTree tree_of(const Commit& commit) {
  RepoTree tree;
  std::set<std::string> dirs;
  for (const auto& f : commit.files) {
    for (auto slash = f.path.find('/'); slash != std::string::npos;
         slash = f.path.find('/', slash + 1)) {
      dirs.insert(f.path.substr(0, slash));
    }
    TreeEntry e;
    e.path = f.path;
    e.is_file = true;
    e.oid = f.oid;
    e.size = f.content->size();
    if (f.lfs) e.lfs = LfsInfo{f.sha256, f.content->size(), f.pointer_size};
    tree.push_back(std::move(e));
  }
  for (const auto& d : dirs) {
    TreeEntry e;
    e.path = d;
    e.is_file = false;
    e.oid = git_sha1("tree " + d);
    tree.push_back(std::move(e));
  }
  std::sort(tree.begin(), tree.end(),
            [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
  return tree;
}

std::string refs_json(const RepoState& repo) {
  json refs{{"branches", json::array()}, {"converts", json::array()}, {"tags", json::array()}};
  for (const auto& [name, commit] : repo.branches)
    refs["branches"].push_back(
        {{"name", name}, {"ref", "refs/heads/" + name}, {"targetCommit", commit}});
  for (const auto& [name, commit] : repo.tags)
    refs["tags"].push_back(
        {{"name", name}, {"ref", "refs/tags/" + name}, {"targetCommit", commit}});
  return refs.dump();
}

}  // namespace detail

using namespace detail;

Fault Fault::http(int status, int times, std::string retry_after) {
  Fault f;
  f.kind = Kind::status;
  f.status = status;
  f.times = times;
  f.retry_after = std::move(retry_after);
  return f;
}

Fault Fault::answer(int status, std::string body, std::map<std::string, std::string> headers,
                    int times) {
  Fault f;
  f.kind = Kind::answer;
  f.status = status;
  f.answer_body = std::move(body);
  f.headers = std::move(headers);
  f.times = times;
  return f;
}

Fault Fault::redirect(std::string location, int times) {
  Fault f;
  f.kind = Kind::redirect;
  f.times = times;
  f.location = std::move(location);
  return f;
}

Fault Fault::body(Kind kind, int times, std::size_t keep_bytes) {
  Fault f;
  f.kind = kind;
  f.times = times;
  f.keep_bytes = keep_bytes;
  return f;
}

Fault Fault::stalled(std::size_t keep_bytes, std::chrono::milliseconds stall, int times) {
  Fault f;
  f.kind = Kind::stall;
  f.times = times;
  f.keep_bytes = keep_bytes;
  f.stall = stall;
  return f;
}

Fault Fault::trickled(std::chrono::milliseconds every, int times) {
  Fault f;
  f.kind = Kind::trickle;
  f.times = times;
  f.stall = every;
  return f;
}

std::string FakeRepo::commit(const std::string& ref) const {
  std::lock_guard<std::mutex> lock(hub_->state_->mu);
  auto& repo = hub_->state_->repos[id_];
  return hub_->state_->commit_of(repo, ref).value_or("");
}

FakeRepo& FakeRepo::branch(const std::string& name, std::vector<FakeFile> files) {
  auto& s = *hub_->state_;
  std::lock_guard<std::mutex> lock(s.mu);
  auto& repo = s.repos[id_];
  Commit commit;
  std::string manifest = id_ + "\n" + name + "\n" + std::to_string(++repo.counter) + "\n";
  for (auto& f : files) {
    auto stored = store(std::move(f));
    manifest += stored.path + " " + stored.oid + "\n";
    if (stored.lfs) s.blobs[stored.sha256] = stored.content;
    commit.files.push_back(std::move(stored));
  }
  std::sort(commit.files.begin(), commit.files.end(),
            [](const StoredFile& a, const StoredFile& b) { return a.path < b.path; });
  commit.sha = git_sha1(manifest);
  auto sha = commit.sha;
  repo.commits[sha] = std::move(commit);
  auto it = std::find_if(repo.branches.begin(), repo.branches.end(),
                         [&](const auto& b) { return b.first == name; });
  if (it != repo.branches.end()) it->second = sha;
  else repo.branches.emplace_back(name, sha);
  return *this;
}

FakeRepo& FakeRepo::tag(const std::string& name, const std::string& target) {
  auto& s = *hub_->state_;
  std::lock_guard<std::mutex> lock(s.mu);
  auto& repo = s.repos[id_];
  auto commit = s.commit_of(repo, target);
  if (commit) repo.tags.emplace_back(name, *commit);
  return *this;
}

FakeRepo& FakeRepo::gated(bool on) {
  std::lock_guard<std::mutex> lock(hub_->state_->mu);
  hub_->state_->repos[id_].gated = on;
  return *this;
}

FakeHub::FakeHub() : FakeHub(Options{}) {}

FakeHub::FakeHub(Options options) : state_(std::make_unique<State>()) { start(options); }

void FakeHub::start(Options options) {
  auto& s = *state_;
  s.page_size = options.tree_page_size;
  s.lfs_base_url = options.lfs_base_url;
  tls_ = !options.tls_cert_file.empty() && !options.tls_key_file.empty();
  if (tls_) {
    s.hub = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                 options.tls_key_file.c_str());
  } else {
    s.hub = std::make_unique<httplib::Server>();
  }
  s.lfs = std::make_unique<httplib::Server>();
  for (auto* server : {s.hub.get(), s.lfs.get()}) {
    server->new_task_queue = [] { return new httplib::ThreadPool(32); };
    // Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the client's
    // delayed ACK holds every small answer for ~40 ms.
    server->set_tcp_nodelay(true);
    server->set_keep_alive_timeout(2);
    server->set_read_timeout(5, 0);
    server->set_write_timeout(5, 0);
    if (options.request_log) {
      auto log = options.request_log;
      auto* st = &s;
      server->set_logger([log, st](const httplib::Request& req, const httplib::Response& res) {
        log(req.method + " " + req.target + " -> " + std::to_string(res.status) + " (port " +
            std::to_string(req.local_port == st->lfs_port ? st->lfs_port : st->port) + ")");
      });
    }
  }
  s.hub->Get(".*", [&s](const httplib::Request& req, httplib::Response& res) {
    s.handle(s.port, req, res);
  });
  s.lfs->Get(".*", [&s](const httplib::Request& req, httplib::Response& res) {
    s.handle(s.lfs_port, req, res);
  });
  if (tls_ && !s.hub->is_valid()) {
    s.port = -1;
  } else {
    s.port = options.port ? (s.hub->bind_to_port("127.0.0.1", options.port) ? options.port : -1)
                          : s.hub->bind_to_any_port("127.0.0.1");
  }
  s.lfs_port = s.lfs->bind_to_any_port("127.0.0.1");
  port_ = s.port;
  lfs_port_ = s.lfs_port;
  if (s.port > 0) s.hub_thread = std::thread([&s] { s.hub->listen_after_bind(); });
  if (s.lfs_port > 0) s.lfs_thread = std::thread([&s] { s.lfs->listen_after_bind(); });
  // httplib's stop() does nothing before the accept loop runs, so a hub destroyed right after
  // construction would never stop: wait (bounded) until both loops are up.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline &&
         ((s.port > 0 && !s.hub->is_running()) || (s.lfs_port > 0 && !s.lfs->is_running()))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

FakeHub::~FakeHub() {
  auto& s = *state_;
  s.stopping = true;
  s.hub->stop();
  s.lfs->stop();
  if (s.hub_thread.joinable()) s.hub_thread.join();
  if (s.lfs_thread.joinable()) s.lfs_thread.join();
}

FakeRepo FakeHub::add_repo(const std::string& repo_id) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->repos[repo_id];
  return FakeRepo(this, repo_id);
}

FakeRepo FakeHub::repo(const std::string& repo_id) { return FakeRepo(this, repo_id); }

void FakeHub::fault(const std::string& path, Fault fault) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->faults[path].push_back(std::move(fault));
}

void FakeHub::require_token(std::string token) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->token = std::move(token);
}

void FakeHub::set_tree_page_size(std::size_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->page_size = n;
}

void FakeHub::set_trusted_publisher(bool trusted) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->trusted = trusted;
}

void FakeHub::set_trusted_publisher(const std::string& org, std::optional<bool> trusted) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->org_trust[org] = trusted;
}

std::string FakeHub::organization_overview(const std::string& org) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->overview_of(org);
}

std::string FakeHub::endpoint() const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

std::string FakeHub::refs_path(const std::string& repo_id) {
  return "/api/kernels/" + repo_id + "/refs";
}
std::string FakeHub::revision_path(const std::string& repo_id, const std::string& revision) {
  return "/api/kernels/" + repo_id + "/revision/" + revision;
}
std::string FakeHub::tree_path(const std::string& repo_id, const std::string& revision) {
  return "/api/kernels/" + repo_id + "/tree/" + revision;
}
std::string FakeHub::resolve_path(const std::string& repo_id, const std::string& revision,
                                  const std::string& path) {
  return "/kernels/" + repo_id + "/resolve/" + revision + "/" + path;
}
std::string FakeHub::lfs_path(const std::string& sha256) { return "/lfs/" + sha256; }

std::size_t FakeHub::request_count() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->log.size();
}

std::size_t FakeHub::request_count(const std::string& path) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return static_cast<std::size_t>(
      std::count_if(state_->log.begin(), state_->log.end(),
                    [&](const RequestRecord& r) { return r.path == path; }));
}

std::size_t FakeHub::authorization_headers_seen(int port) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return static_cast<std::size_t>(
      std::count_if(state_->log.begin(), state_->log.end(), [&](const RequestRecord& r) {
        return r.port == port && !r.authorization.empty();
      }));
}

std::vector<RequestRecord> FakeHub::requests() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->log;
}

void FakeHub::reset_counts() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->log.clear();
  state_->max_in_flight = state_->in_flight.load();
}

int FakeHub::max_concurrent_requests() const { return state_->max_in_flight.load(); }

}  // namespace kernels::testing
