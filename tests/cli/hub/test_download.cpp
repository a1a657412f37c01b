// Downloads against the fake Hub: redirects, parallelism, resume, and every way a body can lie.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "hub_test_support.h"

using namespace kernels;
using namespace kernels::hub_test;

namespace {

constexpr const char* kRepo = "org/files";

struct Fixture {
  FakeHub hub;
  TempDir dir;
  std::string small = "hello, kernels\n";
  std::string big = random_bytes(200000, 7);
  std::string lfs = random_bytes(150000, 8);
  std::string commit;

  Fixture() {
    hub.add_repo(kRepo).branch("v1",
                               {{"small.txt", small}, {"big.bin", big}, {"build/k.so", lfs, true}});
    commit = hub.repo(kRepo).commit("v1");
  }
  DownloadRequest request(HubClient& client, const std::string& path) {
    auto r = request_for(client, kRepo, commit, path, dir.path());
    hub.reset_counts();
    return r;
  }
  std::string path_of(const std::string& file) const {
    return FakeHub::resolve_path(kRepo, commit, file);
  }
};

struct RecordingProgress : cli::ProgressSink {
  std::uint64_t total = 0;
  std::size_t files = 0;
  std::uint64_t last_bytes = 0;
  std::size_t done = 0;
  void on_start(std::uint64_t t, std::size_t f) override { total = t, files = f; }
  void on_bytes(std::uint64_t b) override { last_bytes = b; }
  void on_file_done(const DownloadRequest&, const Result<void>&) override { ++done; }
};

}  // namespace

TEST_CASE("regular and LFS files download and verify, LFS goes through a 302 to the LFS port") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto requests = requests_for(fetch_tree(*client, kRepo, f.commit), kRepo, f.commit, f.dir.path());
  REQUIRE(requests.size() == 3);
  f.hub.reset_counts();
  auto before = client->stats().requests;
  RecordingProgress progress;
  auto results = client->download(requests, &progress);
  for (std::size_t i = 0; i < results.size(); ++i) {
    INFO(requests[i].path);
    REQUIRE(results[i].ok());
  }
  for (const auto& r : requests) {
    std::string expected = r.path == "small.txt" ? f.small : r.path == "big.bin" ? f.big : f.lfs;
    CHECK(read_file(r.temp_path) == expected);
  }
  // One GET per regular file; the LFS file is one GET on the Hub (302) and one on the LFS port.
  CHECK(client->stats().requests - before == 4);
  CHECK(f.hub.request_count(f.path_of("build/k.so")) == 1);
  auto lfs_requests = 0;
  for (const auto& r : f.hub.requests()) lfs_requests += r.port == f.hub.lfs_port();
  CHECK(lfs_requests == 1);
  CHECK(client->stats().hub_requests - before == 3);
  CHECK(progress.files == 3);
  CHECK(progress.done == 3);
  CHECK(progress.total == f.small.size() + f.big.size() + f.lfs.size());
  CHECK(progress.last_bytes == progress.total);
}

TEST_CASE("whole flow for one repo: refs + tree + one GET per file, no HEAD") {
  FakeHub hub;
  std::vector<FakeFile> files;
  for (int i = 0; i < 12; ++i)
    files.push_back({"build/v/f" + std::to_string(i), random_bytes(1000 + i, i)});
  hub.add_repo("org/flow").branch("v1", files);
  TempDir dir;
  auto client = make_client(fast_options(hub.endpoint()));
  auto refs = client->list_refs("org/flow");
  REQUIRE(refs.ok());
  auto commit = refs->versions().at(1);
  auto tree = client->list_tree("org/flow", commit);
  REQUIRE(tree.ok());
  auto requests = requests_for(*tree, "org/flow", commit, dir.path());
  auto results = client->download(requests);
  for (const auto& r : results) REQUIRE(r.ok());
  CHECK(client->stats().requests == requests.size() + 2);
  CHECK(client->stats().requests <= requests.size() + 3);
  for (const auto& r : hub.requests()) CHECK(r.method == "GET");
}

