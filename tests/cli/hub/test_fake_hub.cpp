// The fake Hub answers what huggingface_hub (>= 1.10) and the Python `kernels` package request,
// beyond what our client uses: HEAD on resolve URLs, full ref names as one encoded segment,
// non-recursive sub-path listings, the publisher-trust overview and kernel-status.toml's 404.
// (Requests seen from `kernels lock` / `kernels download` 0.17.2 with huggingface_hub 2.4.0.)
#include <catch2/catch.hpp>

#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "hub_test_support.h"

using namespace kernels;
using namespace kernels::hub_test;

namespace {

constexpr const char* kRepo = "kernels-community/relu";

struct PythonFacing {
  FakeHub hub;
  std::string lfs = random_bytes(5000, 21);
  std::string commit;
  httplib::Client http;
  PythonFacing() : http("127.0.0.1", hub.port()) {
    hub.add_repo(kRepo).branch("v1", {{"build/torch-universal/relu/__init__.py", "x = 1\n"},
                                      {"build/torch-universal/relu/blob.bin", lfs, true}});
    commit = hub.repo(kRepo).commit("v1");
    http.set_follow_location(false);
  }
};

}  // namespace

TEST_CASE("fake Hub: HEAD on a regular file gives ETag, X-Repo-Commit and the size, no body") {
  PythonFacing f;
  auto res = f.http.Head(
      FakeHub::resolve_path(kRepo, "v1", "build/torch-universal/relu/__init__.py"));
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body.empty());
  CHECK(res->get_header_value("X-Repo-Commit") == f.commit);
  CHECK(res->get_header_value("Content-Length") == "6");
  auto etag = res->get_header_value("ETag");
  REQUIRE(etag.size() == 42);
  GitBlobSha1 oid(6);
  oid.update(std::string_view("x = 1\n"));
  CHECK(etag == "\"" + oid.finish_hex().value() + "\"");
}

TEST_CASE("fake Hub: HEAD on an LFS file is a 302 with X-Linked-Etag and X-Linked-Size") {
  PythonFacing f;
  auto res = f.http.Head(FakeHub::resolve_path(kRepo, "v1", "build/torch-universal/relu/blob.bin"));
  REQUIRE(res);
  CHECK(res->status == 302);
  Sha256 sha;
  sha.update(f.lfs);
  auto hex = sha.finish_hex();
  CHECK(res->get_header_value("X-Linked-Etag") == "\"" + hex + "\"");
  CHECK(res->get_header_value("X-Linked-Size") == std::to_string(f.lfs.size()));
  CHECK(res->get_header_value("X-Repo-Commit") == f.commit);
  CHECK(res->get_header_value("Location") ==
        "http://127.0.0.1:" + std::to_string(f.hub.lfs_port()) + FakeHub::lfs_path(hex));
}

TEST_CASE("fake Hub: a full ref name sent as one encoded segment resolves like the branch") {
  PythonFacing f;
  auto res = f.http.Get(
      "/api/kernels/kernels-community/relu/tree/refs%2Fheads%2Fv1/build?recursive=false");
  REQUIRE(res);
  CHECK(res->status == 200);
  auto listing = nlohmann::json::parse(res->body);
  REQUIRE(listing.size() == 1);
  CHECK(listing[0]["path"] == "build/torch-universal");
  CHECK(listing[0]["type"] == "directory");

  auto rev = f.http.Get("/api/kernels/kernels-community/relu/revision/refs%2Fheads%2Fv1");
  REQUIRE(rev);
  CHECK(nlohmann::json::parse(rev->body)["sha"] == f.commit);
}

TEST_CASE("fake Hub: kernel-status.toml absent is a 404 EntryNotFound with X-Repo-Commit") {
  PythonFacing f;
  auto res = f.http.Head(FakeHub::resolve_path(kRepo, f.commit, "kernel-status.toml"));
  REQUIRE(res);
  CHECK(res->status == 404);
  CHECK(res->get_header_value("X-Error-Code") == "EntryNotFound");
  CHECK(res->get_header_value("X-Repo-Commit") == f.commit);
}

TEST_CASE("fake Hub: the publisher overview says trustedKernelPublisher, as configured") {
  PythonFacing f;
  auto res = f.http.Get("/api/organizations/kernels-community/overview");
  REQUIRE(res);
  CHECK(nlohmann::json::parse(res->body)["trustedKernelPublisher"] == true);
  f.hub.set_trusted_publisher(false);
  res = f.http.Get("/api/organizations/kernels-community/overview");
  REQUIRE(res);
  CHECK(nlohmann::json::parse(res->body)["trustedKernelPublisher"] == false);
}

TEST_CASE("fake Hub: the repo without a revision is its main branch, unknown paths are 404") {
  FakeHub hub;
  hub.add_repo(kRepo).branch("main", {{"README.md", "r\n"}});
  httplib::Client http("127.0.0.1", hub.port());
  auto info = http.Get("/api/kernels/kernels-community/relu");
  REQUIRE(info);
  CHECK(nlohmann::json::parse(info->body)["sha"] == hub.repo(kRepo).commit("main"));
  auto other = http.Get("/api/spaces/x/y");
  REQUIRE(other);
  CHECK(other->status == 404);
}

TEST_CASE("fake Hub: the request log names method, target, status and port") {
  std::vector<std::string> lines;
  std::mutex mu;
  FakeHub::Options options;
  options.request_log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(line);
  };
  FakeHub hub(options);
  hub.add_repo(kRepo).branch("v1", {{"a", "a"}});
  httplib::Client http("127.0.0.1", hub.port());
  REQUIRE(http.Get("/api/kernels/kernels-community/relu/refs"));
  // The server logs after it has answered: wait for the line (bounded).
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!lines.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "GET /api/kernels/kernels-community/relu/refs -> 200 (port " +
                        std::to_string(hub.port()) + ")");
}
