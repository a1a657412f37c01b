// HubClient over http(s): the protocol calls on top of HttpEngine.
#include <algorithm>
#include <mutex>
#include <set>

#include "body_sink.h"
#include "http_engine.h"
#include "hub_backends.h"
#include "hub_protocol.h"
#include "transfer_threads.h"

namespace kernels::cli::hub {
namespace {

constexpr std::size_t kMaxApiAnswer = 64u << 20;  // a tree page of a huge repo is a few MiB
// A real listing has no empty pages before its end; a few are tolerated. With the page cap this
// bounds what a hostile server's endless Link chain costs.
constexpr int kMaxTreePages = 10000;
constexpr int kMaxEmptyTreePages = 3;

class HttpHubClient final : public HubClient {
 public:
  HttpHubClient(HubOptions options, std::unique_ptr<HttpEngine> engine)
      : options_(std::move(options)), engine_(std::move(engine)) {}

  Result<RepoRefs> list_refs(const std::string& repo_id) override {
    if (auto r = check_repo_id(repo_id); !r) return std::move(r).error();
    auto body = get_json(url(refs_path(repo_id)), repo_id);
    if (!body) return std::move(body).error();
    return parse_refs(*body, url(refs_path(repo_id)));
  }

  Result<std::string> organization_overview(const std::string& org) override {
    if (auto r = check_repo_id(org + "/x"); !r) return std::move(r).error();
    return get_json(url(organization_overview_path(org)), "organization " + org);
  }

  Result<std::string> resolve_revision(const std::string& repo_id,
                                       const std::string& revision) override {
    if (auto r = check_repo_id(repo_id); !r) return std::move(r).error();
    if (auto r = check_revision(revision); !r) return std::move(r).error();
    auto target = url(revision_path(repo_id, revision));
    auto body = get_json(target, repo_id + "@" + revision);
    if (!body) return std::move(body).error();
    return parse_revision_sha(*body, target);
  }

  Result<RepoTree> list_tree(const std::string& repo_id, const std::string& revision,
                             const std::string& path, bool recursive) override {
    if (auto r = check_repo_id(repo_id); !r) return std::move(r).error();
    if (auto r = check_revision(revision); !r) return std::move(r).error();
    if (!path.empty() && !is_safe_repo_path(path)) {
      return make_error(ErrorCode::usage, "unsafe repo path", path);
    }
    std::string next = url(tree_path(repo_id, revision, path)) +
                       (recursive ? "?recursive=true&expand=false"
                                  : "?recursive=false&expand=false");
    RepoTree tree;
    std::set<std::string> seen;
    std::set<std::string> paths;  // across pages: each page alone is checked by the parser
    int empty_pages = 0;
    for (int page = 0; page < kMaxTreePages; ++page) {
      if (!seen.insert(next).second) {
        return make_error(ErrorCode::lockfile_invalid, "tree pagination loops back to a page",
                          redact_url(next, engine_->endpoint_origin()),
                          "the server's Link headers are broken; check HF_ENDPOINT");
      }
      HttpOutcome outcome;
      auto body = get_json(next, repo_id + "@" + revision, &outcome);
      if (!body) return std::move(body).error();
      auto entries = parse_tree_listing(*body, redact_url(next, engine_->endpoint_origin()));
      if (!entries) return std::move(entries).error();
      for (const TreeEntry& e : *entries) {
        if (!paths.insert(e.path).second) {
          return make_error(ErrorCode::lockfile_invalid,
                            "path \"" + e.path + "\" is listed twice in the tree",
                            redact_url(next, engine_->endpoint_origin()),
                            "the server's tree listing is broken; check HF_ENDPOINT");
        }
      }
      tree.insert(tree.end(), std::make_move_iterator(entries->begin()),
                  std::make_move_iterator(entries->end()));
      auto link = header(outcome.headers, "link");
      auto next_url = link ? next_link(*link) : std::nullopt;
      if (!next_url) return tree;
      if (entries->empty() && ++empty_pages > kMaxEmptyTreePages) {
        return make_error(ErrorCode::lockfile_invalid,
                          "more than " + std::to_string(kMaxEmptyTreePages) +
                              " empty tree pages, each linking to another",
                          redact_url(next, engine_->endpoint_origin()),
                          "the server's Link headers never end; check HF_ENDPOINT");
      }
      auto resolved = resolve_url(outcome.final_url.empty() ? next : outcome.final_url, *next_url);
      if (!resolved) {
        return make_error(ErrorCode::lockfile_invalid, "unusable Link target \"" + *next_url + "\"",
                          redact_url(next, engine_->endpoint_origin()),
                          "the server's Link headers are broken; check HF_ENDPOINT");
      }
      // The engine would refuse a file:// (or other) target as a network failure, exit 7,
      // although nothing failed on the network: the listing itself is malformed.
      if (resolved->rfind("http://", 0) != 0 && resolved->rfind("https://", 0) != 0) {
        return make_error(ErrorCode::lockfile_invalid,
                          "Link target \"" + redact_url(*resolved, engine_->endpoint_origin()) +
                              "\" is not http(s)",
                          redact_url(next, engine_->endpoint_origin()),
                          "the server's Link headers are broken; check HF_ENDPOINT");
      }
      next = std::move(*resolved);
    }
    return make_error(ErrorCode::lockfile_invalid,
                      "more than " + std::to_string(kMaxTreePages) + " tree pages",
                      repo_id + "@" + revision, "the server's Link headers never end");
  }

