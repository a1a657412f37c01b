#include "fake_hub.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "kernels/lockfile/digest.h"
#include "kernels/lockfile/repo_tree.h"

namespace kernels::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::size_t kMaxLoggedRequests = 100000;
constexpr auto kMaxStall = std::chrono::seconds(10);

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

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Splits the raw request target (before '?') on '/', then decodes each segment, so a revision
// sent as one encoded segment ("refs%2Fheads%2Fv1", as huggingface_hub does) stays one segment.
std::vector<std::string> split_path(const std::string& target) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(target.substr(0, target.find('?')));
  while (std::getline(in, part, '/')) {
    if (!part.empty()) parts.push_back(percent_decode(part));
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < parts.size(); ++i) {
    if (!out.empty()) out += "/";
    out += parts[i];
  }
  return out;
}

void hub_error(httplib::Response& res, int status, const char* code, const std::string& message) {
  res.status = status;
  if (code && *code) res.set_header("X-Error-Code", code);
  res.set_header("X-Error-Message", message);
  res.set_content(json{{"error", message}}.dump(), "application/json");
}

}  // namespace

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

struct FakeHub::State {
  mutable std::mutex mu;
  std::map<std::string, RepoState> repos;
  std::map<std::string, std::shared_ptr<const std::string>> blobs;  // sha256 -> LFS content
  std::map<std::string, std::deque<Fault>> faults;
  std::optional<std::string> token;
  std::size_t page_size = 1000;
  bool trusted = true;
  std::vector<RequestRecord> log;
  std::atomic<bool> stopping{false};

  std::unique_ptr<httplib::Server> hub;
  std::unique_ptr<httplib::Server> lfs;
  std::thread hub_thread;
  std::thread lfs_thread;
  int port = 0;
  int lfs_port = 0;