TEST_CASE("parallel download of many files: all correct, one request each") {
  FakeHub hub;
  std::vector<FakeFile> files;
  for (int i = 0; i < 48; ++i) {
    files.push_back({"build/many/f" + std::to_string(i) + ".bin",
                     random_bytes(20000 + 97 * i, 100 + i), i % 4 == 0});
  }
  hub.add_repo("org/many").branch("v1", files);
  auto commit = hub.repo("org/many").commit("v1");
  TempDir dir;
  auto options = fast_options(hub.endpoint());
  options.jobs = 8;
  auto client = make_client(options);
  auto requests = requests_for(fetch_tree(*client, "org/many", commit), "org/many", commit,
                               dir.path());
  REQUIRE(requests.size() == 48);
  hub.reset_counts();
  auto results = client->download(requests);
  for (std::size_t i = 0; i < results.size(); ++i) {
    INFO(requests[i].path);
    REQUIRE(results[i].ok());
    auto index = std::stoi(requests[i].path.substr(std::string("build/many/f").size()));
    CHECK(read_file(requests[i].temp_path) == random_bytes(20000 + 97 * index, 100 + index));
  }
  CHECK(hub.request_count() == 48 + 12);  // 12 LFS files: a 302 and a blob GET each
}

TEST_CASE("jobs bounds the transfers in flight across the download threads") {
  FakeHub hub;
  std::vector<FakeFile> files;
  for (int i = 0; i < 12; ++i) {
    files.push_back(
        {"build/slow/f" + std::to_string(i) + ".bin", random_bytes(5000 + i, 300 + i), false});
  }
  hub.add_repo("org/slow").branch("v1", files);
  auto commit = hub.repo("org/slow").commit("v1");
  for (int jobs : {1, 3, 5}) {
    INFO("jobs " << jobs);
    TempDir dir;
    auto options = fast_options(hub.endpoint());
    options.jobs = jobs;
    auto client = make_client(options);
    auto requests = requests_for(fetch_tree(*client, "org/slow", commit), "org/slow", commit,
                                 dir.path());
    REQUIRE(requests.size() == 12);
    for (const auto& r : requests) {  // every answer waits 100 ms, so transfers overlap
      Fault slow;
      slow.kind = Fault::Kind::no_answer;
      slow.stall = std::chrono::milliseconds(100);
      hub.fault(FakeHub::resolve_path("org/slow", commit, r.path), slow);
    }
    hub.reset_counts();
    auto results = client->download(requests);
    for (const auto& result : results) REQUIRE(result.ok());
    CHECK(hub.max_concurrent_requests() <= jobs);
    CHECK(hub.max_concurrent_requests() >= std::min(jobs, 2));  // they did run in parallel
  }
}

TEST_CASE("resume: a partial temp file is continued with Range and If-Range, digest over all") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "big.bin");
  write_file(r.temp_path, f.big.substr(0, 50000));
  auto bytes_before = client->stats().bytes;
  auto results = client->download({&r, 1});
  REQUIRE(results[0].ok());
  CHECK(read_file(r.temp_path) == f.big);
  auto log = f.hub.requests();
  REQUIRE(log.size() == 1);
  CHECK(log[0].range == "bytes=50000-");
  CHECK(log[0].if_range == "\"" + r.digest.hex + "\"");
  CHECK(client->stats().bytes - bytes_before == f.big.size() - 50000);
}

TEST_CASE("resume of an LFS file: the Range goes to the LFS port after the redirect") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "build/k.so");
  write_file(r.temp_path, f.lfs.substr(0, 1000));
  auto results = client->download({&r, 1});
  REQUIRE(results[0].ok());
  CHECK(read_file(r.temp_path) == f.lfs);
  bool saw_range_on_lfs = false;
  for (const auto& rec : f.hub.requests())
    saw_range_on_lfs |= rec.port == f.hub.lfs_port() && rec.range == "bytes=1000-";
  CHECK(saw_range_on_lfs);
}

TEST_CASE("resume of a partial file holding wrong bytes fails the digest and deletes it") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "big.bin");
  write_file(r.temp_path, std::string(50000, 'Z'));
  auto results = client->download({&r, 1});
  REQUIRE_FALSE(results[0].ok());
  CHECK(results[0].error().code == ErrorCode::integrity_mismatch);
  CHECK_FALSE(fs::exists(r.temp_path));
}