  Result<std::optional<std::string>> fetch_text(const std::string& repo_id,
                                                const std::string& revision,
                                                const std::string& path,
                                                std::size_t max_bytes) override {
    if (auto r = check_repo_id(repo_id); !r) return std::move(r).error();
    if (auto r = check_revision(revision); !r) return std::move(r).error();
    if (!is_safe_repo_path(path)) return make_error(ErrorCode::usage, "unsafe repo path", path);
    if (options_.offline) return offline_error(repo_id + "@" + revision + ": " + path);
    auto object = repo_id + "@" + revision + ": " + path;
    MemorySink sink(max_bytes, object);
    auto outcome = engine_->get({url(resolve_path(repo_id, revision, path)), &sink, object});
    if (!outcome.result) {
      auto code = header(outcome.headers, "x-error-code");
      // A static mirror answers a bare 404; the Hub says EntryNotFound.
      if (outcome.status == 404 && (!code || *code == "EntryNotFound")) {
        return std::optional<std::string>();
      }
      return std::move(outcome.result).error();
    }
    return std::optional<std::string>(sink.take());
  }

  std::vector<Result<void>> download(std::span<const DownloadRequest> requests,
                                     ProgressSink* progress) override {
    std::vector<Result<void>> results(requests.size());
    std::vector<std::unique_ptr<FileSink>> sinks(requests.size());
    std::vector<HttpRequest> http;
    std::vector<std::size_t> http_index;
    std::uint64_t total = 0;
    for (const auto& r : requests) total += r.size;
    if (progress) progress->on_start(total, requests.size());

    std::uint64_t finished_bytes = 0;  // bytes of files already done before the transfers
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const auto& request = requests[i];
      auto object = download_object(request);
      auto valid = options_.offline ? Result<void>(offline_error(object))
                                    : check_download_request(request);
      if (!valid) {
        results[i] = std::move(valid);
        if (progress) progress->on_file_done(request, results[i]);
        continue;
      }
      sinks[i] = std::make_unique<FileSink>(request, object);
      auto complete = sinks[i]->already_complete();
      if (complete && *complete) {
        finished_bytes += request.size;
        if (progress) progress->on_file_done(request, results[i]);
        continue;
      }
      http.push_back({url(resolve_path(request.repo_id, request.revision, request.path)),
                      sinks[i].get(), object, true, request.size});
      http_index.push_back(i);
    }
    if (http.empty()) return results;

    auto outcomes = run_downloads(http, requests, http_index, sinks, finished_bytes, progress);
    for (std::size_t k = 0; k < outcomes.size(); ++k) {
      results[http_index[k]] = std::move(outcomes[k].result);
    }
    return results;
  }

  TransferStats stats() const override {
    TransferStats total = engine_->stats();
    for (const auto& engine : download_engines_) {
      TransferStats s = engine->stats();
      total.requests += s.requests;
      total.bytes += s.bytes;
      total.hub_requests += s.hub_requests;
    }
    return total;
  }

