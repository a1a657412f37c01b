#include "http_engine.h"

#include "interrupt.h"
#include "kernels/lockfile/text.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

namespace kernels::cli::hub {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMaxRedirects = 10;
constexpr std::uint64_t kMaxDiscardedBody = 1 << 20;

bool is_retryable_curl_code(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return true;
    default: return false;  // TLS verification, bad proxy name, malformed URL: retrying cannot help
  }
}

std::string scheme_of(std::string_view url) {
  auto colon = url.find("://");
  return colon == std::string_view::npos ? std::string() : ascii_lower(url.substr(0, colon));
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

struct HttpEngine::Job {
  HttpEngine* engine = nullptr;
  HttpRequest* request = nullptr;
  std::size_t index = 0;
  enum class State { waiting, running, done } state = State::waiting;
  Clock::time_point not_before{};
  std::string url;
  int hops = 0;
  int failures = 0;
  milliseconds waited_for_server{0};          // Retry-After time already honoured, all attempts
  std::optional<Clock::time_point> deadline;  // set at the first attempt: all attempts together

  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  long status = 0;
  Headers response_headers;
  bool response_started = false;
  std::optional<Error> sink_error;
  std::uint64_t discarded = 0;
  std::uint64_t received = 0;
  std::uint64_t offset = 0;  // this attempt's Range start (0: the whole body)
  bool discard_overflow = false;
  char errbuf[CURL_ERROR_SIZE] = {};

  HttpOutcome outcome;

  bool is_success_status() const { return status >= 200 && status < 300; }

  // The 2xx answer's headers are complete: the sink decides whether the body is acceptable.
  bool start_body() {
    if (response_started) return !sink_error;
    response_started = true;
    close_connection_if_short();
    auto r = request->sink->on_response(status, response_headers);
    if (!r) sink_error = std::move(r).error();
    return !sink_error;
  }

  // An answer whose Content-Length ends before the file does is retried (the sink calls it cut
  // short). If the server sent more than it announced, the rest is still on the connection and
  // the next request there would read it as its own answer (curl: "Received HTTP/0.9 when not
  // allowed"), so that connection is not reused.
  void close_connection_if_short() {
    if (request->expected_bytes == 0) return;
    curl_off_t length = -1;
    if (curl_easy_getinfo(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK ||
        length < 0) {
      return;
    }
    const std::uint64_t start = status == 206 ? offset : 0;
    if (start + static_cast<std::uint64_t>(length) < request->expected_bytes) {
      curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    }
  }

  void release_handle(CURLM* multi) {
    if (easy) {
      curl_multi_remove_handle(multi, easy);
      curl_easy_cleanup(easy);
      easy = nullptr;
    }
    curl_slist_free_all(headers);
    headers = nullptr;
  }
};

namespace {

size_t on_header(char* buffer, size_t size, size_t count, void* userdata) {
  auto* job = static_cast<HttpEngine::Job*>(userdata);
  std::string_view line(buffer, size * count);
  auto trimmed = trim_space(line);
  if (trimmed.substr(0, 5) == "HTTP/") {
    job->status = 0;
    auto space = trimmed.find(' ');
    if (space != std::string_view::npos) {
      long status = 0;
      for (std::size_t i = space + 1;
           i < trimmed.size() && std::isdigit(static_cast<unsigned char>(trimmed[i])); ++i) {
        status = status * 10 + (trimmed[i] - '0');
      }
      job->status = status;
    }
    job->response_headers.clear();
    job->response_started = false;
  } else if (trimmed.empty()) {
    if (job->is_success_status() && !job->start_body()) return 0;
  } else {
    auto colon = trimmed.find(':');
    if (colon != std::string_view::npos) {
      job->response_headers[ascii_lower(trim_space(trimmed.substr(0, colon)))] = std::string(
          trim_space(trimmed.substr(colon + 1)));
    }
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* userdata) {
  auto* job = static_cast<HttpEngine::Job*>(userdata);
  auto n = size * count;
  if (!job->is_success_status()) {
    job->discarded += n;
    if (job->discarded > kMaxDiscardedBody) {
      job->discard_overflow = true;
      return 0;
    }
    return n;
  }
  if (!job->start_body()) return 0;
  job->received += n;
  auto r = job->request->sink->write({reinterpret_cast<const std::uint8_t*>(data), n});
  if (!r) {
    job->sink_error = std::move(r).error();
    return 0;
  }
  return n;
}

}  // namespace

// Wire log (HubOptions::log_wire): headers both ways, Authorization never shown.
static int on_debug(CURL*, curl_infotype type, char* data, size_t size, void* userdata) {
  auto* job = static_cast<HttpEngine::Job*>(userdata);
  const char* prefix = nullptr;
  switch (type) {
    case CURLINFO_TEXT: prefix = "* "; break;
    case CURLINFO_HEADER_IN: prefix = "< "; break;
    case CURLINFO_HEADER_OUT: prefix = "> "; break;
    default: return 0;
  }
  std::string_view text(data, size);
  while (!text.empty()) {
    auto eol = text.find('\n');
    auto line = trim_space(text.substr(0, eol));
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (line.empty()) continue;
    std::string out(prefix);
    auto name = ascii_lower(line.substr(0, line.find(':')));
    if (name == "authorization" || name == "proxy-authorization" || name == "cookie" ||
        name == "set-cookie") {
      out += std::string(line.substr(0, line.find(':'))) + ": <redacted>";
    } else {
      // A server's header values reach the terminal: no escape sequences, no echoed token.
      out += printable_header_value(line, job->engine->token_view());
    }
    job->engine->log(HubOptions::LogLevel::debug, out);
  }
  return 0;
}

HttpEngine::HttpEngine(const HubOptions& options)
    : options_(options), endpoint_origin_(url_origin(options.endpoint)) {}

HttpEngine::~HttpEngine() {
  if (multi_) curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

Result<std::unique_ptr<HttpEngine>> HttpEngine::create(const HubOptions& options) {
  global_init();
  auto scheme = scheme_of(options.endpoint);
  if ((scheme != "http" && scheme != "https") || url_origin(options.endpoint).empty()) {
    return make_error(ErrorCode::usage, "not an http(s) URL", options.endpoint,
                      "set HF_ENDPOINT to https://host[:port] or file:///dir");
  }
  if (options.jobs < 1 || options.max_retries < 0) {
    return make_error(ErrorCode::usage, "jobs must be >= 1 and max_retries >= 0", "HubOptions");
  }
  for (const auto* path : {&options.ca_file, &options.ca_dir}) {
    if (!*path) continue;
    std::error_code ec;
    if (!std::filesystem::exists(**path, ec)) {
      auto var = options.ca_source.empty() ? std::string("the CA bundle") : options.ca_source;
      return make_error(ErrorCode::usage, var + " names a path that does not exist", **path,
                        "fix or unset " + var);
    }
  }
  std::unique_ptr<HttpEngine> engine(new HttpEngine(options));
  auto* multi = curl_multi_init();
  if (!multi) return make_error(ErrorCode::internal, "curl_multi_init failed", "libcurl");
  engine->multi_ = multi;
  // libcurl 7.87-7.88.1 stacks up connections when multiplexing through a proxy (cargo works
  // around the same bug).
  if (options.proxy) curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING);
  return engine;
}

std::string HttpEngine::redact(std::string_view text) const {
  std::string s(text);
  if (options_.token && !options_.token->empty()) {
    for (auto pos = s.find(*options_.token); pos != std::string::npos;
         pos = s.find(*options_.token, pos)) {
      s.replace(pos, options_.token->size(), "<redacted>");
    }
  }
  return s;
}

void HttpEngine::log(HubOptions::LogLevel level, std::string_view line) const {
  if (options_.log) options_.log(level, redact(line));
}

Error HttpEngine::network_error(const Job& job, std::string what) const {
  std::string hint;
  if (options_.proxy) {
    hint = "check the proxy set by " +
           (options_.proxy_source.empty() ? std::string("the proxy option")
                                          : options_.proxy_source) +
           " (" + redact_url(*options_.proxy, "") + ") and the network";
  } else {
    hint = "check the network and HF_ENDPOINT (" + redact_url(options_.endpoint, endpoint_origin_) +
           ")";
  }
  if (!options_.ca_source.empty()) hint += "; CA certificates come from " + options_.ca_source;
  return make_error(ErrorCode::network, redact(what), redact_url(job.url, endpoint_origin_), hint);
}

constexpr milliseconds kDeadlineSlack{100};

milliseconds HttpEngine::transfer_deadline(std::uint64_t expected_bytes) const {
  const std::uint64_t rate = std::max<std::uint64_t>(1, options_.transfer_min_rate);
  const std::uint64_t extra_ms = expected_bytes / rate * 1000 + expected_bytes % rate * 1000 / rate;
  return std::chrono::duration_cast<milliseconds>(options_.transfer_deadline_base) +
         milliseconds(static_cast<std::int64_t>(std::min<std::uint64_t>(extra_ms, 1ull << 40)));
}

Result<void> HttpEngine::start(Job& job) {
  auto offset = job.request->sink->begin_attempt();
  if (!offset) return std::move(offset).error();

  job.status = 0;
  job.response_headers.clear();
  job.response_started = false;
  job.sink_error.reset();
  job.discarded = 0;
  job.received = 0;
  job.offset = *offset;
  job.discard_overflow = false;
  job.errbuf[0] = 0;

  const auto now = Clock::now();
  if (!job.deadline) job.deadline = now + transfer_deadline(job.request->expected_bytes);

  CURL* easy = curl_easy_init();
  if (!easy) return make_error(ErrorCode::internal, "curl_easy_init failed", "libcurl");
  job.easy = easy;

  // The token goes to the endpoint's origin only; every redirect hop is a new request of ours.
  if (options_.token && !options_.token->empty() && url_origin(job.url) == endpoint_origin_) {
    job.headers = curl_slist_append(job.headers,
                                    ("Authorization: Bearer " + *options_.token).c_str());
  }
  job.headers = curl_slist_append(job.headers, "Accept-Encoding: identity");
  if (*offset > 0) {
    job.headers = curl_slist_append(job.headers,
                                    ("Range: bytes=" + std::to_string(*offset) + "-").c_str());
    if (job.request->send_if_range) {
      if (auto* file = dynamic_cast<FileSink*>(job.request->sink)) {
        job.headers = curl_slist_append(job.headers,
                                        ("If-Range: " + file->if_range_etag()).c_str());
      }
    }
  }

  curl_easy_setopt(easy, CURLOPT_URL, job.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PRIVATE, &job);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED));
  // A retry never rides a pooled connection: the failure may have been that connection's.
  if (job.failures > 0) curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, job.headers);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(
                       std::chrono::duration_cast<milliseconds>(options_.connect_timeout).count()));
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(std::max<std::int64_t>(1, options_.stall_timeout.count())));
  // The stall detector never fires for a server that trickles a byte a second; the deadline
  // (over all attempts of this request) does.
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::max<std::int64_t>(
                       1, std::chrono::duration_cast<milliseconds>(*job.deadline - now).count())));
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  // 512 KiB receive buffer instead of libcurl's 16 KiB: a 1 GiB download then costs ~2,000
  // recv/write/hash rounds instead of ~65,000, which is most of the client's CPU time.
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 512L * 1024L);
  if (!options_.user_agent.empty())
    curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
  if (options_.ca_file) curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_file->c_str());
  if (options_.ca_dir) curl_easy_setopt(easy, CURLOPT_CAPATH, options_.ca_dir->c_str());
  if (options_.proxy) curl_easy_setopt(easy, CURLOPT_PROXY, options_.proxy->c_str());
  if (options_.no_proxy) curl_easy_setopt(easy, CURLOPT_NOPROXY, options_.no_proxy->c_str());
  curl_easy_setopt(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &job);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &job);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, job.errbuf);
  if (options_.log_wire && options_.log) {
    curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(easy, CURLOPT_DEBUGDATA, &job);
  }
  if (curl_multi_add_handle(static_cast<CURLM*>(multi_), easy) != CURLM_OK) {
    job.release_handle(static_cast<CURLM*>(multi_));
    return make_error(ErrorCode::internal, "curl_multi_add_handle failed", "libcurl");
  }
  ++stats_.requests;
  if (url_origin(job.url) == endpoint_origin_) ++stats_.hub_requests;
  job.state = Job::State::running;
  log(HubOptions::LogLevel::debug,
      "GET " + redact_url(job.url, endpoint_origin_) +
          (*offset > 0 ? " (resuming at byte " + std::to_string(*offset) + ")" : ""));
  return ok();
}

