// Retries: which failures are retried, how often, how long the client waits.
#include <catch2/catch.hpp>

#include "hub_test_support.h"
#include "support/local_port.h"

using namespace kernels;
using namespace kernels::hub_test;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr const char* kRepo = "org/retry";

FakeHub& with_repo(FakeHub& hub) {
  hub.add_repo(kRepo).branch("v1", {{"a.txt", "alpha\n"}});
  return hub;
}

}  // namespace

TEST_CASE("503 twice, then 200: success after exactly three requests") {
  FakeHub hub;
  with_repo(hub);
  hub.fault(FakeHub::refs_path(kRepo), Fault::http(503, 2));
  std::vector<std::string> warnings;
  auto options = fast_options(hub.endpoint());
  options.log = [&](HubOptions::LogLevel level, std::string_view line) {
    if (level == HubOptions::LogLevel::warning) warnings.emplace_back(line);
  };
  auto client = make_client(options);
  auto refs = client->list_refs(kRepo);
  REQUIRE(refs.ok());
  CHECK(hub.request_count(FakeHub::refs_path(kRepo)) == 3);
  CHECK(client->stats().requests == 3);
  REQUIRE(warnings.size() == 2);
  CHECK_THAT(warnings[0], Catch::Contains("HTTP 503") && Catch::Contains("retry 1 of 3 in 0.01 s"));
}

TEST_CASE("every retryable status is retried: 408, 429, 500, 502, 503, 504") {
  for (int status : {408, 429, 500, 502, 503, 504}) {
    INFO(status);
    FakeHub hub;
    with_repo(hub);
    hub.fault(FakeHub::refs_path(kRepo), Fault::http(status, 1));
    auto client = make_client(fast_options(hub.endpoint()));
    CHECK(client->list_refs(kRepo).ok());
    CHECK(hub.request_count() == 2);
  }
}

TEST_CASE("429 with Retry-After: 1 waits about a second (not the 10 ms backoff)") {
  FakeHub hub;
  with_repo(hub);
  hub.fault(FakeHub::refs_path(kRepo), Fault::http(429, 1, "1"));
  auto client = make_client(fast_options(hub.endpoint()));
  auto start = Clock::now();
  REQUIRE(client->list_refs(kRepo).ok());
  auto elapsed = Clock::now() - start;
  CHECK(elapsed >= milliseconds(950));
  CHECK(elapsed < milliseconds(3000));
  CHECK(hub.request_count() == 2);
}

TEST_CASE("Retry-After is capped by retry_after_cap") {
  FakeHub hub;
  with_repo(hub);
  hub.fault(FakeHub::refs_path(kRepo), Fault::http(503, 1, "999999"));
  auto options = fast_options(hub.endpoint());
  options.retry_after_cap = milliseconds(200);
  auto client = make_client(options);
  auto start = Clock::now();
  REQUIRE(client->list_refs(kRepo).ok());
  auto elapsed = Clock::now() - start;
  CHECK(elapsed >= milliseconds(190));
  CHECK(elapsed < milliseconds(2000));
}

TEST_CASE("a garbage Retry-After falls back to the backoff") {
  FakeHub hub;
  with_repo(hub);
  hub.fault(FakeHub::refs_path(kRepo), Fault::http(503, 1, "-1"));
  auto client = make_client(fast_options(hub.endpoint()));
  auto start = Clock::now();
  REQUIRE(client->list_refs(kRepo).ok());
  CHECK(Clock::now() - start < milliseconds(1000));
}

TEST_CASE("retries are bounded: a 500 forever gives network after 1 + max_retries requests") {
  FakeHub hub;
  with_repo(hub);
  hub.fault(FakeHub::refs_path(kRepo), Fault::http(500, -1));
  auto options = fast_options(hub.endpoint());
  options.max_retries = 4;
  auto client = make_client(options);
  auto refs = client->list_refs(kRepo);
  REQUIRE_FALSE(refs.ok());
  CHECK(refs.error().code == ErrorCode::network);
  CHECK_THAT(refs.error().what, Catch::Contains("HTTP 500") && Catch::Contains("5 attempts"));
  CHECK(hub.request_count() == 5);
}