TEST_CASE("a 200 answer to a Range request restarts from zero") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "big.bin");
  write_file(r.temp_path, f.big.substr(0, 70000));
  f.hub.fault(f.path_of("big.bin"), Fault::body(Fault::Kind::ignore_range));
  auto results = client->download({&r, 1});
  REQUIRE(results[0].ok());
  CHECK(read_file(r.temp_path) == f.big);
  CHECK(f.hub.request_count() == 1);
}

TEST_CASE("a 206 that starts at the wrong offset is never spliced: retried from zero") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "big.bin");
  write_file(r.temp_path, f.big.substr(0, 70000));
  f.hub.fault(f.path_of("big.bin"), Fault::body(Fault::Kind::wrong_range_start));
  auto results = client->download({&r, 1});
  REQUIRE(results[0].ok());
  CHECK(read_file(r.temp_path) == f.big);
  auto log = f.hub.requests();
  REQUIRE(log.size() == 2);
  CHECK(log[0].range == "bytes=70000-");
  CHECK(log[1].range.empty());
}

TEST_CASE("truncated body (Content-Length larger than the body) is resumed on retry") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "big.bin");
  f.hub.fault(f.path_of("big.bin"), Fault::body(Fault::Kind::truncate, 1, 60000));
  auto results = client->download({&r, 1});
  REQUIRE(results[0].ok());
  CHECK(read_file(r.temp_path) == f.big);
  auto log = f.hub.requests();
  REQUIRE(log.size() == 2);
  CHECK(log[1].range == "bytes=60000-");
}

TEST_CASE("truncated body without Content-Length (clean close) is caught and resumed") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "big.bin");
  f.hub.fault(f.path_of("big.bin"), Fault::body(Fault::Kind::truncate_no_length, 1, 30000));
  auto results = client->download({&r, 1});
  REQUIRE(results[0].ok());
  CHECK(read_file(r.temp_path) == f.big);
  auto log = f.hub.requests();
  REQUIRE(log.size() == 2);
  CHECK(log[1].range == "bytes=30000-");
}

TEST_CASE(
    "an answer shorter than the file is resumed on a fresh connection, never read as HTTP/0.9") {
  // issue 12 #15: the server announces (and sends) 60000 bytes of 200000, then sends the rest on
  // the kept-alive connection. Before, the retry rode that connection and read the leftover bytes
  // as its answer: "Received HTTP/0.9 when not allowed", not retried (exit 7).
  Fixture f;
  auto options = fast_options(f.hub.endpoint());
  std::vector<std::string> warnings;
  options.log = [&](HubOptions::LogLevel level, std::string_view line) {
    if (level == HubOptions::LogLevel::warning) warnings.emplace_back(line);
  };
  options.jobs = 1;  // one connection: small.txt goes next on the one big.bin's answer used
  auto client = make_client(options);
  auto big = f.request(*client, "big.bin");
  auto small = f.request(*client, "small.txt");
  auto fault = Fault::body(Fault::Kind::short_length, 1, 60000);
  fault.stall = std::chrono::milliseconds(300);
  f.hub.fault(f.path_of("big.bin"), fault);
  std::vector<DownloadRequest> both{big, small};
  auto results = client->download(both);
  REQUIRE(results[0].ok());
  REQUIRE(results[1].ok());
  CHECK(read_file(both[0].temp_path) == f.big);
  CHECK(read_file(both[1].temp_path) == f.small);
  std::string big_range;
  for (const auto& record : f.hub.requests()) {
    if (record.path == f.path_of("big.bin") && !record.range.empty()) big_range = record.range;
  }
  CHECK(big_range == "bytes=60000-");
  // The short answer is the only failure: neither small.txt nor the retry read its leftovers.
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("ended after 60000 of 200000 bytes"));
  CHECK_THAT(warnings[0], !Catch::Contains("HTTP/0.9"));
}