void HttpEngine::schedule_retry(Job& job, std::string why, std::optional<milliseconds> wait) {
  ++job.failures;
  if (job.failures > options_.max_retries) {
    job.outcome.result = network_error(job, why + " (gave up after " +
                                                std::to_string(job.failures) +
                                                (job.failures == 1 ? " attempt)" : " attempts)"));
    job.state = Job::State::done;
    return;
  }
  milliseconds delay;
  if (wait) {
    // retry_after_cap bounds the server-requested waiting of a request over all its attempts,
    // not each one: a server answering "Retry-After: 86400" every time costs one cap, not one
    // per retry.
    if (job.waited_for_server >= options_.retry_after_cap) {
      job.outcome.result = network_error(job,
                                         why + ": the server asks to wait " +
                                             std::to_string(wait->count() / 1000) +
                                             " s more (Retry-After) after " +
                                             std::to_string(job.waited_for_server.count() / 1000) +
                                             " s of waiting already; gave up");
      job.state = Job::State::done;
      return;
    }
    delay = std::min(*wait, options_.retry_after_cap - job.waited_for_server);
    job.waited_for_server += delay;
  } else {
    auto backoff = options_.backoff_initial;
    for (int i = 1; i < job.failures && backoff < options_.backoff_max; ++i) backoff *= 2;
    delay = std::min(backoff, options_.backoff_max);
  }
  char pause[32];
  std::snprintf(pause, sizeof pause, "%g s", static_cast<double>(delay.count()) / 1000.0);
  log(HubOptions::LogLevel::warning, "network error: " + redact_url(job.url, endpoint_origin_) +
                                         ": " + why + "; retry " + std::to_string(job.failures) +
                                         " of " + std::to_string(options_.max_retries) + " in " +
                                         pause + " (KERNELS_RETRIES sets the number)");
  // Start again from the original URL: redirect targets may be short-lived signed URLs.
  job.url = job.request->url;
  job.hops = 0;
  job.state = Job::State::waiting;
  job.not_before = Clock::now() + delay;
}