  // Under mu.
  std::optional<std::string> commit_of(const RepoState& repo, std::string rev) const {
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
                 std::min<std::chrono::milliseconds>(total, kMaxStall);
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

void FakeHub::State::serve_bytes(const httplib::Request& req, httplib::Response& res,
                                 std::shared_ptr<const std::string> content,
                                 const std::string& etag, const std::optional<Fault>& fault) {
  using Kind = Fault::Kind;
  auto has = [&](Kind k) { return fault && fault->kind == k; };
  res.set_header("ETag", etag);
  res.set_header("Accept-Ranges", "bytes");
  auto body = std::make_shared<std::string>(*content);
  res.status = 200;
  auto range = req.get_header_value("Range");
  if (!range.empty() && !has(Kind::ignore_range) && range.rfind("bytes=", 0) == 0 &&
      range.back() == '-') {
    auto if_range = req.get_header_value("If-Range");
    std::uint64_t start = 0;
    try {
      start = std::stoull(range.substr(6, range.size() - 7));
    } catch (...) {
      start = content->size() + 1;
    }
    auto total = std::to_string(content->size());
    if (!if_range.empty() && if_range != etag) {
      // The validator changed: the whole body, as RFC 9110 says.
    } else if (has(Kind::wrong_range_start)) {
      res.status = 206;
      res.set_header("Content-Range", "bytes 0-" + std::to_string(content->size() - 1) + "/" + total);
    } else if (start >= content->size()) {
      res.status = 416;
      res.set_header("Content-Range", "bytes */" + total);
      body = std::make_shared<std::string>();
    } else {
      res.status = 206;
      res.set_header("Content-Range", "bytes " + std::to_string(start) + "-" +
                                          std::to_string(content->size() - 1) + "/" + total);
      body = std::make_shared<std::string>(content->substr(start));
    }
  }
  if (has(Kind::extra_byte)) body->push_back('X');
  if (has(Kind::flip_byte) && !body->empty()) (*body)[body->size() / 2] ^= 0x01;
  if (has(Kind::content_encoding)) res.set_header("Content-Encoding", "gzip");
  const char* type = "application/octet-stream";
  if (req.method == "HEAD" || !fault ||
      !(has(Kind::truncate) || has(Kind::truncate_no_length) || has(Kind::stall))) {
    res.set_content(*body, type);
    return;
  }
  auto keep = std::min(fault->keep_bytes, body->size());
  auto stall = fault->stall;
  if (has(Kind::truncate_no_length)) {
    // Without a length the client can only see the close as the end of the body.
    res.set_content_provider(type, [body, keep](std::size_t, httplib::DataSink& sink) {
      sink.write(body->data(), keep);
      return false;
    });
    return;
  }
  bool stalls = has(Kind::stall);
  res.set_content_provider(
      body->size(), type,
      [this, body, keep, stall, stalls](std::size_t offset, std::size_t, httplib::DataSink& sink) {
        if (offset < keep) sink.write(body->data() + offset, keep - offset);
        if (stalls) sleep_bounded(stall);
        return false;
      });
}

void FakeHub::State::route_hub(const httplib::Request& req, httplib::Response& res,
                               const std::optional<Fault>& fault) {
  auto parts = split_path(req.target);
  std::lock_guard<std::mutex> lock(mu);
  if (parts.size() == 4 && parts[0] == "api" && parts[1] == "organizations" &&
      parts[3] == "overview") {
    res.set_content(json{{"name", parts[2]}, {"trustedKernelPublisher", trusted}}.dump(),
                    "application/json");
    return;
  }
  bool api = parts.size() >= 4 && parts[0] == "api" && parts[1] == "kernels";
  bool files = parts.size() >= 6 && parts[0] == "kernels" && parts[3] == "resolve";
  if (!api && !files) return hub_error(res, 404, "", "Not found");
  std::string repo_id = api ? parts[2] + "/" + parts[3] : parts[1] + "/" + parts[2];
  auto repo_it = repos.find(repo_id);
  if (repo_it == repos.end()) return hub_error(res, 404, "RepoNotFound", "Repository not found");
  RepoState& repo = repo_it->second;

  if (api && parts.size() == 5 && parts[4] == "refs") {
    json refs{{"branches", json::array()}, {"converts", json::array()}, {"tags", json::array()}};
    for (const auto& [name, commit] : repo.branches)
      refs["branches"].push_back({{"name", name}, {"ref", "refs/heads/" + name}, {"targetCommit", commit}});
    for (const auto& [name, commit] : repo.tags)
      refs["tags"].push_back({{"name", name}, {"ref", "refs/tags/" + name}, {"targetCommit", commit}});
    res.set_content(refs.dump(), "application/json");
    return;
  }
  if (api && (parts.size() == 4 || (parts.size() >= 6 && parts[4] == "revision"))) {
    auto rev = parts.size() == 4 ? std::string("main") : join(parts, 5);
    auto commit = commit_of(repo, rev);
    if (!commit) return hub_error(res, 404, "RevisionNotFound", "Invalid rev id: " + rev);
    auto org = repo_id.substr(0, repo_id.find('/'));
    res.set_content(json{{"_id", *commit},
                         {"id", repo_id},
                         {"author", org},
                         {"sha", *commit},
                         {"lastModified", "2026-01-01T00:00:00.000Z"},
                         {"private", false},
                         {"gated", repo.gated ? json("manual") : json(false)},
                         {"disabled", false},
                         {"downloads", 0},
                         {"likes", 0},
                         {"tags", json::array()}}
                        .dump(),
                    "application/json");
    return;
  }
  if (api && parts.size() >= 6 && parts[4] == "tree") {
    auto commit = commit_of(repo, parts[5]);
    if (!commit) return hub_error(res, 404, "RevisionNotFound", "Invalid rev id: " + parts[5]);
    if (repo.gated) return hub_error(res, 403, "GatedRepo", "Access to this repository is restricted");
    auto path = join(parts, 6);
    bool recursive = req.get_param_value("recursive") == "true" ||
                     req.get_param_value("recursive") == "True" ||
                     req.get_param_value("recursive") == "1";
    RepoTree all = tree_of(repo.commits.at(*commit));
    RepoTree selected;
    std::string prefix = path.empty() ? std::string() : path + "/";
    for (auto& e : all) {
      if (e.path.rfind(prefix, 0) != 0 || e.path.size() == prefix.size()) continue;
      if (!recursive && e.path.find('/', prefix.size()) != std::string::npos) continue;
      selected.push_back(std::move(e));
    }
    if (!path.empty() && selected.empty()) {
      res.set_header("X-Repo-Commit", *commit);
      return hub_error(res, 404, "EntryNotFound", path + " does not exist on \"" + parts[5] + "\"");
    }
    std::size_t cursor = 0;
    if (req.has_param("cursor")) cursor = std::stoul(req.get_param_value("cursor"));
    cursor = std::min(cursor, selected.size());
    auto end = std::min(selected.size(), cursor + std::max<std::size_t>(1, page_size));
    RepoTree page(selected.begin() + static_cast<std::ptrdiff_t>(cursor),
                  selected.begin() + static_cast<std::ptrdiff_t>(end));
    if (end < selected.size()) {
      res.set_header("Link", "<http://127.0.0.1:" + std::to_string(port) + req.path +
                                 "?recursive=" + (recursive ? "true" : "false") +
                                 "&expand=false&cursor=" + std::to_string(end) + ">; rel=\"next\"");
    }
    res.set_content(serialize_tree_listing(page), "application/json");
    return;
  }
  if (files) {
    auto commit = commit_of(repo, parts[4]);
    if (!commit) return hub_error(res, 404, "RevisionNotFound", "Invalid rev id: " + parts[4]);
    res.set_header("X-Repo-Commit", *commit);
    if (repo.gated) return hub_error(res, 403, "GatedRepo", "Access to this repository is restricted");
    auto path = join(parts, 5);
    const auto& stored = repo.commits.at(*commit).files;
    auto it = std::find_if(stored.begin(), stored.end(),
                           [&](const StoredFile& f) { return f.path == path; });
    if (it == stored.end()) return hub_error(res, 404, "EntryNotFound", "Entry not found");
    if (it->lfs) {
      res.status = 302;
      res.set_header("Location", "http://127.0.0.1:" + std::to_string(lfs_port) + "/lfs/" + it->sha256);
      res.set_header("X-Linked-Etag", "\"" + it->sha256 + "\"");
      res.set_header("X-Linked-Size", std::to_string(it->content->size()));
      res.set_header("ETag", "\"" + it->sha256 + "\"");
      res.set_content("Found. Redirecting", "text/plain");
      return;
    }
    res.set_header("X-Linked-Size", std::to_string(it->content->size()));
    auto content = it->content;
    auto etag = "\"" + it->oid + "\"";
    return serve_bytes(req, res, content, etag, fault);
  }
  hub_error(res, 404, "", "Not found");
}

void FakeHub::State::handle(int server_port, const httplib::Request& req,
                            httplib::Response& res) {
  // cpp-httplib slices bodies itself when it sees Range; the fake Hub answers Range on its own
  // (so it can also answer it wrongly).
  const_cast<httplib::Request&>(req).ranges.clear();
  std::optional<Fault> fault;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (log.size() < kMaxLoggedRequests) {
      std::string query;
      for (const auto& [k, v] : req.params) query += (query.empty() ? "" : "&") + k + "=" + v;
      log.push_back({req.method, req.path, query, server_port, req.get_header_value("Authorization"),
                     req.get_header_value("Range"), req.get_header_value("If-Range"),
                     req.get_header_value("Accept-Encoding")});
    }
    fault = take_fault(req.path);
    if (server_port == port && token) {
      auto auth = req.get_header_value("Authorization");
      if (auth.empty()) return hub_error(res, 401, "RepoNotFound", "Repository not found");
      if (auth != "Bearer " + *token)
        return hub_error(res, 401, "", "Invalid credentials in Authorization header");
    }
  }
  if (fault && fault->kind == Fault::Kind::status) {
    res.status = fault->status;
    if (!fault->retry_after.empty()) res.set_header("Retry-After", fault->retry_after);
    if (!fault->error_code.empty()) res.set_header("X-Error-Code", fault->error_code);
    res.set_content("injected fault", "text/plain");
    return;
  }
  if (fault && fault->kind == Fault::Kind::no_answer) sleep_bounded(fault->stall);
  if (fault && fault->kind == Fault::Kind::answer) {
    res.status = fault->status;
    for (const auto& [name, value] : fault->headers) res.set_header(name, value);
    res.set_content(fault->answer_body, "application/json");
    return;
  }
  if (fault && fault->kind == Fault::Kind::redirect) {
    res.status = 302;
    res.set_header("Location", fault->location);
    res.set_content("Found", "text/plain");
    return;
  }
  if (server_port == lfs_port) {
    auto parts = split_path(req.target);
    std::shared_ptr<const std::string> content;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (parts.size() == 2 && parts[0] == "lfs" && blobs.count(parts[1])) content = blobs[parts[1]];
    }
    if (!content) return hub_error(res, 404, "", "No such blob");
    return serve_bytes(req, res, content, "\"" + parts[1] + "\"", fault);
  }
  route_hub(req, res, fault);
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
  return static_cast<std::size_t>(std::count_if(state_->log.begin(), state_->log.end(),
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
}

namespace {

Result<void> write_file(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return make_error(ErrorCode::io, "cannot write mirror file", path.string());
  return ok();
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::io, "cannot read mirror file", path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Result<void> FakeHub::write_mirror(const fs::path& dir) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  for (const auto& [id, repo] : state_->repos) {
    auto api = dir / "api" / "kernels" / id;
    json refs{{"branches", json::array()}, {"converts", json::array()}, {"tags", json::array()}};
    for (const auto& [name, commit] : repo.branches)
      refs["branches"].push_back({{"name", name}, {"ref", "refs/heads/" + name}, {"targetCommit", commit}});
    for (const auto& [name, commit] : repo.tags)
      refs["tags"].push_back({{"name", name}, {"ref", "refs/tags/" + name}, {"targetCommit", commit}});
    if (auto r = write_file(api / "refs", refs.dump()); !r) return r;
    auto revision = [&](const std::string& name, const std::string& commit) {
      return write_file(api / "revision" / name, json{{"id", id}, {"sha", commit}}.dump());
    };
    for (const auto& [name, commit] : repo.branches)
      if (auto r = revision(name, commit); !r) return r;
    for (const auto& [name, commit] : repo.tags)
      if (auto r = revision(name, commit); !r) return r;
    for (const auto& [sha, commit] : repo.commits) {
      if (auto r = revision(sha, sha); !r) return r;
      if (auto r = write_file(api / "tree" / sha, serialize_tree_listing(tree_of(commit))); !r) return r;
      for (const auto& f : commit.files) {
        if (auto r = write_file(dir / "kernels" / id / "resolve" / sha / f.path, *f.content); !r) return r;
      }
    }
  }
  return ok();
}

Result<void> FakeHub::load_mirror(const fs::path& dir) {
  std::error_code ec;
  auto api_root = dir / "api" / "kernels";
  if (!fs::is_directory(api_root, ec)) {
    return make_error(ErrorCode::usage, "not a mirror (no api/kernels/)", dir.string());
  }
  std::map<std::string, RepoState> loaded;
  std::map<std::string, std::shared_ptr<const std::string>> blobs;
  for (const auto& org : fs::directory_iterator(api_root, ec)) {
    for (const auto& name : fs::directory_iterator(org.path(), ec)) {
      std::string id = org.path().filename().string() + "/" + name.path().filename().string();
      RepoState repo;
      auto refs_text = read_file(name.path() / "refs");
      if (!refs_text) return std::move(refs_text).error();
      auto refs = json::parse(*refs_text, nullptr, false);
      if (refs.is_discarded()) return make_error(ErrorCode::lockfile_invalid, "bad refs JSON", id);
      for (const char* key : {"branches", "tags"}) {
        for (const auto& r : refs.value(key, json::array())) {
          auto entry = std::make_pair(r.value("name", ""), r.value("targetCommit", ""));
          (std::string(key) == "branches" ? repo.branches : repo.tags).push_back(entry);
        }
      }
      for (const auto& tree_file : fs::directory_iterator(name.path() / "tree", ec)) {
        auto sha = tree_file.path().filename().string();
        auto text = read_file(tree_file.path());
        if (!text) return std::move(text).error();
        auto tree = parse_tree_listing(*text, tree_file.path().string());
        if (!tree) return std::move(tree).error();
        Commit commit;
        commit.sha = sha;
        for (const auto& e : *tree) {
          if (!e.is_file) continue;
          auto bytes = read_file(dir / "kernels" / id / "resolve" / sha / e.path);
          if (!bytes) return std::move(bytes).error();
          auto stored = store(FakeFile{e.path, std::move(*bytes), e.lfs.has_value()});
          if (stored.lfs) blobs[stored.sha256] = stored.content;
          commit.files.push_back(std::move(stored));
        }
        repo.commits[sha] = std::move(commit);
      }
      loaded[id] = std::move(repo);
    }
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  for (auto& [id, repo] : loaded) state_->repos[id] = std::move(repo);
  for (auto& [sha, blob] : blobs) state_->blobs[sha] = blob;
  return ok();
}

}  // namespace kernels::testing