TEST_CASE("bytes left on a connection by an earlier answer are a retried transfer error") {
  // An answer longer than its Content-Length, which looked complete to the request it answered,
  // leaves its tail on the connection, where the next request finds it. That request is retried
  // on a new connection and the message says what happened instead of curl's "Received HTTP/0.9".
  Fixture f;
  auto options = fast_options(f.hub.endpoint());
  std::vector<std::string> warnings;
  options.log = [&](HubOptions::LogLevel level, std::string_view line) {
    if (level == HubOptions::LogLevel::warning) warnings.emplace_back(line);
  };
  options.jobs = 1;
  auto client = make_client(options);
  auto small = f.request(*client, "small.txt");
  auto big = f.request(*client, "big.bin");
  // small.txt announces 5 bytes of its 15; asked for exactly those 5, the client finishes it
  // and its other 10 bytes reach the connection big.bin goes out on (one job: one connection).
  small.size = 5;
  Sha256 prefix;
  prefix.update(std::string_view(f.small).substr(0, 5));
  small.digest = FileDigest{FileDigest::Kind::sha256, prefix.finish_hex()};
  auto fault = Fault::body(Fault::Kind::short_length, 1, 5);
  fault.stall = std::chrono::milliseconds(300);
  f.hub.fault(f.path_of("small.txt"), fault);
  f.hub.reset_counts();
  std::vector<DownloadRequest> both{small, big};
  auto results = client->download(both);
  REQUIRE(results[0].ok());
  REQUIRE(results[1].ok());
  CHECK(read_file(both[1].temp_path) == f.big);
  bool named = false;
  for (const auto& w : warnings) {
    CHECK_THAT(w, !Catch::Contains("HTTP/0.9"));
    named = named || w.find("not an HTTP answer") != std::string::npos;
  }
  CHECK(named);
}

TEST_CASE("a body truncated on every attempt ends in a network error, the partial file stays") {
  Fixture f;
  auto options = fast_options(f.hub.endpoint());
  options.max_retries = 2;
  auto client = make_client(options);
  auto r = f.request(*client, "big.bin");
  // Every attempt delivers 1000 more bytes and then the connection drops.
  f.hub.fault(f.path_of("big.bin"), Fault::body(Fault::Kind::truncate, -1, 1000));
  auto results = client->download({&r, 1});
  REQUIRE_FALSE(results[0].ok());
  CHECK(results[0].error().code == ErrorCode::network);
  CHECK_THAT(results[0].error().what, Catch::Contains("3 attempts"));
  CHECK(f.hub.request_count() == 3);
  REQUIRE(fs::exists(r.temp_path));
  CHECK(read_file(r.temp_path) == f.big.substr(0, 3000));
}

TEST_CASE("one extra byte aborts at once with integrity_mismatch, nothing is kept, no retry") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "big.bin");
  f.hub.fault(f.path_of("big.bin"), Fault::body(Fault::Kind::extra_byte));
  auto results = client->download({&r, 1});
  REQUIRE_FALSE(results[0].ok());
  CHECK(results[0].error().code == ErrorCode::integrity_mismatch);
  CHECK_FALSE(fs::exists(r.temp_path));
  CHECK(f.hub.request_count() == 1);
}

TEST_CASE("one flipped byte fails with integrity_mismatch naming both digests, nothing kept") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  for (std::string file : {"big.bin", "build/k.so"}) {
    INFO(file);
    auto r = f.request(*client, file);
    auto fault_path = file == "big.bin" ? f.path_of(file) : FakeHub::lfs_path(r.digest.hex);
    f.hub.fault(fault_path, Fault::body(Fault::Kind::flip_byte));
    auto results = client->download({&r, 1});
    REQUIRE_FALSE(results[0].ok());
    CHECK(results[0].error().code == ErrorCode::integrity_mismatch);
    CHECK_THAT(results[0].error().what, Catch::Contains("expected"));
    CHECK_THAT(results[0].error().what, Catch::Contains(r.digest.hex));
    CHECK_THAT(results[0].error().what, Catch::Contains("got"));
    CHECK_FALSE(fs::exists(r.temp_path));
  }
}