void HttpEngine::finish_attempt(Job& job, int code) {
  auto rc = static_cast<CURLcode>(code);
  job.release_handle(static_cast<CURLM*>(multi_));
  stats_.bytes += job.received;
  job.outcome.status = job.status;
  job.outcome.headers = job.response_headers;
  job.outcome.final_url = job.url;
  auto object = redact_url(job.url, endpoint_origin_);
  log(HubOptions::LogLevel::debug,
      "  -> " + (job.status ? "HTTP " + std::to_string(job.status) : std::string("no answer")) +
          (rc != CURLE_OK ? std::string(" (") + curl_easy_strerror(rc) + ")" : std::string()));

  auto done = [&](Result<void> result) {
    job.outcome.result = std::move(result);
    job.state = Job::State::done;
  };

  if (job.sink_error) {
    auto error = std::move(*job.sink_error);
    job.sink_error.reset();
    if (error.code == ErrorCode::network) return schedule_retry(job, error.what, std::nullopt);
    return done(std::move(error));
  }
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && job.discard_overflow)) {
    std::string what = curl_easy_strerror(rc);
    if (job.errbuf[0]) what += std::string(": ") + job.errbuf;
    // libcurl's timer starts a little after ours and rounds: a timeout this close to the
    // deadline is the deadline, not a stall worth a retry with no time left.
    if (rc == CURLE_OPERATION_TIMEDOUT && job.deadline &&
        Clock::now() + kDeadlineSlack >= *job.deadline) {
      return done(network_error(
          job, "did not finish within its deadline of " +
                   std::to_string(transfer_deadline(job.request->expected_bytes).count() / 1000) +
                   " s (" + std::to_string(options_.transfer_deadline_base.count()) +
                   " s plus 1 s per " + std::to_string(options_.transfer_min_rate / 1024) +
                   " KiB): the server is far too slow: " + what));
    }
    if (rc == CURLE_PARTIAL_FILE) {
      what = "truncated transfer: the connection closed before the end of the answer (" + what +
             ")";
    }
    if (rc == CURLE_UNSUPPORTED_PROTOCOL &&
        std::string_view(job.errbuf).find("HTTP/0.9") != std::string_view::npos) {
      // What curl reports when a connection still holds bytes of an earlier answer that was
      // longer than its Content-Length: a broken server or proxy, worth a retry on a new
      // connection (retries never reuse one).
      what =
          "the answer on this connection was not an HTTP answer (bytes left over from an "
          "earlier answer longer than its Content-Length?)";
      return schedule_retry(job, what, std::nullopt);
    }
    if (rc == CURLE_OPERATION_TIMEDOUT && job.status != 0) {
      what = "transfer stalled (less than 1 byte/s for " +
             std::to_string(options_.stall_timeout.count()) + " s): " + what;
    }
    if (is_retryable_curl_code(rc)) return schedule_retry(job, what, std::nullopt);
    return done(network_error(job, what));
  }

  if (job.status >= 300 && job.status < 400 && job.status != 304) {
    auto location = header(job.response_headers, "location");
    if (!location) return done(http_error(job.status, job.response_headers, object, token_view()));
    auto next = resolve_url(job.url, *location);
    auto next_scheme = next ? scheme_of(*next) : std::string();
    if (!next || (next_scheme != "http" && next_scheme != "https")) {
      return done(make_error(ErrorCode::http_permanent, "redirect to an unsupported URL", object,
                             "the server redirects outside http(s); check HF_ENDPOINT"));
    }
    if (scheme_of(job.url) == "https" && next_scheme == "http") {
      return done(make_error(ErrorCode::http_permanent, "redirect from https to plain http refused",
                             object,
                             "the server tried to downgrade the connection; check HF_ENDPOINT"));
    }
    if (++job.hops > kMaxRedirects) {
      return done(make_error(ErrorCode::http_permanent,
                             "more than " + std::to_string(kMaxRedirects) + " redirects", object,
                             "the server redirects in a loop; check HF_ENDPOINT"));
    }
    log(HubOptions::LogLevel::debug, "  redirect to " + redact_url(*next, endpoint_origin_));
    job.url = std::move(*next);
    job.state = Job::State::waiting;
    job.not_before = Clock::now();
    return;
  }
  if (job.is_success_status()) {
    // A 2xx with an empty body never reached the write callback.
    if (!job.start_body()) {
      auto error = std::move(*job.sink_error);
      job.sink_error.reset();
      if (error.code == ErrorCode::network) return schedule_retry(job, error.what, std::nullopt);
      return done(std::move(error));
    }
    auto finished = job.request->sink->finish();
    if (!finished && finished.error().code == ErrorCode::network) {
      return schedule_retry(job, finished.error().what, std::nullopt);
    }
    return done(std::move(finished));
  }
  if (is_retryable_status(job.status)) {
    std::optional<milliseconds> wait;
    if (auto after = header(job.response_headers, "retry-after")) {
      wait = parse_retry_after(*after, std::chrono::system_clock::now());
    }
    return schedule_retry(job, "HTTP " + std::to_string(job.status), wait);
  }
  if (job.status == 416 && job.request->send_if_range) {
    // Our Range was not satisfiable: the partial file is not a prefix of this file.
    if (auto* file = dynamic_cast<FileSink*>(job.request->sink)) {
      file->discard();
      return schedule_retry(job, "HTTP 416 for a resumed download; starting over", std::nullopt);
    }
  }
  done(http_error(job.status, job.response_headers, object, token_view()));
}

