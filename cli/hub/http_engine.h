// Runs GET requests on a libcurl multi handle: up to `jobs` at once, redirects followed by us (so
// the bearer token goes only to the endpoint's origin), retries with backoff and Retry-After,
// Range resume through the BodySink, stall detection, a redacted request log. Internal to
// kernels_hub.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "body_sink.h"
#include "hub_client.h"
#include "hub_protocol.h"

namespace kernels::cli::hub {

struct HttpRequest {
  std::string url;  // absolute http(s) URL
  BodySink* sink = nullptr;
  std::string object;          // names the request in errors, e.g. "org/name@<commit>: build/x.so"
  bool send_if_range = false;  // downloads: resume with If-Range (sink must be a FileSink)
  std::uint64_t expected_bytes = 0;  // the body's expected size: lengthens the deadline
};

struct HttpOutcome {
  Result<void> result;
  long status = 0;        // the final answer's status (0: no answer)
  Headers headers;        // the final answer's headers
  std::string final_url;  // after redirects
};

struct HttpCallbacks {
  std::function<void()> tick;  // every ~100 ms and after each finished request
  std::function<void(std::size_t index, const HttpOutcome&)> done;
};

class HttpEngine {
 public:
  static Result<std::unique_ptr<HttpEngine>> create(const HubOptions& options);
  ~HttpEngine();
  HttpEngine(const HttpEngine&) = delete;
  HttpEngine& operator=(const HttpEngine&) = delete;

  // Runs the requests, at most `max_running` at once (0: the options' jobs).
  std::vector<HttpOutcome> run(std::span<HttpRequest> requests, const HttpCallbacks& callbacks = {},
                               int max_running = 0);
  HttpOutcome get(HttpRequest request);

  TransferStats stats() const { return stats_; }
  const std::string& endpoint_origin() const { return endpoint_origin_; }
  void log(HubOptions::LogLevel level, std::string_view line) const;
  // The bearer token, for redaction only ("" when none).
  std::string_view token_view() const {
    return options_.token ? std::string_view(*options_.token) : std::string_view();
  }

  struct Job;  // one request's state across attempts and redirect hops

 private:
  explicit HttpEngine(const HubOptions& options);
  Result<void> start(Job& job);
  void finish_attempt(Job& job, int curl_code);
  void schedule_retry(Job& job, std::string why, std::optional<std::chrono::milliseconds> wait);
  Error network_error(const Job& job, std::string what) const;
  // transfer_deadline_base + expected_bytes at transfer_min_rate.
  std::chrono::milliseconds transfer_deadline(std::uint64_t expected_bytes) const;
  std::string redact(std::string_view text) const;

  HubOptions options_;
  std::string endpoint_origin_;
  void* multi_ = nullptr;  // CURLM*
  TransferStats stats_;
};

}  // namespace kernels::cli::hub