TEST_CASE("Content-Encoding on a file download is refused, not decoded and not retried") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "small.txt");
  f.hub.fault(f.path_of("small.txt"), Fault::body(Fault::Kind::content_encoding));
  auto results = client->download({&r, 1});
  REQUIRE_FALSE(results[0].ok());
  CHECK(results[0].error().code == ErrorCode::http_permanent);
  CHECK_THAT(results[0].error().what, Catch::Contains("Content-Encoding"));
  CHECK(f.hub.request_count() == 1);
  for (const auto& rec : f.hub.requests()) CHECK(rec.accept_encoding == "identity");
}

TEST_CASE("a stalled transfer (headers, then silence) is aborted by the stall window and retried") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "big.bin");
  // libcurl averages speed over the last few seconds, so a stall right after a burst of bytes is
  // seen only once the burst leaves that window; a stall before the first byte is seen at once.
  f.hub.fault(f.path_of("big.bin"), Fault::stalled(0, std::chrono::milliseconds(6000)));
  auto start = std::chrono::steady_clock::now();
  auto results = client->download({&r, 1});
  auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(results[0].ok());
  CHECK(read_file(r.temp_path) == f.big);
  // stall_timeout is 1 s: detected after about 1-2 s, well before the server's 6 s stall ends.
  CHECK(elapsed >= std::chrono::milliseconds(900));
  CHECK(elapsed < std::chrono::milliseconds(4500));
  CHECK(f.hub.request_count() == 2);
}

TEST_CASE("a server that accepts but never answers is timed out by the stall window and retried") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "small.txt");
  Fault silent;
  silent.kind = Fault::Kind::no_answer;
  silent.stall = std::chrono::milliseconds(6000);
  f.hub.fault(f.path_of("small.txt"), silent);
  auto start = std::chrono::steady_clock::now();
  auto results = client->download({&r, 1});
  auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(results[0].ok());
  CHECK(elapsed >= std::chrono::milliseconds(900));
  CHECK(elapsed < std::chrono::milliseconds(4500));
  CHECK(f.hub.request_count() == 2);
}

TEST_CASE("a temp file that already holds the verified bytes needs no request") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto r = f.request(*client, "big.bin");
  write_file(r.temp_path, f.big);
  auto results = client->download({&r, 1});
  REQUIRE(results[0].ok());
  CHECK(f.hub.request_count() == 0);
}

// The download's own temp file is opened by name relative to its directory's verified fd
// (DownloadRequest::temp_dir, cache_dir.h), with O_NOFOLLOW: a link planted at its name is
// refused (exit 11) and nothing is created, read or written where it points (issue 12).
TEST_CASE("a link planted where the temp file goes is refused (exit 11), nothing written outside",
          "[safety]") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  const fs::path outside = f.dir.path() / "outside";
  fs::create_directories(outside);
  SECTION("a dangling link: the file it names is never created") {
    auto r = f.request(*client, "big.bin");
    fs::create_symlink(outside / "victim", r.temp_path);
    auto results = client->download({&r, 1});
    REQUIRE_FALSE(results[0].ok());
    CHECK(exit_code(results[0].error().code) == 11);
    CHECK(results[0].error().object == r.temp_path.string());
    CHECK_THAT(results[0].error().what, Catch::Contains("symbolic link"));
    CHECK_FALSE(fs::exists(outside / "victim"));
    CHECK(fs::is_symlink(r.temp_path));
  }
  SECTION("a link to a file: neither resumed from nor written to") {
    auto r = f.request(*client, "big.bin");
    write_file(outside / "victim", f.big.substr(0, 1000));
    fs::create_symlink(outside / "victim", r.temp_path);
    auto results = client->download({&r, 1});
    REQUIRE_FALSE(results[0].ok());
    CHECK(exit_code(results[0].error().code) == 11);
    CHECK(read_file(outside / "victim") == f.big.substr(0, 1000));
  }
  SECTION("a link to a file holding the right bytes is not taken as the finished download") {
    // Followed, it would pass the digest, and the link itself would be renamed into blobs/.
    auto r = f.request(*client, "big.bin");
    write_file(outside / "victim", f.big);
    fs::create_symlink(outside / "victim", r.temp_path);
    auto results = client->download({&r, 1});
    REQUIRE_FALSE(results[0].ok());
    CHECK(exit_code(results[0].error().code) == 11);
  }
  SECTION("a FIFO is refused at once, never waited on") {
    auto r = f.request(*client, "small.txt");
    REQUIRE(::mkfifo(r.temp_path.c_str(), 0600) == 0);
    auto results = client->download({&r, 1});
    REQUIRE_FALSE(results[0].ok());
    CHECK(exit_code(results[0].error().code) == 11);
    CHECK_THAT(results[0].error().what, Catch::Contains("FIFO"));
  }
  CHECK(f.hub.request_count() == 0);
}