TEST_CASE("backoff doubles up to backoff_max") {
  FakeHub hub;
  with_repo(hub);
  hub.fault(FakeHub::refs_path(kRepo), Fault::http(503, -1));
  auto options = fast_options(hub.endpoint());
  options.max_retries = 4;
  options.backoff_initial = milliseconds(100);
  options.backoff_max = milliseconds(200);
  auto client = make_client(options);
  auto start = Clock::now();
  REQUIRE_FALSE(client->list_refs(kRepo).ok());
  auto elapsed = Clock::now() - start;
  // 100 + 200 + 200 + 200 ms of sleep.
  CHECK(elapsed >= milliseconds(700));
  CHECK(elapsed < milliseconds(2500));
}

TEST_CASE("permanent errors are never retried: 400, 401, 403, 404, 410") {
  for (int status : {400, 401, 403, 404, 410}) {
    INFO(status);
    FakeHub hub;
    with_repo(hub);
    hub.fault(FakeHub::refs_path(kRepo), Fault::http(status, -1));
    auto client = make_client(fast_options(hub.endpoint()));
    auto refs = client->list_refs(kRepo);
    REQUIRE_FALSE(refs.ok());
    CHECK(refs.error().code == ErrorCode::http_permanent);
    CHECK(hub.request_count() == 1);
  }
}

TEST_CASE("connection refused is retried, then reported as a network error") {
  const test_support::RefusingPort refusing;
  auto options = fast_options(refusing.url());
  options.max_retries = 2;
  std::size_t warnings = 0;
  options.log = [&](HubOptions::LogLevel level, std::string_view) {
    warnings += level == HubOptions::LogLevel::warning;
  };
  auto client = make_client(options);
  auto refs = client->list_refs(kRepo);
  REQUIRE_FALSE(refs.ok());
  CHECK(refs.error().code == ErrorCode::network);
  CHECK_THAT(refs.error().hint, Catch::Contains("HF_ENDPOINT"));
  CHECK(client->stats().requests == 3);
  CHECK(warnings == 2);
}

TEST_CASE("a file download retried after 503 restarts at the Hub URL and succeeds") {
  FakeHub hub;
  hub.add_repo(kRepo).branch("v1", {{"k.so", random_bytes(5000, 3), true}});
  auto commit = hub.repo(kRepo).commit("v1");
  TempDir dir;
  auto client = make_client(fast_options(hub.endpoint()));
  auto r = request_for(*client, kRepo, commit, "k.so", dir.path());
  hub.reset_counts();
  hub.fault(FakeHub::lfs_path(r.digest.hex), Fault::http(503, 1));
  auto results = client->download({&r, 1});
  REQUIRE(results[0].ok());
  // 302 + 503 on the LFS port, then 302 + 200.
  CHECK(hub.request_count(FakeHub::resolve_path(kRepo, commit, "k.so")) == 2);
  CHECK(hub.request_count(FakeHub::lfs_path(r.digest.hex)) == 2);
}

// Regression (issue 12, defect 10): a huge Retry-After on every answer cost the cap once per
// retry (6 x 60 s by default); the cap now bounds the waiting of all attempts together.
TEST_CASE("retry_after_cap bounds the Retry-After waiting of all attempts together") {
  FakeHub hub;
  with_repo(hub);
  hub.fault(FakeHub::refs_path(kRepo), Fault::http(503, -1, "999999"));
  auto options = fast_options(hub.endpoint());
  options.retry_after_cap = milliseconds(300);
  options.max_retries = 5;
  auto client = make_client(options);
  auto start = Clock::now();
  auto refs = client->list_refs(kRepo);
  auto elapsed = Clock::now() - start;
  REQUIRE_FALSE(refs.ok());
  CHECK(refs.error().code == ErrorCode::network);
  CHECK_THAT(refs.error().what, Catch::Contains("Retry-After"));
  CHECK(hub.request_count() == 2);  // one wait of the cap, then it gives up
  CHECK(elapsed < milliseconds(1500));
}
