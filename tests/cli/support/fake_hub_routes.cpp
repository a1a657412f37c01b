// The fake Hub's HTTP side: routing the Hub protocol, serving bytes with Range, and injecting
// faults.
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fake_hub_state.h"

namespace kernels::testing {
namespace {

using json = nlohmann::json;
using namespace detail;

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

void FakeHub::State::serve_bytes(const httplib::Request& req, httplib::Response& res,
                                 std::shared_ptr<const std::string> content,
                                 const std::string& etag, const std::optional<Fault>& fault) {
  using Kind = Fault::Kind;
  auto has = [&](Kind k) { return fault && fault->kind == k; };
  res.set_header("ETag", etag);
  res.set_header("Accept-Ranges", "bytes");
  res.status = 200;
  auto range = req.get_header_value("Range");
  if (!fault && range.empty() && req.method != "HEAD") {
    // The common case streams the shared bytes with no copy, so the server is not what a
    // download benchmark measures.
    res.set_content_provider(content->size(), "application/octet-stream",
                             [content](std::size_t offset, std::size_t length,
                                       httplib::DataSink& sink) {
                               return sink.write(content->data() + offset,
                                                 std::min(length, content->size() - offset));
                             });
    return;
  }
  auto body = std::make_shared<std::string>(*content);
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
      res.set_header("Content-Range",
                     "bytes 0-" + std::to_string(content->size() - 1) + "/" + total);
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
  if (has(Kind::trickle) && req.method != "HEAD") {
    const auto every = fault->stall;
    const auto until = std::chrono::steady_clock::now() + detail::kMaxStall;
    res.set_content_provider(body->size(), type,
                             [this, body, every, until](std::size_t offset, std::size_t,
                                                        httplib::DataSink& sink) {
                               if (stopping || std::chrono::steady_clock::now() >= until)
                                 return false;
                               sink.write(body->data() + offset, 1);
                               sleep_bounded(every);
                               return true;
                             });
    return;
  }
  if (has(Kind::short_length) && req.method != "HEAD") {
    // The rest arrives after the client has read `keep` bytes and finished this answer, so it
    // sits on the connection as the start of the next answer.
    auto keep = std::min(fault->keep_bytes, body->size());
    auto pause = fault->stall;
    res.set_content_provider(keep, type,
                             [this, body, keep, pause](std::size_t, std::size_t,
                                                       httplib::DataSink& sink) {
                               if (!sink.write(body->data(), keep)) return false;
                               sleep_bounded(pause);
                               sink.write(body->data() + keep, body->size() - keep);
                               return true;
                             });
    return;
  }
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
  res.set_content_provider(body->size(), type,
                           [this, body, keep, stall, stalls](std::size_t offset, std::size_t,
                                                             httplib::DataSink& sink) {
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
    std::string overview = overview_of(parts[2]);
    if (overview.empty()) return hub_error(res, 404, "", "Organization not found");
    res.set_content(overview, "application/json");
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
    res.set_content(detail::refs_json(repo), "application/json");
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
    if (repo.gated)
      return hub_error(res, 403, "GatedRepo", "Access to this repository is restricted");
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
    if (repo.gated)
      return hub_error(res, 403, "GatedRepo", "Access to this repository is restricted");
    auto path = join(parts, 5);
    const auto& stored = repo.commits.at(*commit).files;
    auto it = std::find_if(stored.begin(), stored.end(),
                           [&](const StoredFile& f) { return f.path == path; });
    if (it == stored.end()) return hub_error(res, 404, "EntryNotFound", "Entry not found");
    if (it->lfs) {
      res.status = 302;
      std::string base = lfs_base_url.empty() ? "http://127.0.0.1:" + std::to_string(lfs_port)
                                              : lfs_base_url;
      res.set_header("Location", base + "/lfs/" + it->sha256);
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

void FakeHub::State::handle(int server_port, const httplib::Request& req, httplib::Response& res) {
  const int now = ++in_flight;
  for (int seen = max_in_flight.load();
       now > seen && !max_in_flight.compare_exchange_weak(seen, now);) {}
  struct Leave {
    std::atomic<int>& n;
    ~Leave() { --n; }
  } leave{in_flight};
  // cpp-httplib slices bodies itself when it sees Range; the fake Hub answers Range on its own
  // (so it can also answer it wrongly).
  const_cast<httplib::Request&>(req).ranges.clear();
  std::optional<Fault> fault;
  std::size_t request_number = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (log.size() < kMaxLoggedRequests) {
      std::string query;
      for (const auto& [k, v] : req.params) query += (query.empty() ? "" : "&") + k + "=" + v;
      log.push_back({req.method, req.path, query, server_port,
                     req.get_header_value("Authorization"), req.get_header_value("Range"),
                     req.get_header_value("If-Range"), req.get_header_value("Accept-Encoding")});
    }
    fault = take_fault(req.path);
    request_number = log.size();
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
    for (auto [name, value] : fault->headers) {
      // "{n}" becomes the request's number: a Link that differs on every page.
      for (auto at = value.find("{n}"); at != std::string::npos; at = value.find("{n}", at)) {
        value.replace(at, 3, std::to_string(request_number));
      }
      res.set_header(name, value);
    }
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
      if (parts.size() == 2 && parts[0] == "lfs" && blobs.count(parts[1]))
        content = blobs[parts[1]];
    }
    if (!content) return hub_error(res, 404, "", "No such blob");
    return serve_bytes(req, res, content, "\"" + parts[1] + "\"", fault);
  }
  route_hub(req, res, fault);
}

}  // namespace kernels::testing