TEST_CASE(
    "the temp file goes into the directory opened before, even if its path is swapped for a link",
    "[safety]") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  const fs::path blobs = f.dir.path() / "blobs";
  fs::create_directories(blobs);
  auto dir = CacheDir::open(blobs, {}, false);
  REQUIRE(dir.ok());
  auto r = f.request(*client, "big.bin");
  r.temp_path = blobs / "big.incomplete";
  r.temp_dir = &*dir;
  // Between the walk and the download: blobs/ becomes a link to a directory elsewhere.
  fs::rename(blobs, f.dir.path() / "blobs.real");
  fs::create_directories(f.dir.path() / "outside");
  fs::create_directory_symlink(f.dir.path() / "outside", blobs);
  auto results = client->download({&r, 1});
  REQUIRE(results[0].ok());
  CHECK(read_file(f.dir.path() / "blobs.real" / "big.incomplete") == f.big);
  CHECK(fs::is_empty(f.dir.path() / "outside"));
}

TEST_CASE("one failing file does not stop the others, each gets its own result") {
  Fixture f;
  auto client = make_client(fast_options(f.hub.endpoint()));
  auto requests = requests_for(fetch_tree(*client, kRepo, f.commit), kRepo, f.commit, f.dir.path());
  f.hub.fault(f.path_of("small.txt"), Fault::body(Fault::Kind::flip_byte));
  auto results = client->download(requests);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    INFO(requests[i].path);
    CHECK(results[i].ok() == (requests[i].path != "small.txt"));
  }
}

// Regression (issue 12, defect 10): a server trickling a few bytes a second never trips the
// stall detector; without an overall deadline it held the download (and its blob lock) for as
// long as it liked.
TEST_CASE("a trickling transfer is stopped by the per-file deadline, not retried") {
  Fixture f;
  auto options = fast_options(f.hub.endpoint());
  options.transfer_deadline_base = std::chrono::seconds(1);
  options.transfer_min_rate = 1ull << 30;  // 200 KB adds nothing: the deadline is about 1 s
  auto client = make_client(options);
  auto r = f.request(*client, "big.bin");
  f.hub.fault(f.path_of("big.bin"), Fault::trickled(std::chrono::milliseconds(200)));
  auto start = std::chrono::steady_clock::now();
  auto results = client->download({&r, 1});
  auto elapsed = std::chrono::steady_clock::now() - start;
  INFO("requests: " << f.hub.request_count() << ", ms: "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
  REQUIRE_FALSE(results[0].ok());
  CHECK(results[0].error().code == ErrorCode::network);
  CHECK_THAT(results[0].error().what, Catch::Contains("deadline"));
  CHECK(elapsed < std::chrono::milliseconds(5000));  // the trickle itself lasts 10 s
  CHECK(f.hub.request_count() == 1);
}

TEST_CASE("the per-file deadline grows with the file's size") {
  Fixture f;
  auto options = fast_options(f.hub.endpoint());
  options.transfer_deadline_base = std::chrono::seconds(1);
  options.transfer_min_rate = 1;  // 200 KB at 1 B/s: days; the trickle's 10 s end first
  auto client = make_client(options);
  auto r = f.request(*client, "big.bin");
  f.hub.fault(f.path_of("big.bin"), Fault::trickled(std::chrono::milliseconds(200)));
  auto results = client->download({&r, 1});
  // The fake Hub closes the trickle after 10 s; the retry then gets the whole file.
  REQUIRE(results[0].ok());
  CHECK(read_file(r.temp_path) == f.big);
}