 private:
  // Runs the transfers on `threads` engines at once, each with a share of the parallel
  // transfers, the bytes balanced between them; the progress callbacks stay on this thread.
  std::vector<HttpOutcome> run_downloads(std::span<HttpRequest> http,
                                         std::span<const DownloadRequest> requests,
                                         const std::vector<std::size_t>& http_index,
                                         const std::vector<std::unique_ptr<FileSink>>& sinks,
                                         std::uint64_t finished_bytes, ProgressSink* progress) {
    auto bytes_held = [&] {
      std::uint64_t held = finished_bytes;
      for (auto i : http_index) held += sinks[i]->bytes_held();
      return held;
    };
    const std::size_t threads = transfer_threads(options_.jobs, http.size());
    if (threads <= 1) {
      HttpCallbacks callbacks;
      if (progress) {
        callbacks.tick = [&] { progress->on_bytes(bytes_held()); };
        callbacks.done = [&](std::size_t k, const HttpOutcome& outcome) {
          progress->on_file_done(requests[http_index[k]], outcome.result);
        };
      }
      return engine_->run(http, callbacks);
    }
    if (auto ready = ensure_download_engines(threads); !ready) {
      std::vector<HttpOutcome> failed(http.size());
      for (auto& outcome : failed) outcome.result = ready.error();
      return failed;
    }

    // Largest first onto the share with the fewest bytes.
    std::vector<std::size_t> order(http.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return requests[http_index[a]].size > requests[http_index[b]].size;
    });
    std::vector<std::vector<std::size_t>> share(threads);
    std::vector<std::uint64_t> share_bytes(threads, 0);
    for (std::size_t k : order) {
      auto t = static_cast<std::size_t>(std::min_element(share_bytes.begin(), share_bytes.end()) -
                                        share_bytes.begin());
      share[t].push_back(k);
      share_bytes[t] += requests[http_index[k]].size;
    }
    for (auto& s : share) std::sort(s.begin(), s.end());  // each share in the caller's order

    std::vector<HttpOutcome> outcomes(http.size());
    std::vector<Result<void>> finished(http.size());  // each set before its index is reported
    run_on_threads(
        threads,
        [&](std::size_t t, const std::function<void(std::size_t)>& report) {
          std::vector<HttpRequest> mine;
          for (std::size_t k : share[t]) mine.push_back(http[k]);
          HttpCallbacks callbacks;
          callbacks.done = [&](std::size_t j, const HttpOutcome& outcome) {
            finished[share[t][j]] = outcome.result;
            report(share[t][j]);
          };
          // The parallel transfers split exactly: 8 on 3 threads run 3 + 3 + 2.
          const int jobs = options_.jobs / static_cast<int>(threads) +
                           (t < static_cast<std::size_t>(options_.jobs) % threads ? 1 : 0);
          auto got = download_engines_[t]->run(mine, callbacks, jobs);
          for (std::size_t j = 0; j < got.size(); ++j) outcomes[share[t][j]] = std::move(got[j]);
        },
        [&](std::size_t k) {
          if (progress) progress->on_file_done(requests[http_index[k]], finished[k]);
        },
        [&] {
          if (progress) progress->on_bytes(bytes_held());
        });
    return outcomes;
  }

  // Engines for parallel downloads, kept (with their connections) across calls. Their log lines
  // are serialised, so the console never sees two at once.
  Result<void> ensure_download_engines(std::size_t threads) {
    if (download_engines_.size() >= threads) return ok();
    HubOptions worker = options_;  // each run() is given its share of the jobs
    if (options_.log) {
      worker.log = [log = options_.log, mu = log_mutex_](HubOptions::LogLevel level,
                                                         std::string_view line) {
        std::lock_guard<std::mutex> lock(*mu);
        log(level, line);
      };
    }
    while (download_engines_.size() < threads) {
      auto engine = HttpEngine::create(worker);
      if (!engine) return std::move(engine).error();
      download_engines_.push_back(std::move(*engine));
    }
    return ok();
  }

  std::string url(const std::string& path) const { return options_.endpoint + "/" + path; }

  Result<std::string> get_json(const std::string& target, const std::string& object,
                               HttpOutcome* outcome_out = nullptr) {
    if (options_.offline) return offline_error(object);
    MemorySink sink(kMaxApiAnswer, object, ErrorCode::lockfile_invalid);
    auto outcome = engine_->get({target, &sink, object});
    if (!outcome.result) {
      Error error = outcome.result.error();
      return error;
    }
    if (outcome_out) *outcome_out = std::move(outcome);
    return sink.take();
  }

  HubOptions options_;
  std::unique_ptr<HttpEngine> engine_;
  std::vector<std::unique_ptr<HttpEngine>> download_engines_;
  std::shared_ptr<std::mutex> log_mutex_ = std::make_shared<std::mutex>();
};

}  // namespace

Result<std::unique_ptr<HubClient>> make_http_hub_client(HubOptions options) {
  auto engine = HttpEngine::create(options);
  if (!engine) return std::move(engine).error();
  return std::unique_ptr<HubClient>(new HttpHubClient(std::move(options), std::move(*engine)));
}

}  // namespace kernels::cli::hub