std::vector<HttpOutcome> HttpEngine::run(std::span<HttpRequest> requests,
                                         const HttpCallbacks& callbacks, int max_running_jobs) {
  auto* multi = static_cast<CURLM*>(multi_);
  std::vector<std::unique_ptr<Job>> jobs;
  jobs.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto job = std::make_unique<Job>();
    job->engine = this;
    job->request = &requests[i];
    job->index = i;
    job->url = requests[i].url;
    jobs.push_back(std::move(job));
  }
  std::size_t remaining = jobs.size();
  int running = 0;
  const int max_running = std::max(1, max_running_jobs > 0 ? max_running_jobs : options_.jobs);
  auto last_tick = Clock::now();
  auto finish_job = [&](Job& job) {
    --remaining;
    if (callbacks.done) callbacks.done(job.index, job.outcome);
  };
  // Jobs never started run in order; jobs waiting for a retry or a redirect hop sit in `delayed`
  // until their time comes, and go first when it has.
  std::size_t next_fresh = 0;
  std::vector<Job*> delayed;
  auto launch = [&](Job& job) {
    if (auto started = start(job); !started) {
      job.release_handle(multi);
      job.outcome.result = std::move(started).error();
      job.state = Job::State::done;
      finish_job(job);
      return;
    }
    ++running;
  };

  while (remaining > 0) {
    if (interrupted()) {
      // Every transfer ends now, as a failure the caller cleans up after (its temp file).
      for (auto& job : jobs) {
        if (job->state == Job::State::done) continue;
        if (job->state == Job::State::running) --running;
        job->release_handle(multi);
        job->outcome.result = make_error(ErrorCode::network, "interrupted",
                                         redact_url(job->url, endpoint_origin_));
        job->state = Job::State::done;
        finish_job(*job);
      }
      break;
    }
    auto now = Clock::now();
    for (auto it = delayed.begin(); it != delayed.end() && running < max_running;) {
      if ((*it)->not_before > now) {
        ++it;
        continue;
      }
      Job* job = *it;
      it = delayed.erase(it);
      launch(*job);
    }
    while (running < max_running && next_fresh < jobs.size()) launch(*jobs[next_fresh++]);
    if (remaining == 0) break;

    int still_running = 0;
    curl_multi_perform(multi, &still_running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      auto code = msg->data.result;
      Job* job = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &job);
      if (!job) continue;
      finish_attempt(*job, code);
      --running;
      if (job->state == Job::State::done) finish_job(*job);
      if (job->state == Job::State::waiting) delayed.push_back(job);
      if (callbacks.tick) callbacks.tick();
    }
    if (remaining == 0) break;

    // Sleep until there is socket activity, a retry is due, or the next progress tick. A job
    // that could start now makes the wait zero only when there is a free slot for it.
    milliseconds wait{100};
    now = Clock::now();
    if (running < max_running) {
      if (next_fresh < jobs.size()) wait = milliseconds{0};
      for (const Job* job : delayed) {
        auto until = std::chrono::duration_cast<milliseconds>(job->not_before - now);
        wait = std::max(milliseconds{0}, std::min(wait, until));
      }
    }
    if (running > 0) {
      curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait.count()), nullptr);
    } else if (wait.count() > 0) {
      std::this_thread::sleep_for(wait);
    }
    if (callbacks.tick && Clock::now() - last_tick >= milliseconds{100}) {
      last_tick = Clock::now();
      callbacks.tick();
    }
  }
  std::vector<HttpOutcome> outcomes;
  outcomes.reserve(jobs.size());
  for (auto& job : jobs) {
    job->outcome.final_url = redact_url(job->outcome.final_url, endpoint_origin_);
    outcomes.push_back(std::move(job->outcome));
  }
  return outcomes;
}

HttpOutcome HttpEngine::get(HttpRequest request) {
  auto outcomes = run({&request, 1});
  return std::move(outcomes.front());
}

}  // namespace kernels::cli::hub
